// Both faces at once: a visitor in the widget on /demo and an agent in the console, in two
// browser contexts against one real server. Nothing is driven over the API in between:
// what one side does, the other must see live. The conversation then shows in the reports
// page (the agent's own, and the whole desk for the admin), charts and CSV included.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launchBrowser, seriousViolations, test, artifacts, watch } from './lib.mjs';

const PASSWORD = 'demo-password';
const server = await startServer(['--demo']);
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
const admin = (await api('POST', '/v1/auth/login', null, { email: 'admin@demo.example', password: PASSWORD })).access_token;
// No automatic routing: the handed-off conversation waits in the queue until the agent
// claims it in the console.
await api('PATCH', '/v1/settings', admin, { auto_assign: false });

async function noSerious(page, screen) {
  const bad = await seriousViolations(page);
  if (bad.length) throw new Error(`${screen}: ${bad.map((v) => `${v.id} (${v.nodes.map((n) => n.target).join(' | ')})`).join('\n')}`);
}
const shot = (page, name) => page.screenshot({ path: join(artifacts, `${name}.png`) });

async function consolePage(email, height = 860) {
  const context = await browser.newContext({ viewport: { width: 1280, height }, acceptDownloads: true });
  context.setDefaultTimeout(10000);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  watch(page, email.split('@')[0]);
  await page.goto(server.url + '/');
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.conversations').waitFor();
  return { context, page, errors };
}

const agent = await consolePage('agent@demo.example');
const visitorContext = await browser.newContext({ viewport: { width: 1100, height: 760 } });
visitorContext.setDefaultTimeout(10000);
const vpage = await visitorContext.newPage();
const visitorErrors = [];
vpage.on('pageerror', (e) => visitorErrors.push(String(e)));
watch(vpage, 'visitor');
// The same shop page in Arabic when the test asks (`test.lang`): its <html lang> is what
// the widget follows. (Serving a rewritten page through page.route would make it a
// non-local document, which chromium then bars from the loopback server.)
await vpage.addInitScript(() => {
  if (sessionStorage.getItem('test.lang') !== 'ar') return;
  const watch = new MutationObserver(() => {
    if (!document.documentElement) return;
    document.documentElement.lang = 'ar';
    watch.disconnect();
  });
  watch.observe(document, { childList: true });
});
const w = vpage.locator('#chatdesk-widget');
let conversation;
const FEEDBACK = 'Dana sorted out the zebracorn refund in minutes.';

async function send(text) {
  await w.getByRole('textbox', { name: 'Write a message' }).fill(text);
  await w.getByRole('button', { name: 'Send', exact: true }).click();
}

