// The admin area's webhooks page against a real receiver: register (the secret shown once
// signs what arrives), a failing delivery in the log with its attempts and last answer,
// manual redelivery once the receiver is fixed, edit, pause and resume, delete.
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { startServer, launchBrowser, seriousViolations, test, artifacts } from './lib.mjs';

// The receiving service: answers `status`, keeps every request.
let status = 500;
const received = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    received.push({ headers: req.headers, body, answered: status });
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(status === 200 ? 'ok' : 'receiver is down');
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/hooks/chat`;

// Loopback receivers need --webhooks-allow-private (refused otherwise, as they should be).
const server = await startServer(['--demo', '--webhooks-allow-private']);
const browser = await launchBrowser();

async function api(method, path, token, body) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const admin = (await api('POST', '/v1/auth/login', null, { email: 'admin@demo.example', password: 'demo-password' })).access_token;

async function until(what, fn, timeout = 15000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
context.setDefaultTimeout(10000);
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));

try {
  let secret;
  let hook;
  await test('an admin registers a webhook and sees its secret once', async () => {
    await page.goto(server.url + '/');
    await page.getByLabel('E-mail').fill('admin@demo.example');
    await page.getByLabel('Password').fill('demo-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByText('No webhooks yet.').waitFor();
    // A URL the server refuses: its error, and nothing registered.
    await page.getByLabel('URL', { exact: true }).fill('ftp://files.example.com/in');
    await page.getByRole('button', { name: 'Register' }).click();
    await page.locator('.toast.error', { hasText: 'url' }).waitFor();
    if ((await api('GET', '/v1/webhooks', admin)).items.length) throw new Error('a refused webhook was stored');

    await page.getByLabel('URL', { exact: true }).fill(hookUrl);
    await page.getByLabel('message_created').check();
    await page.getByRole('button', { name: 'Register' }).click();
    secret = await page.locator('.issued .secret').textContent();
    if (secret.length < 16) throw new Error(`secret "${secret}"`);
    [hook] = (await api('GET', '/v1/webhooks', admin)).items;
    if (hook.url !== hookUrl || hook.events.join() !== 'message_created' || 'secret' in hook) throw new Error(JSON.stringify(hook));
    await page.locator(`tr[data-webhook="${hook.id}"]`, { hasText: 'Active' }).waitFor();
    await page.getByText(`Deliveries to ${hookUrl}`).waitFor();
    await seriousFree('webhooks');
    // Shown once: the page after a reload has no secret, nor does the API.
    await page.reload();
    await page.locator(`tr[data-webhook="${hook.id}"]`).waitFor();
    if (await page.locator('.secret').count()) throw new Error('the secret is shown again');
  });

  await test('a failing delivery shows its attempts and error; redelivery reaches the fixed receiver, signed', async () => {
    const opened = await api('POST', '/v1/conversations', null, { contact: { name: 'Hook Visitor' } });
    await api('POST', `/v1/conversations/${opened.conversation.id}/messages`, opened.visitor_token, { body: 'Does the webhook hear me?' });
    await until('the first, failing attempt', () => received.some((r) => r.answered === 500));
    const lastLog = await api('GET', `/v1/webhooks/${hook.id}/deliveries`, admin);
    await page.getByRole('button', { name: `Deliveries of ${hookUrl}` }).click();
    // Newest first: the oldest event is the one attempted (the others of its conversation
    // wait behind it, in order).
    const row = page.locator('.delivery-log tbody tr').last();
    // The log is read on demand: refresh until the failed attempt is in it.
    let seen = '';
    await until('the attempt in the log', async () => {
      await page.getByRole('button', { name: 'Refresh' }).click();
      seen = await page.locator('.delivery-log').textContent().catch(() => '');
      return (await row.locator('.last').textContent().catch(() => '')).includes('HTTP 500');
    }).catch((e) => { throw new Error(`${e.message}; the log shows: ${seen}; the API: ${JSON.stringify(lastLog)}`); });
    await row.getByText('message_created').waitFor();
    await row.locator('.state-pending').waitFor();
    if (Number(await row.locator('.attempts').textContent()) < 1) throw new Error('no attempt counted');
    await page.screenshot({ path: join(artifacts, 'console-webhooks.png') });

    status = 200;
    const seq = await row.getAttribute('data-seq');
    await page.getByRole('button', { name: `Redeliver event ${seq}` }).click();
    await until('the delivery', async () => {
      await page.getByRole('button', { name: 'Refresh' }).click();
      return (await page.locator(`.delivery-log tr[data-seq="${seq}"][data-state="delivered"]`).count()) === 1;
    });
    await page.locator(`.delivery-log tr[data-seq="${seq}"]`).getByText('HTTP 200').waitFor();
    // What arrived is signed with the secret the page showed.
    const ok = received.find((r) => r.answered === 200);
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]+)$/.exec(ok.headers['x-chat-signature']) || [];
    const expected = createHmac('sha256', secret).update(`${t}.${ok.body}`).digest('hex');
    if (v1 !== expected) throw new Error(`signature ${ok.headers['x-chat-signature']} does not match the shown secret`);
    if (!ok.body.includes('Does the webhook hear me?')) throw new Error(ok.body);
    await seriousFree('delivery log');
  });

  await test('an admin edits, pauses, resumes and deletes a webhook', async () => {
    await page.getByRole('button', { name: `Edit ${hookUrl}` }).click();
    const dialog = page.getByRole('dialog', { name: 'Edit the webhook' });
    await dialog.getByLabel('conversation_created').check();
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.locator(`tr[data-webhook="${hook.id}"] code.kind`, { hasText: 'conversation_created' }).waitFor();
    const edited = await api('GET', `/v1/webhooks/${hook.id}`, admin);
    if (edited.events.slice().sort().join() !== 'conversation_created,message_created') throw new Error(JSON.stringify(edited.events));

    await page.getByRole('button', { name: `Pause ${hookUrl}` }).click();
    await page.locator(`tr[data-webhook="${hook.id}"] .state-paused`).waitFor();
    if ((await api('GET', `/v1/webhooks/${hook.id}`, admin)).state !== 'paused') throw new Error('not paused');
    await page.getByRole('button', { name: `Resume ${hookUrl}` }).click();
    await page.locator(`tr[data-webhook="${hook.id}"] .state-active`).waitFor();

    // Deleting asks first: dismissed, nothing happens; accepted, it is gone.
    page.once('dialog', (d) => d.dismiss());
    await page.getByRole('button', { name: `Delete ${hookUrl}` }).click();
    if ((await api('GET', '/v1/webhooks', admin)).items.length !== 1) throw new Error('deleted without consent');
    page.once('dialog', (d) => d.accept());
    await page.getByRole('button', { name: `Delete ${hookUrl}` }).click();
    await page.getByText('No webhooks yet.').waitFor();
    if ((await api('GET', '/v1/webhooks', admin)).items.length !== 0) throw new Error('still there');
    if (errors.length) throw new Error(errors.join('\n'));
  });

  await test('an agent has no webhooks page', async () => {
    const other = await browser.newContext();
    const p = await other.newPage();
    await p.goto(server.url + '/');
    await p.getByLabel('E-mail').fill('agent@demo.example');
    await p.getByLabel('Password').fill('demo-password');
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('link', { name: 'Reports' }).waitFor();
    if (await p.getByRole('link', { name: 'Admin' }).count()) throw new Error('an agent sees the admin link');
    await p.goto(server.url + '/#/admin/webhooks');
    await p.getByRole('heading', { name: 'No conversation open' }).waitFor();
    if (await p.getByText('Register a webhook').count()) throw new Error('an agent sees the webhooks page');
    await other.close();
  });
} finally {
  await browser.close();
  await server.stop();
  receiver.close();
}

async function seriousFree(screen) {
  const bad = await seriousViolations(page);
  if (bad.length) throw new Error(`${screen}: ${bad.map((v) => `${v.id} (${v.nodes.map((n) => n.target).join(' | ')})`).join('\n')}`);
}
