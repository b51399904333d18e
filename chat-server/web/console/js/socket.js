// The realtime socket (PROTOCOL.md): one subscription to everything the agent may see,
// resumed from the last event's `seq` after any drop, so nothing is lost in between.

export class Socket {
  /**
   * `handlers`: event(frame), typing(frame), botDelta(frame), presence(frame), resync(), revoked(),
   * status('online' | 'connecting').
   */
  constructor(token, handlers) {
    this.token = token;
    this.on = handlers;
    this.cursor = null;
    this.retry = 0;
    this.closed = false;
    // Back online: try now rather than at the end of the back-off.
    this.online = () => {
      if (this.closed || this.ws?.readyState === WebSocket.OPEN || this.ws?.readyState === WebSocket.CONNECTING) return;
      clearTimeout(this.timer);
      this.retry = 0;
      this.connect();
    };
    window.addEventListener('online', this.online);
    this.connect();
  }

  connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    // The token as a subprotocol keeps it out of URLs and logs.
    const ws = new WebSocket(`${proto}//${location.host}/v1/ws`, ['chat.v1', this.token]);
    this.ws = ws;
    this.on.status('connecting');
    ws.onmessage = (m) => this.frame(JSON.parse(m.data));
    ws.onclose = (e) => {
      if (this.ws !== ws || this.closed) return;
      // 4001: the credential was revoked or expired; no point reconnecting.
      if (e.code === 4001) { this.on.revoked(); return; }
      this.on.status('connecting');
      const wait = Math.min(10000, 250 * 2 ** this.retry++);
      this.timer = setTimeout(() => this.connect(), wait);
    };
  }

  frame(f) {
    switch (f.type) {
      case 'hello':
        // First connection: live from the head. Later ones: replay what we missed.
        if (this.cursor === null) this.cursor = f.cursor;
        this.send({ type: 'subscribe', id: 'all', since: this.cursor });
        break;
      case 'subscribed':
        this.retry = 0;
        this.cursor = Math.max(this.cursor, f.cursor);
        this.on.status('online');
        break;
      case 'event':
        if (this.cursor !== null && f.seq <= this.cursor) return; // already applied
        this.cursor = f.seq;
        this.on.event(f);
        break;
      case 'typing': this.on.typing(f); break;
      case 'bot_delta': this.on.botDelta?.(f); break;
      case 'presence': this.on.presence?.(f); break;
      case 'resync_required':
        this.cursor = f.cursor;
        this.on.resync();
        break;
      default: break;
    }
  }

  /** Sends a frame if the socket is open (typing and read are best effort). */
  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  close() {
    this.closed = true;
    window.removeEventListener('online', this.online);
    clearTimeout(this.timer);
    this.ws?.close();
  }
}
