// What the console knows, in one place: the signed-in agent, the inbox (conversations
// by id, the current filters and counts), contacts and staff by id. Views read it and
// call `changed(topic)`; listeners re-render what depends on that topic.

export const state = {
  me: null,              // the signed-in agent
  conversations: new Map(),
  order: [],             // ids of the inbox list, as the server sorted them
  counts: {},
  countsCapped: false,   // a search stopped counting a mode at the cap ("1000+")
  nextCursor: null,
  filters: { mode: '', mine: false, tag: '', channel: '', text: '' },
  contacts: new Map(),
  agents: new Map(),
  current: null,         // id of the open conversation
  unseenAssigned: 0,     // assignments to me not looked at yet (title counter)
  claiming: new Set(),   // conversations I am claiming myself: no notification for those
};

const listeners = new Map();

/** Calls `fn` whenever `topic` changes. */
export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
}

export function changed(topic, detail) {
  for (const fn of listeners.get(topic) || []) fn(detail);
}

/** Puts a conversation in, unless what we hold is newer (events may cross a reload). */
export function upsertConversation(c) {
  const old = state.conversations.get(c.id);
  if (old && old.version != null && c.version != null && old.version > c.version) return old;
  state.conversations.set(c.id, c);
  return c;
}

export const isAdmin = () => state.me?.role === 'admin';
export const isLead = () => state.me?.role === 'admin' || state.me?.role === 'supervisor';

/** A contact's display name, or a placeholder while it loads. */
export function contactName(id, fallback) {
  const c = state.contacts.get(id);
  return (c && (c.name || c.email || c.phone)) || fallback;
}
