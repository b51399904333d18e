// The agent console end to end: the real binary (--demo staff) on a temp database, a
// visitor driven over the HTTP API and a WebSocket, an agent and an admin in chromium.
// Every wait is for a condition (a locator, a page function, an HTTP answer).
import { gzipSync } from 'node:zlib';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launchBrowser, test, artifacts, root } from './lib.mjs';

const PASSWORD = 'demo-password';
const server = await startServer(['--demo']);
const browser = await launchBrowser();
const figures = {};

async function http(method, path, body, token) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Polls `fn` until it answers something truthy (a condition, not a fixed wait). */
async function until(fn, what, timeout = 10000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// axe-core goes in through the DevTools protocol (page.evaluate), which the page's
// content security policy does not govern: a <script> tag would be refused by it.
const axeSource = readFileSync(join(root, 'tests', 'browser', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
async function noSerious(page, screen) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => await globalThis.axe.run());
  const v = result.violations.filter((x) => x.impact === 'serious' || x.impact === 'critical');
  if (v.length) throw new Error(`${screen}: ${v.map((x) => `${x.id}: ${x.help} (${x.nodes.map((n) => n.target).join(' | ')})`).join('\n')}`);
}

const shot = (page, name) => page.screenshot({ path: join(artifacts, `${name}.png`) });

async function logIn(page, email) {
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.conversations li').first().waitFor();
}

const agentContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
// The agent's sockets pass through the test, which can cut them (a dropped network) and
// refuse new ones for a while (the network stays down).
const agentSockets = [];
let networkDown = false;
await agentContext.routeWebSocket(/\/v1\/ws/, (ws) => {
  if (networkDown) { ws.close({ code: 4000, reason: 'network down' }); return; }
  ws.connectToServer();
  agentSockets.push(ws);
});
const page = await agentContext.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
// Refused requests are printed: they explain a failing wait.
page.on('response', (r) => { if (r.status() >= 400) console.log('HTTP', r.status(), r.url()); });
const loaded = [];
page.on('response', async (r) => {
  const path = new URL(r.url()).pathname;
  if (r.status() === 200 && (path === '/' || path.startsWith('/assets/'))) loaded.push(r.body().then((b) => ({ path, bytes: b.length, gzipped: gzipSync(b).length })));
});

let visitor; // { token, conversation }
let otto; // a conversation the admin assigns to the agent

try {
  await test('the login page is accessible and its first load is within the size budget', async () => {
    await page.goto(server.url + '/');
    await page.getByRole('heading', { name: 'Sign in to the support desk' }).waitFor();
    const files = await Promise.all(loaded);
    figures.first_load_files = files.length;
    figures.first_load_bytes = files.reduce((a, f) => a + f.bytes, 0);
    figures.first_load_gzipped_bytes = files.reduce((a, f) => a + f.gzipped, 0);
    if (files.length < 10) throw new Error(`only ${files.length} files loaded: ${files.map((f) => f.path)}`);
    if (figures.first_load_gzipped_bytes > 250 * 1024) throw new Error(`first load ${figures.first_load_gzipped_bytes} bytes gzipped`);
    await noSerious(page, 'login');
    await shot(page, 'console-login');
  });

  await test('a wrong password is refused on the page; the agent signs in and sees the inbox', async () => {
    await page.getByLabel('E-mail').fill('agent@demo.example');
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Wrong e-mail or password.').waitFor();
    await logIn(page, 'agent@demo.example');
    await page.locator('.conn[data-state="online"]').waitFor();
    figures.login_to_inbox_ms = await page.evaluate(() =>
      Math.round(performance.getEntriesByName('inbox-rendered')[0].startTime - performance.getEntriesByName('login-submit').at(-1).startTime));
    // A reload with the session kept: navigation start to the inbox rendered.
    await page.reload();
    await page.locator('.conversations li[data-id]').first().waitFor();
    figures.reload_to_inbox_ms = await page.evaluate(() => Math.round(performance.getEntriesByName('inbox-rendered')[0].startTime));
    if (figures.reload_to_inbox_ms > 10000 || figures.login_to_inbox_ms > 10000) throw new Error(`far too slow: ${JSON.stringify(figures)}`);
    await noSerious(page, 'inbox');
    await shot(page, 'console-inbox');
  });

  await test('a visitor asking for a human arrives live in the queue', async () => {
    const opened = await http('POST', '/v1/conversations', { contact: { name: 'Vera Visitor', email: 'vera@example.com' } });
    visitor = { token: opened.visitor_token, conversation: opened.conversation.id };
    await http('POST', `/v1/conversations/${visitor.conversation}/messages`, { body: 'My zebracorn invoice is wrong' }, visitor.token);
    await http('POST', `/v1/conversations/${visitor.conversation}/handoff`, {}, visitor.token);
    const row = page.locator(`.conversations li[data-id="${visitor.conversation}"]`);
    await row.waitFor();
    await page.locator(`.conversations li[data-id="${visitor.conversation}"][data-mode="queued"]`).waitFor();
    await row.getByText('Vera Visitor').waitFor();
    await page.locator('.mode-tab[data-mode="queued"] .count', { hasText: '1' }).waitFor();
  });

  // The visitor's own socket, opened in a page of the server's origin.
  const visitorPage = await (await browser.newContext()).newPage();
  await visitorPage.goto(server.url + '/healthz');

  await test('the agent claims it and replies; the visitor receives the reply and typing both ways', async () => {
    await visitorPage.evaluate(({ token, id }) => new Promise((resolve) => {
      window.frames_ = [];
      const ws = new WebSocket(`ws://${location.host}/v1/ws`, ['chat.v1', token]);
      window.ws_ = ws;
      ws.onmessage = (m) => {
        const f = JSON.parse(m.data);
        window.frames_.push(f);
        if (f.type === 'subscribed') resolve();
      };
      ws.onopen = () => ws.send(JSON.stringify({ type: 'subscribe', conversation_id: id }));
    }), { token: visitor.token, id: visitor.conversation });
    await page.locator(`.conversations li[data-id="${visitor.conversation}"] a`).click();
    await page.getByRole('heading', { name: 'Vera Visitor', level: 2 }).waitFor();
    await page.getByText('My zebracorn invoice is wrong').waitFor();
    await page.locator('.facts').getByText('vera@example.com', { exact: false }).waitFor();
    await page.getByRole('button', { name: 'Claim' }).click();
    await page.locator('.conv-head .badge.mode-agent').waitFor();
    // The visitor types: the agent sees it.
    await visitorPage.evaluate((id) => window.ws_.send(JSON.stringify({ type: 'typing', conversation_id: id, typing: true })), visitor.conversation);
    await page.getByText('Vera Visitor is typing…').waitFor();
    // The agent types: the visitor's socket gets it.
    const box = page.getByRole('textbox', { name: 'Reply to the customer' });
    await box.fill('');
    await box.pressSequentially('Let me check');
    await visitorPage.waitForFunction(() => window.frames_.some((f) => f.type === 'typing' && f.sender.type === 'agent' && f.typing));
    await box.fill('Hello Vera, I am looking at your invoice now.');
    await box.press('Enter');
    await page.locator('.msg.agent', { hasText: 'I am looking at your invoice' }).waitFor();
    await visitorPage.waitForFunction(() => window.frames_.some((f) => f.type === 'event' && f.data.message?.body === 'Hello Vera, I am looking at your invoice now.'));
    const seen = await until(async () => (await http('GET', `/v1/conversations/${visitor.conversation}/messages`, undefined, visitor.token))
      .items.find((m) => m.body.includes('I am looking at your invoice')), 'the reply over HTTP');
    // The visitor reads it: the agent's message says so.
    await http('POST', `/v1/conversations/${visitor.conversation}/read`, { seq: seen.seq }, visitor.token);
    await page.locator('.msg.agent', { hasText: 'I am looking at your invoice' }).locator('.receipt', { hasText: 'Seen' }).waitFor();
    await noSerious(page, 'conversation');
    await shot(page, 'console-conversation');
  });

  await test('an internal note is marked in the console and never reaches the visitor', async () => {
    await page.locator('body').click({ position: { x: 5, y: 780 } });
    await page.keyboard.press('n');
    const note = page.getByRole('textbox', { name: 'Internal note (only staff see it)' });
    await note.waitFor();
    await note.fill('Customer was double-charged, refund pending');
    await note.press('Enter');
    const shown = page.locator('.msg.note', { hasText: 'double-charged' });
    await shown.waitFor();
    await shown.getByText('Internal note').waitFor();
    const items = (await http('GET', `/v1/conversations/${visitor.conversation}/messages`, undefined, visitor.token)).items;
    if (items.some((m) => m.body.includes('double-charged') || m.kind === 'note')) throw new Error('the note reached the visitor');
    if (await visitorPage.evaluate(() => window.frames_.some((f) => JSON.stringify(f).includes('double-charged')))) throw new Error('the note reached the visitor socket');
  });

  await test('a file goes up with a reply, shows its thumbnail and downloads', async () => {
    // A 2x2 PNG.
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGM4IQcEJxggFAAcfgQRs56ClAAAAABJRU5ErkJggg==', 'base64');
    await page.getByRole('button', { name: 'Reply', exact: true }).click();
    await page.locator('.composer input[type="file"]').setInputFiles({ name: 'receipt.png', mimeType: 'image/png', buffer: png });
    await page.locator('.pending .chip', { hasText: 'receipt.png' }).waitFor();
    const box = page.getByRole('textbox', { name: 'Reply to the customer' });
    await box.fill('Here is your receipt.');
    await box.press('Enter');
    const msg = page.locator('.msg.agent', { hasText: 'Here is your receipt.' });
    await msg.locator('img.thumb[src^="blob:"]').waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('img.thumb')].some((i) => i.complete && i.naturalWidth > 0));
    const [download] = await Promise.all([page.waitForEvent('download'), msg.getByRole('button', { name: /Download receipt\.png/ }).click()]);
    if (download.suggestedFilename() !== 'receipt.png') throw new Error(download.suggestedFilename());
    const bytes = readFileSync(await download.path());
    if (!bytes.equals(png)) throw new Error('the downloaded file differs');
    const items = (await http('GET', `/v1/conversations/${visitor.conversation}/messages`, undefined, visitor.token)).items;
    if (!items.some((m) => m.attachments?.some((a) => a.name === 'receipt.png'))) throw new Error('the visitor does not see the file');
    await page.getByRole('textbox', { name: 'Reply to the customer' }).blur();
    await shot(page, 'console-conversation-files');
  });

  await test('priority, tags and snooze change from the conversation header', async () => {
    const adminToken = (await http('POST', '/v1/auth/login', { email: 'admin@demo.example', password: PASSWORD })).access_token;
    const stored = () => http('GET', `/v1/conversations/${visitor.conversation}`, undefined, adminToken);
    await page.getByLabel('Priority').selectOption('high');
    await until(async () => (await stored()).priority === 'high', 'priority high');
    const tag = page.getByRole('textbox', { name: 'Add a tag' });
    // A change the header does not show (a colleague pins the conversation) leaves it
    // alone while a tag is typed: the text stays, and so does a button under the pointer
    // (a redraw between press and release ate clicks). The visitor's message after it
    // arrives on the same socket, so once it shows, the change has been handled.
    await tag.fill('bill');
    await http('PATCH', `/v1/conversations/${visitor.conversation}`, { pinned: true }, adminToken);
    await http('POST', `/v1/conversations/${visitor.conversation}/messages`, { body: 'Any news on the invoice?' }, visitor.token);
    await page.locator('.msg', { hasText: 'Any news on the invoice?' }).waitFor();
    if (await tag.inputValue() !== 'bill') throw new Error('the header was redrawn under the typed tag');
    await tag.pressSequentially('ing');
    await tag.press('Enter');
    await page.locator('.tag-list .tag', { hasText: 'billing' }).waitFor();
    await page.getByRole('button', { name: 'Snooze' }).click();
    const dialog = page.getByRole('dialog', { name: 'Snooze' });
    await dialog.getByLabel('Snooze until').selectOption('reply');
    await dialog.getByRole('button', { name: 'OK' }).click();
    await page.locator('.conv-head .badge.snoozed').waitFor();
    if (!(await stored()).snooze) throw new Error('not snoozed on the server');
    await page.getByRole('button', { name: 'Wake' }).click();
    await page.locator('.conv-head .badge.snoozed').waitFor({ state: 'detached' });
    const c = await stored();
    if (c.snooze || !c.tags.includes('billing')) throw new Error(JSON.stringify(c));
  });

  await test('a colleague\'s @mention counts in the header and lists the conversation', async () => {
    const adminToken = (await http('POST', '/v1/auth/login', { email: 'admin@demo.example', password: PASSWORD })).access_token;
    await http('POST', `/v1/conversations/${visitor.conversation}/notes`, { body: '@agent can you confirm the refund?' }, adminToken);
    const button = page.getByRole('button', { name: 'Mentions: 1 unread' });
    await button.click();
    const dialog = page.getByRole('dialog', { name: 'Mentions' });
    await dialog.getByRole('link', { name: /Demo Admin mentioned you/ }).waitFor();
    await page.getByRole('button', { name: 'Mentions: 0 unread' }).waitFor();
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
  });

  await test('after a dropped network the socket resumes from its cursor: nothing lost, nothing twice', async () => {
    networkDown = true;
    for (const ws of agentSockets.splice(0)) await ws.close({ code: 4000, reason: 'network down' });
    await page.locator('.conn[data-state="connecting"]').waitFor();
    const bodies = ['While you were away: one', 'While you were away: two', 'While you were away: three'];
    for (const body of bodies) await http('POST', `/v1/conversations/${visitor.conversation}/messages`, { body }, visitor.token);
    networkDown = false;
    await page.locator('.conn[data-state="online"]').waitFor();
    for (const body of bodies) await page.locator('.msg.customer', { hasText: body }).waitFor();
    const counts = await page.$$eval('.msg.customer .body', (ps) => ps.map((p) => p.textContent).filter((t) => t.startsWith('While you were away')));
    if (counts.length !== 3) throw new Error(`shown: ${JSON.stringify(counts)}`);
  });

  await test('history is paged back with "Show older messages"', async () => {
    const opened = await http('POST', '/v1/conversations', { contact: { name: 'Paula Pager' } });
    const id = opened.conversation.id;
    await http('POST', `/v1/conversations/${id}/handoff`, {}, opened.visitor_token);
    for (let i = 1; i <= 60; i += 1) {
      await http('POST', `/v1/conversations/${id}/messages`, { body: `Paged line ${String(i).padStart(2, '0')}` }, opened.visitor_token);
    }
    await page.evaluate((cid) => { location.hash = `#/c/${cid}`; }, id);
    await page.locator('.msg.customer', { hasText: 'Paged line 60' }).waitFor();
    if (await page.locator('.msg', { hasText: 'Paged line 01' }).count()) throw new Error('the whole history came at once');
    await page.getByRole('button', { name: 'Show older messages' }).click();
    await page.locator('.msg.customer', { hasText: 'Paged line 01' }).waitFor();
    await page.evaluate((cid) => { location.hash = `#/c/${cid}`; }, visitor.conversation);
    await page.locator(`.conversation[data-id="${visitor.conversation}"]`).waitFor();
  });

  // The admin, in a second browser context.
  const adminContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const admin = await adminContext.newPage();
  admin.on('pageerror', (e) => errors.push(String(e)));

  await test('an admin creates an agent, changes a setting and business hours, and saves a canned response', async () => {
    await admin.goto(server.url + '/');
    await logIn(admin, 'admin@demo.example');
    await admin.getByRole('link', { name: 'Admin', exact: true }).click();
    await admin.getByRole('heading', { name: 'Staff', exact: true }).waitFor();
    await noSerious(admin, 'admin staff');
    await shot(admin, 'console-admin-staff');
    const form = admin.locator('form', { has: admin.getByRole('heading', { name: 'Add a staff member' }) });
    await form.getByLabel('Name').fill('Nina New');
    await form.getByLabel('E-mail').fill('nina@demo.example');
    await form.getByLabel('Role').selectOption('agent');
    await form.getByLabel(/Password/).fill('nina-password-1');
    await form.getByRole('button', { name: 'Create' }).click();
    await admin.locator('tr[data-email="nina@demo.example"]').waitFor();
    await admin.getByLabel('Role of Nina New').selectOption('supervisor');
    await until(async () => (await http('POST', '/v1/auth/login', { email: 'nina@demo.example', password: 'nina-password-1' })).agent.role === 'supervisor', 'the role change');

    await admin.getByRole('link', { name: 'Settings' }).click();
    await admin.getByLabel('Welcome message').fill('Welcome to the zebracorn desk!');
    await admin.getByLabel('Assign queued conversations automatically').uncheck();
    await admin.getByRole('button', { name: 'Save' }).click();
    await admin.getByText('Saved.').first().waitFor();
    await noSerious(admin, 'admin settings');
    await shot(admin, 'console-admin-settings');

    await admin.getByRole('link', { name: 'Business hours' }).click();
    await admin.getByLabel(/Use business hours/).check();
    await admin.getByLabel(/Time zone/).fill('Europe/Berlin');
    await admin.getByLabel('Monday').fill('09:00-12:30, 13:30-17:30');
    await admin.getByLabel('Tuesday').fill('09:00-17:30');
    await admin.getByLabel(/Holidays/).fill('2026-12-25');
    await admin.getByLabel('Message to visitors while closed').fill('We are closed.');
    await admin.getByRole('button', { name: 'Save' }).click();
    const adminToken = (await http('POST', '/v1/auth/login', { email: 'admin@demo.example', password: PASSWORD })).access_token;
    await until(async () => (await http('GET', '/v1/settings', undefined, adminToken)).business_hours, 'the business hours saved');
    await noSerious(admin, 'admin hours');
    await shot(admin, 'console-admin-hours');

    await admin.getByRole('link', { name: 'Canned responses' }).click();
    await admin.getByLabel('Shortcut', { exact: true }).fill('thanks');
    await admin.getByLabel('Title', { exact: true }).fill('Thank the customer');
    await admin.getByLabel('Text', { exact: true }).fill('Thank you {{contact.name}}, happy to help!');
    await admin.getByRole('button', { name: 'Create' }).click();
    await admin.locator('tr[data-shortcut="thanks"]').waitFor();
    await noSerious(admin, 'admin canned');

    await admin.getByRole('link', { name: 'Bot tokens' }).click();
    await admin.getByLabel('Name').fill('order-bot');
    await admin.getByRole('button', { name: 'Create' }).click();
    await admin.locator('code.token').waitFor();
    await noSerious(admin, 'admin bots');

    const s = await http('GET', '/v1/settings', undefined, adminToken);
    if (s.welcome_message !== 'Welcome to the zebracorn desk!' || s.auto_assign !== false) throw new Error(JSON.stringify(s));
    const bh = s.business_hours;
    if (bh?.time_zone !== 'Europe/Berlin' || bh.weekly.mon.length !== 2 || bh.weekly.tue[0].to !== '17:30' || bh.holidays[0] !== '2026-12-25') throw new Error(JSON.stringify(bh));
  });

  await test('the agent sees no admin area, and the server refuses it anyway', async () => {
    if (await page.getByRole('link', { name: 'Admin', exact: true }).count()) throw new Error('the agent sees the admin link');
    const token = (await http('POST', '/v1/auth/login', { email: 'agent@demo.example', password: PASSWORD })).access_token;
    const r = await fetch(`${server.url}/v1/settings`, { headers: { authorization: `Bearer ${token}` } });
    if (r.status !== 403) throw new Error(`settings for an agent: ${r.status}`);
  });

  await test('a canned response is picked after "/" and inserted with its placeholder filled', async () => {
    const box = page.getByRole('textbox', { name: 'Reply to the customer' });
    await box.fill('');
    await box.pressSequentially('/tha');
    await page.getByRole('option', { name: /thanks/ }).waitFor();
    await box.press('Enter');
    await page.waitForFunction(() => document.getElementById('composer-text').value === 'Thank you Vera Visitor, happy to help!');
    await box.press('Enter');
    await until(async () => (await http('GET', `/v1/conversations/${visitor.conversation}/messages`, undefined, visitor.token))
      .items.some((m) => m.body === 'Thank you Vera Visitor, happy to help!'), 'the canned reply at the visitor');
  });

  await test('e closes the conversation; the search finds it', async () => {
    await page.locator('.messages').focus();
    await page.keyboard.press('e');
    await page.locator('.conv-head .badge.mode-closed').waitFor();
    await page.keyboard.press('/');
    await page.getByRole('searchbox', { name: 'Search conversations' }).fill('zebracorn');
    await page.keyboard.press('Enter');
    await page.getByText('Results for “zebracorn”.').waitFor();
    await page.waitForFunction((id) => {
      const rows = [...document.querySelectorAll('.conversations li[data-id]')];
      return rows.length === 1 && rows[0].dataset.id === id;
    }, visitor.conversation);
    await page.locator(`.conversations li[data-id="${visitor.conversation}"] .snippet mark`, { hasText: 'zebracorn' }).waitFor();
    await shot(page, 'console-search');
    // A word only the internal note has: the hit the server sends is labelled a note.
    await page.getByRole('searchbox', { name: 'Search conversations' }).fill('double-charged');
    await page.keyboard.press('Enter');
    const noteHit = page.locator(`.conversations li[data-id="${visitor.conversation}"] .snippet`);
    await noteHit.locator('mark', { hasText: 'double' }).waitFor();
    await noteHit.locator('.note-label', { hasText: 'Internal note' }).waitFor();
    await page.getByRole('button', { name: 'Clear the search' }).click();
    await page.waitForFunction(() => document.querySelectorAll('.conversations li[data-id]').length > 1);
  });

  await test('keyboard shortcuts: ? lists them, j and k move through the inbox, Escape closes', async () => {
    await page.locator('.messages').focus();
    await page.keyboard.press('?');
    const dialog = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
    await dialog.waitFor();
    await noSerious(page, 'shortcuts dialog');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    const ids = await page.$$eval('.conversations li[data-id]', (li) => li.map((l) => l.dataset.id));
    const before = await page.evaluate(() => location.hash);
    const at = ids.findIndex((id) => before.endsWith(id));
    await page.keyboard.press('j');
    const expectNext = ids[Math.min(ids.length - 1, at + 1)];
    await page.waitForFunction((id) => location.hash === `#/c/${id}`, expectNext);
    await page.locator(`.conversation[data-id="${expectNext}"]`).waitFor();
    await page.keyboard.press('k');
    await page.waitForFunction((id) => location.hash === `#/c/${id}`, ids[at]);
    await page.locator(`.conversations a[aria-current="true"][href="#/c/${ids[at]}"]`).waitFor();
  });

  await test('a conversation assigned to the agent raises the title counter', async () => {
    const opened = await http('POST', '/v1/conversations', { contact: { name: 'Otto Other' } });
    const adminToken = (await http('POST', '/v1/auth/login', { email: 'admin@demo.example', password: PASSWORD })).access_token;
    const agentId = (await http('GET', '/v1/agents', undefined, adminToken)).items.find((a) => a.email === 'agent@demo.example').id;
    await http('POST', `/v1/conversations/${opened.conversation.id}/assign`, { agent_id: agentId }, adminToken);
    await page.waitForFunction(() => document.title.startsWith('(1) '));
    await page.locator(`.conversations li[data-id="${opened.conversation.id}"]`).waitFor();
    otto = opened.conversation.id;
  });

  await test('the agent transfers a conversation to a colleague with a reason; g i goes back to the inbox', async () => {
    await page.locator(`.conversations li[data-id="${otto}"] a`).click();
    await page.getByRole('heading', { name: 'Otto Other', level: 2 }).waitFor();
    await page.getByRole('button', { name: 'Transfer' }).click();
    const dialog = page.getByRole('dialog', { name: 'Transfer' });
    const supervisor = await dialog.locator('option', { hasText: 'Demo Supervisor' }).getAttribute('value');
    await dialog.getByLabel('Agent').selectOption(supervisor);
    await dialog.getByLabel('Reason').fill('needs a refund approval');
    await dialog.getByRole('button', { name: 'OK' }).click();
    await dialog.waitFor({ state: 'detached' });
    const adminToken = (await http('POST', '/v1/auth/login', { email: 'admin@demo.example', password: PASSWORD })).access_token;
    await until(async () => (await http('GET', `/v1/conversations/${otto}`, undefined, adminToken)).assigned_agent_id === supervisor, 'the transfer');
    await page.locator('.messages').focus();
    await page.keyboard.press('g');
    await page.keyboard.press('i');
    await page.getByRole('heading', { name: 'No conversation open' }).waitFor();
  });

  await test('in Arabic the console is right-to-left', async () => {
    // The conversation closed above shows its closing notice as its inbox preview.
    const snippets = page.locator('.conversations .snippet');
    await snippets.filter({ hasText: /^Conversation closed$/ }).first().waitFor();
    await page.getByLabel('Language').selectOption('ar');
    await page.waitForFunction(() => document.documentElement.dir === 'rtl' && document.documentElement.lang === 'ar');
    await page.getByRole('navigation', { name: 'صندوق الوارد' }).waitFor();
    // Previews of the desk's notices follow the language too, not the stored English.
    await snippets.filter({ hasText: /^أُغلقت المحادثة$/ }).first().waitFor();
    if (await snippets.filter({ hasText: /^Conversation closed$/ }).count()) throw new Error('an English notice in the Arabic inbox');
    const [inbox, main] = await Promise.all([page.locator('.inbox-slot').boundingBox(), page.locator('#main').boundingBox()]);
    if (!(inbox.x > main.x)) throw new Error(`the inbox is not on the right: ${inbox.x} vs ${main.x}`);
    await noSerious(page, 'inbox in Arabic');
    await shot(page, 'console-arabic');
    await page.getByLabel('اللغة').selectOption('en');
    await page.waitForFunction(() => document.documentElement.dir === 'ltr');
  });

  await test('a revoked credential takes the agent back to the login', async () => {
    const adminToken = (await http('POST', '/v1/auth/login', { email: 'admin@demo.example', password: PASSWORD })).access_token;
    const agentId = (await http('GET', '/v1/agents', undefined, adminToken)).items.find((a) => a.email === 'agent@demo.example').id;
    await http('PATCH', `/v1/agents/${agentId}`, { password: 'a-brand-new-password' }, adminToken);
    // The socket checks its credential before it sends anything more: something happens.
    const opened = await http('POST', '/v1/conversations', { contact: { name: 'After Revocation' } });
    await http('POST', `/v1/conversations/${opened.conversation.id}/assign`, { agent_id: agentId }, adminToken);
    await page.getByRole('heading', { name: 'Sign in to the support desk' }).waitFor();
    await page.getByText('Your access was revoked; sign in again.').waitFor();
    if (await page.evaluate(() => sessionStorage.length)) throw new Error('the session was kept');
  });

  await test('no script errors', async () => {
    if (errors.length) throw new Error(errors.join('\n'));
  });
} finally {
  writeFileSync(join(artifacts, 'console-figures.json'), JSON.stringify(figures, null, 2));
  console.log('figures', JSON.stringify(figures));
  await browser.close();
  await server.stop();
}
