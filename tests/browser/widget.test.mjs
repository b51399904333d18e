// The website widget end to end: a visitor on /demo in chromium, an agent through the /v1
// API (HTTP from Node, its socket from a second browser context), one real server on a temp
// database. Every wait is for a condition on the page or the API, never for a time.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHmac } from 'node:crypto';
import { startServer, launchBrowser, seriousViolations, test, artifacts, root } from './lib.mjs';

const WIDGET = join(root, 'chat-server', 'web', 'widget', 'widget.js');
const IDENTITY_SECRET = 'widget-test-identity-secret';

// A second origin for the cross-origin pages: the widget's tag on someone else's site.
let pageHtml = '';
const site = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(pageHtml);
});
await new Promise((r) => site.listen(0, '127.0.0.1', r));
const siteOrigin = `http://localhost:${site.address().port}`;

const server = await startServer(['--demo', '--cors-origins', siteOrigin, '--identity-secret', IDENTITY_SECRET]);
const browser = await launchBrowser();

// ---- the agent's side: the /v1 API over HTTP --------------------------------------------
async function api(method, path, token, body) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let payload = body;
  if (body !== undefined && !(body instanceof FormData)) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const r = await fetch(server.url + path, { method, headers, body: payload });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const login = async (email) => (await api('POST', '/v1/auth/login', null, { email, password: 'demo-password' })).access_token;
const admin = await login('admin@demo.example');
const agentToken = await login('agent@demo.example');
// Nobody online and no automatic routing: a handed-off conversation waits in the queue,
// where the visitor sees its place, until the agent claims it (the agent's socket sets it
// online, which would otherwise route the conversation first).
await api('PATCH', '/v1/settings', admin, { auto_assign: false });
for (const a of (await api('GET', '/v1/agents', admin)).items) {
  await api('PUT', `/v1/agents/${a.id}/availability`, admin, { availability: 'offline' });
}

/** Polls the API until `fn` returns something truthy (the agent's own "wait for"). */
async function until(what, fn) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}
const messagesOf = async (id, token = agentToken) => (await api('GET', `/v1/conversations/${id}/messages?after=0&limit=200`, token)).items;