try {
  await test('widget and console at once: bot, handoff, claim, replies both ways live, a hidden note, close and rating', async () => {
    const { page } = agent;
    await vpage.goto(`${server.url}/demo`);
    await w.getByRole('button', { name: 'Open chat' }).click();
    await send('Hi, my zebracorn order arrived broken');
    await w.locator('.msg[data-sender="bot"]').first().waitFor();
    conversation = await vpage.evaluate(() => {
      const key = Object.keys(localStorage).find((k) => k.startsWith('chatdesk:'));
      return key && JSON.parse(localStorage.getItem(key)).conversationId;
    });
    if (!conversation) throw new Error('the widget kept no conversation');
    await w.getByRole('button', { name: 'Talk to a human' }).click();
    await w.getByText(/You are number \d+ in the queue\./).waitFor();

    // The console's inbox gets it live, in the queue.
    const row = page.locator(`.conversations li[data-id="${conversation}"][data-mode="queued"]`);
    await row.waitFor();
    await row.locator('a').click();
    await page.getByText('Hi, my zebracorn order arrived broken').waitFor();
    await page.locator('[data-action="claim"]').click();
    await page.locator('.conv-head .badge.mode-agent').waitFor();
    // The visitor sees the desk take it: the queue banner goes, the notice names the agent.
    await w.locator('.msg.event[data-notice="assigned"]', { hasText: 'Demo Agent joined the conversation' }).waitFor();
    await w.getByText(/You are number \d+ in the queue\./).waitFor({ state: 'hidden' });
    await page.locator('.msg.event[data-notice="assigned"]', { hasText: 'Assigned to Demo Agent' }).waitFor();

    // The same notices in Arabic, for a visitor whose page is in Arabic: written from the
    // notice's kind and parameters, not the stored English.
    await vpage.evaluate(() => sessionStorage.setItem('test.lang', 'ar'));
    await vpage.reload();
    await w.locator('button.launcher').click();
    await w.locator('.msg.event[data-notice="assigned"]', { hasText: 'انضم Demo Agent إلى المحادثة' }).waitFor();
    await w.locator('.msg.event[data-notice="queued"]', { hasText: 'بانتظار موظف' }).waitFor();
    if (await w.getByText('Assigned to', { exact: false }).count()) throw new Error('an English notice in the Arabic widget');
    await shot(vpage, 'joint-widget-ar');
    await vpage.evaluate(() => sessionStorage.removeItem('test.lang'));
    await vpage.reload();
    await w.getByRole('button', { name: 'Open chat' }).click();
    await w.locator('.msg.event[data-notice="assigned"]', { hasText: 'Demo Agent joined the conversation' }).waitFor();

    // The agent replies in the console; the widget shows it live.
    const reply = page.getByRole('textbox', { name: 'Reply to the customer' });
    await reply.fill('Sorry about that! I am Dana, I will refund it now.');
    await reply.press('Enter');
    await w.getByText('Sorry about that! I am Dana, I will refund it now.').waitFor();

    // The visitor answers; the console shows it live.
    await send('Thank you, Dana!');
    await page.locator('.msg', { hasText: 'Thank you, Dana!' }).waitFor();

    // A note in the console stays out of the widget.
    await page.getByRole('button', { name: 'Internal note', exact: true }).click();
    const note = page.getByRole('textbox', { name: 'Internal note (only staff see it)' });
    await note.fill('SECRET-NOTE refund approved by finance');
    await note.press('Enter');
    await page.locator('.msg.note', { hasText: 'SECRET-NOTE' }).waitFor();
    // One more reply after the note: once it is in the widget, the note had its chance.
    await page.getByRole('button', { name: 'Reply', exact: true }).click();
    await reply.fill('The refund is on its way.');
    await reply.press('Enter');
    await w.getByText('The refund is on its way.').waitFor();
    if ((await vpage.content()).includes('SECRET-NOTE') || await w.getByText('SECRET-NOTE').count()) throw new Error('the note reached the widget');
    await shot(page, 'joint-console');
    await shot(vpage, 'joint-widget');

    // The agent closes in the console; the visitor is asked to rate and does.
    await page.locator('[data-action="close"]').click();
    await page.locator('.conv-head .badge.mode-closed').waitFor();
    await w.getByText('How was your conversation?').waitFor();
    await w.getByRole('radio', { name: '5 out of 5' }).check();
    await w.getByRole('textbox', { name: 'Anything to add? (optional)' }).fill(FEEDBACK);
    await w.getByRole('button', { name: 'Send rating' }).click();
    await w.getByText('Thank you for your feedback!').waitFor();
    if (agent.errors.length || visitorErrors.length) throw new Error([...agent.errors, ...visitorErrors].join('\n'));
  });

  await test('the rating shows in the agent\'s own reports, with the feedback text', async () => {
    const { page } = agent;
    // The console in Arabic writes the desk's notices in Arabic too.
    await page.getByLabel('Language').selectOption('ar');
    await page.locator('.msg.event[data-notice="assigned"]', { hasText: 'أُسندت إلى Demo Agent' }).waitFor();
    await page.locator('.msg.event[data-notice="closed"]', { hasText: 'أُغلقت المحادثة' }).waitFor();
    if (await page.locator('.msg.event', { hasText: 'Conversation closed' }).count()) throw new Error('an English notice in the Arabic console');
    await shot(page, 'joint-console-ar');
    await page.getByLabel('اللغة').selectOption('en');
    await page.getByRole('link', { name: 'Reports' }).click();
    await page.getByRole('heading', { name: 'My reports', level: 2 }).waitFor();
    // An agent's reports are its own: no agent picker.
    if (await page.getByLabel('Agent', { exact: true }).count()) throw new Error('an agent can pick another agent');
    const item = page.locator(`.feedback li[data-conversation="${conversation}"]`);
    await item.getByText(FEEDBACK).waitFor();
    await item.getByLabel('5 of 5 stars').waitFor();
    await page.locator('[data-figure="csat"] .value', { hasText: '5' }).waitFor();
    await page.locator('.csat tr[data-score="5"] .fill[data-value="1"]').waitFor();
    // One rating, in the singular: the language's plural rules pick the form.
    const ratings = await page.locator('[data-figure="csat"] .detail').textContent();
    if (ratings !== '1 rating') throw new Error(`the CSAT figure says "${ratings}"`);
    await noSerious(page, 'reports (agent)');
    await shot(page, 'console-reports-agent');
    // The feedback links back to the conversation.
    await item.getByRole('link', { name: 'Open the conversation' }).click();
    await page.getByText('The refund is on its way.').waitFor();
  });

  await test('the admin\'s reports: figures, chart, breakdown per agent, CSAT, CSV, time zone and hourly series', async () => {
    // A tall window, so the screenshot shows the whole page.
    const { page, errors } = await consolePage('admin@demo.example', 1900);
    await page.getByRole('link', { name: 'Reports' }).click();
    await page.getByRole('heading', { name: 'Reports', level: 2 }).waitFor();
    await page.locator(`.feedback li[data-conversation="${conversation}"]`, { hasText: FEEDBACK }).waitFor();
    const overview = await api('GET', `/v1/reports/overview?from=${await page.getByLabel('From', { exact: true }).inputValue()}&to=${await page.getByLabel('To', { exact: true }).inputValue()}&tz=${encodeURIComponent(await page.getByLabel('Time zone', { exact: true }).inputValue())}`, admin);
    // The figures on the page are the server's.
    for (const k of ['opened', 'closed']) {
      const shown = await page.locator(`[data-figure="${k}"] .value`).textContent();
      if (Number(shown.replace(/\D/g, '')) !== overview.totals[k]) throw new Error(`${k}: page ${shown}, API ${overview.totals[k]}`);
    }
    if (overview.totals.opened < 1 || overview.totals.csat.count < 1) throw new Error(JSON.stringify(overview.totals));
    // The series chart: one bar per day and series, today's "opened" bar as tall as the figure.
    const bars = await page.locator('svg.chart rect.bar').count();
    if (bars !== 7 * 3) throw new Error(`${bars} bars for 7 days × 3 series`);
    const todayOpened = await page.locator('svg.chart g.point').last().locator('rect.s0').getAttribute('data-value');
    if (Number(todayOpened) < 1) throw new Error(`today's opened bar is ${todayOpened}`);
    // Breakdown per agent names the agent who handled it.
    await page.locator('.breakdown tbody tr', { hasText: 'Demo Agent' }).waitFor();
    await page.getByLabel('Per', { exact: true }).selectOption('channel');
    await page.locator('.breakdown tbody tr', { hasText: 'Website' }).waitFor();
    await noSerious(page, 'reports (admin)');
    await shot(page, 'console-reports');
    // Just the reports, for the README (docs/reports.png).
    await page.locator('.reports').screenshot({ path: join(artifacts, 'reports-readme.png') });

    // CSV: the feedback download holds the text.
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('[data-csv="feedback"]').click()]);
    const csv = readFileSync(await download.path(), 'utf8');
    if (!csv.startsWith('conversation_id,') || !csv.includes(FEEDBACK)) throw new Error(`feedback CSV: ${csv.slice(0, 300)}`);
    if (!/^feedback-\d{4}-\d\d-\d\d-\d{4}-\d\d-\d\d\.csv$/.test(download.suggestedFilename())) throw new Error(download.suggestedFilename());

    // Another zone and hourly bars: the request carries them and the chart follows.
    const asked = [];
    page.on('request', (r) => { if (r.url().includes('/v1/reports/series')) asked.push(new URL(r.url()).searchParams); });
    const today = await page.getByLabel('To', { exact: true }).inputValue();
    const zone = await page.getByLabel('Time zone', { exact: true }).inputValue();
    await page.getByLabel('From', { exact: true }).fill(today);
    await page.getByLabel('Time zone', { exact: true }).selectOption('Asia/Tokyo');
    await page.getByLabel('Chart by').selectOption('hour');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.getByRole('heading', { name: 'Conversations per hour' }).waitFor();
    const q = asked.at(-1);
    if (q.get('tz') !== 'Asia/Tokyo' || q.get('interval') !== 'hour' || q.get('from') !== today) throw new Error(String(q));
    const hourly = await page.locator('svg.chart g.point').count();
    if (hourly !== 24) throw new Error(`${hourly} hourly points for one day`);
    const firstStart = await page.locator('svg.chart g.point').first().getAttribute('data-start');
    if (!firstStart.endsWith('+09:00')) throw new Error(`the hours are not Tokyo's: ${firstStart}`);
    // A bad period is the server's clear error, and nothing else on the page.
    await page.getByLabel('From', { exact: true }).fill('2020-01-01');
    await page.getByLabel('To', { exact: true }).fill('2026-01-01');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.locator('.report-body [role="alert"]').waitFor();

    // Arabic: the page in Arabic, right to left, still accessible.
    await page.getByLabel('From', { exact: true }).fill(today);
    await page.getByLabel('To', { exact: true }).fill(today);
    await page.getByLabel('Time zone', { exact: true }).selectOption(zone);
    await page.getByRole('button', { name: 'Show' }).click();
    await page.locator('.feedback li', { hasText: FEEDBACK }).waitFor();
    await page.getByLabel('Language').selectOption('ar');
    await page.getByRole('heading', { name: 'التقارير', level: 2 }).waitFor();
    await page.locator('.feedback li', { hasText: FEEDBACK }).waitFor();
    if (await page.evaluate(() => document.documentElement.dir) !== 'rtl') throw new Error('not right to left');
    await noSerious(page, 'reports (Arabic)');
    await shot(page, 'console-reports-ar');
    await page.getByLabel('اللغة').selectOption('en');
    if (errors.length) throw new Error(errors.join('\n'));
  });
} finally {
  await browser.close();
  await server.stop();
}
