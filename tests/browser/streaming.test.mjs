// A streaming LLM bot in the widget: the real binary with `--bot llm` against a local
// server speaking the OpenAI chat-completions streaming wire format (server-sent events,
// `data: {chunk}` … `data: [DONE]`). The test releases the pieces one at a time and
// checks the widget shows the reply growing, then the stored message in its place, and
// that an admin watching the conversation in the console sees the same.
import { createServer } from 'node:http';
import { join } from 'node:path';
import { startServer, launchBrowser, seriousViolations, test, artifacts } from './lib.mjs';

const PIECES = ['Your parcel ', 'left our warehouse ', 'this morning.'];
// While `gated`, each piece waits for the test to call release(); otherwise the whole
// answer goes at once (the opening message's reply, before the widget's socket is up).
let gated = false;
let release = () => {};
let requests = 0;
const llm = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', async () => {
    requests += 1;
    if (req.method !== 'POST' || !req.url.endsWith('/chat/completions') || !JSON.parse(body).stream) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"expected a streamed chat completion"}}');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const chunk = (delta, finish = null) => `data: ${JSON.stringify({
      id: `chatcmpl-${requests}`, object: 'chat.completion.chunk', created: 1, model: 'test-model',
      choices: [{ index: 0, delta, finish_reason: finish }],
    })}\n\n`;
    res.write(chunk({ role: 'assistant', content: '' }));
    for (const piece of gated ? PIECES : ['Hello! ', 'How can I help?']) {
      if (gated) await new Promise((r) => { release = r; });
      res.write(chunk({ content: piece }));
    }
    res.write(chunk({}, 'stop'));
    res.end('data: [DONE]\n\n');
  });
});
await new Promise((r) => llm.listen(0, '127.0.0.1', r));

const server = await startServer(['--demo', '--bot', 'llm', '--llm-base-url', `http://127.0.0.1:${llm.address().port}/v1`, '--llm-model', 'test-model']);
const browser = await launchBrowser();
const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
context.setDefaultTimeout(10000);
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
const w = page.locator('#chatdesk-widget');

// An admin watching in the console, in a browser context of its own.
const desk = await browser.newContext({ viewport: { width: 1280, height: 860 } });
desk.setDefaultTimeout(10000);
const console_ = await desk.newPage();
console_.on('pageerror', (e) => errors.push(`console: ${e}`));

async function send(text) {
  await w.getByRole('textbox', { name: 'Write a message' }).fill(text);
  await w.getByRole('button', { name: 'Send', exact: true }).click();
}

try {
  await test('a streamed bot reply grows piece by piece in the widget, then the stored message replaces it', async () => {
    await page.goto(`${server.url}/demo`);
    await w.getByRole('button', { name: 'Open chat' }).click();
    await send('Hi there');
    await w.locator('.msg[data-sender="bot"]:not(.streaming)', { hasText: 'How can I help?' }).waitFor();

    // The admin signs in and opens the visitor's conversation, found in the inbox.
    await console_.goto(`${server.url}/`);
    await console_.getByLabel('E-mail').fill('admin@demo.example');
    await console_.getByLabel('Password').fill('demo-password');
    await console_.getByRole('button', { name: 'Sign in' }).click();
    const conversation = await page.evaluate(() => {
      for (let i = 0; i < localStorage.length; i += 1) {
        const saved = JSON.parse(localStorage.getItem(localStorage.key(i)) || '{}');
        if (saved && saved.conversationId) return saved.conversationId;
      }
      return null;
    });
    if (!conversation) throw new Error('the widget kept no conversation');
    await console_.locator('.conversations').waitFor();
    await console_.goto(`${server.url}/#/c/${conversation}`);
    await console_.locator('.msg.bot', { hasText: 'How can I help?' }).waitFor();
    const watching = console_.locator('.msg.bot.streaming .body');

    gated = true;
    const asked = requests;
    await send('Where is my parcel?');
    const streaming = w.locator('.msg.streaming[data-sender="bot"] .bubble');
    // The model has been asked; each released piece shows before the next is written.
    while (requests === asked) await new Promise((r) => setTimeout(r, 20));
    release();
    await streaming.filter({ hasText: /^Your parcel $/ }).waitFor();
    await watching.filter({ hasText: /^Your parcel $/ }).waitFor();
    await page.screenshot({ path: join(artifacts, 'widget-streaming.png') });
    const stored = () => w.locator('.msg[data-sender="bot"]:not(.streaming)', { hasText: 'this morning.' });
    if (await stored().count()) throw new Error('the stored reply came before the stream ended');
    release();
    await streaming.filter({ hasText: /^Your parcel left our warehouse $/ }).waitFor();
    await watching.filter({ hasText: /^Your parcel left our warehouse $/ }).waitFor();
    await console_.screenshot({ path: join(artifacts, 'console-streaming.png') });
    const bad = await seriousViolations(page);
    if (bad.length) throw new Error(JSON.stringify(bad.map((v) => v.id)));
    release();
    // The stored message takes the stream's place: one bubble with the whole reply.
    await stored().waitFor();
    await streaming.waitFor({ state: 'detached' });
    const bubbles = await w.locator('.msg[data-sender="bot"] .bubble', { hasText: 'Your parcel' }).allTextContents();
    if (bubbles.length !== 1 || bubbles[0] !== PIECES.join('')) throw new Error(JSON.stringify(bubbles));
    // In the console too: the stored reply once, the stream gone.
    await console_.locator('.msg.bot:not(.streaming)', { hasText: 'this morning.' }).waitFor();
    await watching.waitFor({ state: 'detached' });
    const shown = await console_.locator('.msg.bot .body', { hasText: 'Your parcel' }).allTextContents();
    if (shown.length !== 1 || shown[0] !== PIECES.join('')) throw new Error(`console: ${JSON.stringify(shown)}`);
    // A reload shows the stored reply once, and no stream.
    await page.reload();
    await w.getByRole('button', { name: 'Open chat' }).click();
    await stored().waitFor();
    if (await w.locator('.msg.streaming').count()) throw new Error('a stream survived the reload');
    if ((await w.locator('.msg[data-sender="bot"]', { hasText: 'Your parcel' }).count()) !== 1) throw new Error('the reply shows twice');
    if (errors.length) throw new Error(errors.join('\n'));
  });
} finally {
  release();
  await browser.close();
  await server.stop();
  llm.close();
}