// ---- the visitor's side -----------------------------------------------------------------
async function visitor(url = `${server.url}/demo`) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  context.setDefaultTimeout(10000);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  const w = page.locator('#chatdesk-widget');
  await w.locator('button.launcher').waitFor();
  return { context, page, errors, w };
}
const shot = (page, name) => page.screenshot({ path: join(artifacts, `widget-${name}.png`) });
const conversationIdOf = (page) => page.evaluate(() => {
  const key = Object.keys(localStorage).find((k) => k.startsWith('chatdesk:'));
  return key && JSON.parse(localStorage.getItem(key)).conversationId;
});
/** Each text exactly once among the widget's messages. */
async function onceEach(w, texts) {
  for (const text of texts) {
    const n = await w.locator('.msg .bubble', { hasText: text }).count();
    if (n !== 1) throw new Error(`"${text}" shows ${n} times`);
  }
}
async function send(w, text) {
  await w.getByRole('textbox', { name: 'Write a message' }).fill(text);
  await w.getByRole('button', { name: 'Send', exact: true }).click();
}
/** The agent's socket in a second browser context (Node 20 has no WebSocket client). */
async function agentSocket() {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.url}/healthz`);
  await page.evaluate(([url, token]) => new Promise((resolve) => {
    globalThis.frames = [];
    const ws = new WebSocket(`${url}/v1/ws?access_token=${token}`);
    globalThis.ws = ws;
    ws.onmessage = (e) => globalThis.frames.push(JSON.parse(e.data));
    ws.onopen = () => { ws.send(JSON.stringify({ type: 'subscribe' })); resolve(); };
  }), [server.url.replace('http', 'ws'), agentToken]);
  return {
    context,
    send: (frame) => page.evaluate((f) => globalThis.ws.send(JSON.stringify(f)), frame),
    waitFor: (pred) => page.waitForFunction(pred),
  };
}

// A PNG to upload: chromium's own screenshot of a small square.
async function png(page) {
  return page.screenshot({ clip: { x: 0, y: 0, width: 48, height: 48 } });
}

let conversation; // the main flow's conversation id
let main; // the main flow's visitor: its context keeps localStorage across reloads

try {
  await test('the widget script is at most 40 KB gzipped and is what the server serves', async () => {
    const source = readFileSync(WIDGET);
    const gz = gzipSync(source, { level: 9 }).length;
    console.log(`     widget.js: ${source.length} bytes, ${gz} bytes gzipped (level 9)`);
    if (gz > 40 * 1024) throw new Error(`widget.js is ${gz} bytes gzipped, over 40 KB`);
    // Node's fetch asks for gzip and unpacks it, as a browser does.
    const r = await fetch(`${server.url}/widget.js`);
    if (r.headers.get('content-encoding') !== 'gzip') throw new Error('/widget.js is not sent gzipped');
    const served = Buffer.from(await r.arrayBuffer());
    if (!served.equals(source)) throw new Error('the server serves other bytes than web/widget/widget.js');
  });

  await test('a visitor talks to the bot, asks for a human, and an agent answers live', async () => {
    main = await visitor();
    const { page, errors, w } = main;
    await shot(page, 'closed');
    await w.getByRole('button', { name: 'Open chat' }).click();
    const dialog = w.getByRole('dialog', { name: 'Northwind support' });
    await dialog.waitFor();
    await w.getByText('Ask us about orders, returns or delivery.').waitFor();
    await shot(page, 'greeting');

    await send(w, 'Hello, where is my order?');
    // The bot answers first.
    await w.locator('.msg[data-sender="bot"]').first().waitFor();
    await w.locator('.msg.mine .status', { hasText: 'Sent' }).first().waitFor();
    conversation = await conversationIdOf(page);
    if (!conversation) throw new Error('no conversation stored');

    await w.getByRole('button', { name: 'Talk to a human' }).click();
    await w.getByText('You are number 1 in the queue.').waitFor();
    await shot(page, 'queue');

    // The agent claims it and replies; the visitor sees it live.
    const sock = await agentSocket();
    await api('POST', `/v1/conversations/${conversation}/claim`, agentToken);
    // The desk's own notice of the assignment, and the queue banner gone.
    await w.locator('.msg.event', { hasText: 'Demo Agent' }).waitFor();
    await w.getByText('You are number 1 in the queue.').waitFor({ state: 'hidden' });
    await sock.send({ type: 'typing', conversation_id: conversation, typing: true });
    await w.getByText(/is typing…/).waitFor();
    await api('POST', `/v1/conversations/${conversation}/notes`, agentToken, { body: 'INTERNAL: customer is a VIP' });
    await api('POST', `/v1/conversations/${conversation}/messages`, agentToken, { body: 'Hi, I am Dana. Let me check your order.' });
    await w.getByText('Hi, I am Dana. Let me check your order.').waitFor();
    if (await w.getByText('INTERNAL', { exact: false }).count()) throw new Error('the internal note reached the widget');
    if ((await page.content()).includes('INTERNAL')) throw new Error('the internal note is in the page');
    if (await w.getByText(/is typing…/).count()) throw new Error('typing stayed after the message');

    // Typing the other way: the agent's socket sees the visitor type.
    await w.getByRole('textbox', { name: 'Write a message' }).pressSequentially('It was');
    await sock.waitFor(() => globalThis.frames.some((f) => f.type === 'typing' && f.sender.type === 'customer' && f.typing));
    await w.getByRole('textbox', { name: 'Write a message' }).fill('');

    // Read receipts both ways.
    const mine = (await messagesOf(conversation)).filter((m) => m.sender.type === 'customer');
    await api('POST', `/v1/conversations/${conversation}/read`, agentToken, { seq: mine[mine.length - 1].seq });
    await w.locator('.msg.mine .status', { hasText: 'Read' }).first().waitFor();
    await until('the visitor\'s read cursor', async () => {
      const reads = (await api('GET', `/v1/conversations/${conversation}/read`, agentToken)).items;
      return reads.some((r) => r.reader.type === 'customer' && r.seq >= mine[mine.length - 1].seq + 1);
    });
    await shot(page, 'chat');
    // Just the widget, for the README (docs/widget.png).
    const panel = await w.locator('.panel').boundingBox();
    await page.screenshot({ path: join(artifacts, 'widget-readme.png'),
      clip: { x: panel.x - 16, y: panel.y - 16, width: panel.width + 32, height: 760 - panel.y + 16 } });

    // A file each way: the visitor's image reaches the agent byte for byte; the agent's
    // text file and image show in the widget.
    const image = await png(page);
    await w.locator('input[type=file]').setInputFiles({ name: 'receipt.png', mimeType: 'image/png', buffer: image });
    const withFile = await until('the visitor\'s file', async () => (await messagesOf(conversation))
      .find((m) => (m.attachments || []).some((a) => a.name === 'receipt.png')));
    const att = withFile.attachments[0];
    const got = Buffer.from(await (await fetch(`${server.url}/v1/conversations/${conversation}/files/${att.key}`,
      { headers: { authorization: `Bearer ${agentToken}` } })).arrayBuffer());
    if (!got.equals(image)) throw new Error('the agent got other bytes');
    await w.getByRole('button', { name: 'Image: receipt.png' }).waitFor();

    const form = new FormData();
    form.append('file', new Blob(['Order 1042: shipped on Monday.\n'], { type: 'text/plain' }), 'invoice.txt');
    form.append('file', new Blob([image], { type: 'image/png' }), 'parcel.png');
    const up = await api('POST', `/v1/conversations/${conversation}/files`, agentToken, form);
    await api('POST', `/v1/conversations/${conversation}/messages`, agentToken, { body: 'Here is your invoice and a photo.', attachments: up.items });
    await w.getByRole('button', { name: 'Download invoice.txt' }).waitFor();
    const img = w.getByRole('button', { name: 'Image: parcel.png' }).locator('img');
    await img.waitFor();
    await page.waitForFunction(() => {
      const el = document.querySelector('#chatdesk-widget').shadowRoot.querySelectorAll('.file.image img');
      return [...el].every((i) => i.complete && i.naturalWidth > 0);
    });
    const [download] = await Promise.all([page.waitForEvent('download'),
      w.getByRole('button', { name: 'Download invoice.txt' }).click()]);
    const path = await download.path();
    if (readFileSync(path, 'utf8') !== 'Order 1042: shipped on Monday.\n') throw new Error('the downloaded file differs');
    await shot(page, 'files');

    // Keyboard: Escape closes and gives focus back to the launcher.
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    const focused = await page.evaluate(() => document.querySelector('#chatdesk-widget').shadowRoot.activeElement?.className);
    if (focused !== 'launcher') throw new Error(`focus is on ${focused}`);
    await page.keyboard.press('Enter');
    await dialog.waitFor();
    if (errors.length) throw new Error(errors.join('\n'));
    await sock.context.close();
  });

  await test('the network drops while the agent writes and the visitor types: all of it arrives once', async () => {
    const { context, page, errors, w } = main;
    await w.getByText('Here is your invoice and a photo.').waitFor();
    await onceEach(w, ['Hi, I am Dana. Let me check your order.', 'Here is your invoice and a photo.']);

    await context.setOffline(true);
    await w.getByText('You are offline.', { exact: false }).waitFor();
    const agentLines = ['Offline line one', 'Offline line two', 'Offline line three'];
    for (const body of agentLines) await api('POST', `/v1/conversations/${conversation}/messages`, agentToken, { body });
    await send(w, 'Written while offline');
    await w.locator('.pending .status', { hasText: 'Not sent yet' }).waitFor();
    await shot(page, 'offline-network');

    await context.setOffline(false);
    for (const line of agentLines) await w.getByText(line).waitFor();
    await w.locator('.msg.mine:not(.pending)', { hasText: 'Written while offline' }).waitFor();
    await onceEach(w, [...agentLines, 'Written while offline', 'Hi, I am Dana. Let me check your order.']);
    const stored = (await messagesOf(conversation)).filter((m) => m.body === 'Written while offline');
    if (stored.length !== 1) throw new Error(`the offline message is stored ${stored.length} times`);

    // A reload keeps the conversation, each message once.
    const before = await w.locator('.msg').count();
    await page.reload();
    await w.getByRole('button', { name: 'Open chat' }).click();
    await w.getByText('Written while offline').waitFor();
    await w.getByText('Here is your invoice and a photo.').waitFor();
    await onceEach(w, [...agentLines, 'Written while offline']);
    const after = await w.locator('.msg:not(.event)').count();
    if (after > before) throw new Error(`${after} messages after the reload, ${before} before`);
    if (errors.length) throw new Error(errors.join('\n'));
  });

  await test('a message written offline before the page goes survives the reload and is sent once', async () => {
    const { context, page, w } = main;
    await w.getByText('Written while offline').waitFor();
    await context.setOffline(true);
    await w.getByText('You are offline.', { exact: false }).waitFor();
    await send(w, 'Kept across the reload');
    await w.locator('.pending', { hasText: 'Kept across the reload' }).waitFor();
    await context.setOffline(false);
    // Reloaded at once: whether or not the first try got through, the outbox in
    // localStorage and its client_message_id make it one message.
    await page.reload();
    await w.getByRole('button', { name: 'Open chat' }).click();
    await w.locator('.msg.mine:not(.pending)', { hasText: 'Kept across the reload' }).waitFor();
    await until('the message stored', async () => (await messagesOf(conversation)).some((m) => m.body === 'Kept across the reload'));
    const n = (await messagesOf(conversation)).filter((m) => m.body === 'Kept across the reload').length;
    if (n !== 1) throw new Error(`stored ${n} times`);
    await onceEach(w, ['Kept across the reload']);
  });

  await test('axe-core finds no serious or critical violation on /demo with the widget open', async () => {
    const { page, w } = main;
    await w.getByText('Here is your invoice and a photo.').waitFor();
    const bad = await seriousViolations(page);
    if (bad.length) throw new Error(JSON.stringify(bad.map((v) => [v.id, v.nodes.map((n) => n.target)]), null, 1));
  });

  await test('the agent closes and the visitor rates', async () => {
    const { context, page, w } = main;
    await page.reload();
    await w.getByRole('button', { name: 'Open chat' }).click();
    await w.getByText('Here is your invoice and a photo.').waitFor();
    await api('POST', `/v1/conversations/${conversation}/close`, agentToken, {});
    await w.getByText('How was your conversation?').waitFor();
    if (!(await w.getByRole('textbox', { name: 'Write a message' }).isHidden())) throw new Error('the composer stayed');
    await shot(page, 'rating');
    await w.getByRole('radio', { name: '4 out of 5' }).check();
    await w.getByRole('textbox', { name: 'Anything to add? (optional)' }).fill('Quick and kind.');
    await w.getByRole('button', { name: 'Send rating' }).click();
    await w.getByText('Thank you for your feedback!').waitFor();
    const c = await api('GET', `/v1/conversations/${conversation}`, agentToken);
    if (c.rating?.score !== 4 || c.rating?.feedback !== 'Quick and kind.') throw new Error(JSON.stringify(c.rating));
    await shot(page, 'rated');
    // Starting over gives a new conversation.
    await w.getByRole('button', { name: 'Start a new conversation' }).click();
    await send(w, 'A new question');
    await w.locator('.msg.mine:not(.pending)', { hasText: 'A new question' }).waitFor();
    if ((await conversationIdOf(page)) === conversation) throw new Error('the same conversation');
    await context.close();
  });

  await test('on another origin, in Arabic, the widget runs right to left and talks to the API', async () => {
    pageHtml = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>متجر</title></head>
      <body><h1>Another site</h1><main><p>Someone else's page.</p></main>
      <script src="${server.url}/widget.js" data-locale="ar" data-position="left" data-color="#ffd54f" async></script></body></html>`;
    const { context, page, errors, w } = await visitor(`${siteOrigin}/`);
    // Keyboard only: the launcher is the page's first stop, Enter opens the window with
    // the focus in the message box, Enter sends.
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    const root = w.locator('.root');
    if ((await root.getAttribute('dir')) !== 'rtl') throw new Error('not rtl');
    await w.getByRole('dialog', { name: 'تحدث معنا' }).waitFor();
    const box0 = w.getByRole('textbox', { name: 'اكتب رسالة' });
    await page.waitForFunction(() => document.querySelector('#chatdesk-widget').shadowRoot.activeElement?.tagName === 'TEXTAREA');
    await page.keyboard.type('مرحبا');
    await page.keyboard.press('Enter');
    if ((await box0.inputValue()) !== '') throw new Error('the message box kept the text');
    await w.locator('.msg.mine:not(.pending)', { hasText: 'مرحبا' }).waitFor();
    await w.locator('.msg[data-sender="bot"]').first().waitFor();
    // Right to left: the visitor's bubble sits at the left edge, the launcher at the left.
    const box = await w.locator('.msg.mine').last().boundingBox();
    const panel = await w.locator('.panel').boundingBox();
    if (box.x - panel.x > 40) throw new Error(`the visitor's bubble is not at the left: ${box.x} in ${panel.x}`);
    const launcher = await w.locator('.launcher').boundingBox();
    if (launcher.x > 100) throw new Error('the launcher is not on the left');
    // The accent is light: its text must be dark to contrast.
    const fg = await w.locator('.launcher').evaluate((el) => getComputedStyle(el).color);
    if (fg !== 'rgb(0, 0, 0)') throw new Error(`launcher text ${fg} on a light accent`);
    await shot(page, 'rtl');
    const bad = await seriousViolations(page);
    if (bad.length) throw new Error(JSON.stringify(bad.map((v) => [v.id, v.nodes.map((n) => n.target)])));
    if (errors.length) throw new Error(errors.join('\n'));
    await context.close();
  });

  await test('a signed-in customer opens a conversation under its verified e-mail', async () => {
    const email = 'grace@shop.example';
    const ts = Math.floor(Date.now() / 1000);
    const signature = createHmac('sha256', IDENTITY_SECRET).update(`${email}:${ts}`).digest('hex');
    pageHtml = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signed in</title></head>
      <body><main><h1>My account</h1></main><script src="${server.url}/widget.js" data-identity-email="${email}"
      data-identity-timestamp="${ts}" data-identity-signature="${signature}"></script></body></html>`;
    const { context, page, w } = await visitor(`${siteOrigin}/`);
    await w.getByRole('button', { name: 'Open chat' }).click();
    await send(w, 'I am signed in');
    await w.locator('.msg.mine:not(.pending)', { hasText: 'I am signed in' }).waitFor();
    const id = await conversationIdOf(page);
    const c = await api('GET', `/v1/conversations/${id}`, admin);
    const contact = await api('GET', `/v1/contacts/${c.contact_id}`, admin);
    if (contact.email !== email || contact.email_verified !== true) throw new Error(JSON.stringify(contact));
    await context.close();
  });

  await test('the pre-chat form asks name and e-mail when the tenant wants it', async () => {
    await api('PATCH', '/v1/settings', admin, { prechat_form: true });
    try {
      const { context, page, w } = await visitor();
      await w.getByRole('button', { name: 'Open chat' }).click();
      const name = w.getByRole('textbox', { name: 'Name' });
      await name.waitFor();
      if (!(await name.evaluate((el) => el === el.getRootNode().activeElement))) throw new Error('focus is not on the first field');
      await w.getByRole('button', { name: 'Start chat' }).click();
      await w.getByText('Please fill in this field.').first().waitFor();
      await shot(page, 'prechat');
      await name.fill('Ada Visitor');
      await w.getByRole('textbox', { name: 'E-mail' }).fill('ada@visitor.example');
      await w.getByRole('button', { name: 'Start chat' }).click();
      await w.getByRole('textbox', { name: 'Write a message' }).waitFor();
      const id = await conversationIdOf(page);
      const c = await api('GET', `/v1/conversations/${id}`, admin);
      const contact = await api('GET', `/v1/contacts/${c.contact_id}`, admin);
      if (contact.name !== 'Ada Visitor' || contact.email !== 'ada@visitor.example') throw new Error(JSON.stringify(contact));
      await context.close();
    } finally {
      await api('PATCH', '/v1/settings', admin, { prechat_form: false });
    }
  });

  await test('outside business hours the visitor leaves an e-mail and a message', async () => {
    await api('PATCH', '/v1/settings', admin, {
      business_hours: { time_zone: 'UTC', weekly: {}, offline_message: 'We are closed for the holidays.' },
    });
    try {
      const { context, page, w } = await visitor();
      await w.getByRole('button', { name: 'Open chat' }).click();
      await w.getByText('We are closed for the holidays.').waitFor();
      await shot(page, 'offline-form');
      await w.getByRole('textbox', { name: 'E-mail' }).fill('lin@visitor.example');
      await w.getByRole('textbox', { name: 'Message' }).fill('Do you ship to Norway?');
      await w.getByRole('button', { name: 'Send message' }).click();
      await w.getByText('Thank you! We will answer you at lin@visitor.example.').waitFor();
      const id = await conversationIdOf(page);
      const c = await api('GET', `/v1/conversations/${id}`, admin);
      const contact = await api('GET', `/v1/contacts/${c.contact_id}`, admin);
      if (contact.email !== 'lin@visitor.example') throw new Error(JSON.stringify(contact));
      const bodies = (await messagesOf(id, admin)).map((m) => m.body);
      if (!bodies.includes('Do you ship to Norway?')) throw new Error(JSON.stringify(bodies));
      await shot(page, 'offline-sent');
      await context.close();
    } finally {
      await api('PATCH', '/v1/settings', admin, { business_hours: null });
    }
  });
} finally {
  await browser.close();
  await server.stop();
  site.close();
}
