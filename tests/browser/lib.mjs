// Shared by every browser test: the real server binary on a temp database, and Debian's
// chromium driven by playwright-core. Each `*.test.mjs` is a plain Node script that exits
// non-zero on failure; `run.mjs` runs them all.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, '..', '..');
/** Screenshots and other artifacts of a run (ignored by git). */
export const artifacts = join(here, 'artifacts');
mkdirSync(artifacts, { recursive: true });

/** The server binary: CHAT_SERVER_BIN, or the debug build. */
export const serverBin = process.env.CHAT_SERVER_BIN || join(root, 'target', 'debug', 'chat-server');

/**
 * Starts the binary on 127.0.0.1:0 with a fresh data directory and `args` (for example
 * `['--demo']`), and resolves once it logs its address. `server.url` is its base URL;
 * `server.log` every line it wrote; `server.stop()` ends it and removes the directory.
 */
export async function startServer(args = []) {
  const dir = mkdtempSync(join(tmpdir(), 'chat-browser-'));
  const child = spawn(serverBin, ['--listen', '127.0.0.1:0', '--db', join(dir, 'chat.db'), ...args], {
    env: { ...process.env, RUST_LOG: 'info', CHAT_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log = [];
  const address = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stderr });
    lines.on('line', (line) => {
      log.push(line);
      try {
        const f = JSON.parse(line).fields || {};
        if (typeof f.message === 'string' && f.message.endsWith('listening') && f.address) resolve(f.address);
      } catch { /* not JSON: kept in the log only */ }
    });
    child.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening:\n${log.join('\n')}`)));
  });
  return {
    url: `http://${address}`,
    log,
    dir,
    child,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Debian's chromium, headless, with the flags this machine needs and a fresh profile. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/** Runs axe-core on the page and returns the serious and critical violations. */
export async function seriousViolations(page) {
  const axe = join(root, 'tests', 'browser', 'node_modules', 'axe-core', 'axe.min.js');
  // Evaluated rather than added as a <script>: the pages' CSP refuses inline scripts.
  await page.evaluate(readFileSync(axe, 'utf8'));
  const result = await page.evaluate(async () => await globalThis.axe.run());
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** A named test: runs `fn`, prints the outcome, and records a failure for the exit code. */
let failures = 0;

// Pages whose story is told when a test fails: the answers the server refused and the
// screen as it was, so a failure in CI can be read without running it again.
const watched = [];

/** Keeps `page`'s refused answers (status 400 and up) for the report of a failing test. */
export function watch(page, label) {
  const entry = { page, label, refused: [] };
  page.on('response', (r) => {
    if (r.status() < 400) return;
    r.text().then((body) => entry.refused.push(`${r.request().method()} ${r.url()} -> ${r.status()} ${body.slice(0, 200)}`))
      .catch(() => entry.refused.push(`${r.request().method()} ${r.url()} -> ${r.status()}`));
  });
  watched.push(entry);
}

async function tellFailure() {
  for (const entry of watched) {
    if (entry.page.isClosed()) continue;
    const file = join(artifacts, `FAIL-${entry.label}.png`);
    await entry.page.screenshot({ path: file }).catch(() => {});
    const toasts = await entry.page.locator('.toast').allTextContents().catch(() => []);
    console.log(`  ${entry.label}: screenshot ${file}`);
    if (toasts.length) console.log(`  ${entry.label}: toasts ${JSON.stringify(toasts)}`);
    for (const line of entry.refused.slice(-10)) console.log(`  ${entry.label}: refused ${line}`);
  }
}
export async function test(name, fn) {
  const started = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${name}\n${e && e.stack ? e.stack : e}`);
    await tellFailure();
  }
}
process.on('beforeExit', () => { if (failures) process.exitCode = 1; });
