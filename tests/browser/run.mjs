// Runs every `*.test.mjs` here, one after another (each starts its own servers and
// browser), and fails if any does.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv[2];
let failed = 0;
for (const file of readdirSync(here).filter((f) => f.endsWith('.test.mjs')).sort()) {
  if (only && !file.includes(only)) continue;
  console.log(`# ${file}`);
  const r = spawnSync(process.execPath, [file], { cwd: here, stdio: 'inherit' });
  if (r.status !== 0) failed += 1;
}
if (failed) {
  console.log(`${failed} browser test file(s) failed`);
  process.exit(1);
}
