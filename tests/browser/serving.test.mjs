// The pages the binary serves load in a real browser without a script error or a
// content-security-policy violation (our own policy must admit our own files).
import { startServer, launchBrowser, test } from './lib.mjs';

const server = await startServer();
const browser = await launchBrowser();
try {
  for (const path of ['/', '/demo']) {
    await test(`${path} loads without errors`, async () => {
      const page = await browser.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      const resp = await page.goto(server.url + path);
      if (resp.status() !== 200) throw new Error(`${path}: ${resp.status()}`);
      await page.waitForLoadState('load');
      if (errors.length) throw new Error(`${path}: ${errors.join('\n')}`);
      await page.close();
    });
  }
} finally {
  await browser.close();
  await server.stop();
}
