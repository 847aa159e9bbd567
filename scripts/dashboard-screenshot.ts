// The README's dashboard screenshot: memshard -t 2 --hot-keys under an mcload zipf load (pipeline
// 1, 90% get, key prefix `user:`), the page in headless Chromium (Debian's /usr/bin/chromium via
// playwright-core, or CHROMIUM_BIN) after --seconds of it, full page, to --out (docs/dashboard.png).
//   npm run build && node dist/scripts/dashboard-screenshot.js [--out FILE] [--seconds S] [--width PX]
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ensureMcload, freePort, installCleanupHandlers, killAll, log, positiveNumber, repoRoot, runMain, runMcload, scriptOptions, sleep, startMemshard } from './bench.js';

const usage = `usage: node dist/scripts/dashboard-screenshot.js [--out FILE] [--seconds S] [--width PX]
  --out FILE     where the PNG goes (docs/dashboard.png)
  --seconds S    seconds of load before the screenshot (40)
  --width PX     viewport width (1280)`;

async function main(): Promise<number> {
  const opts = scriptOptions(usage, ['help'], ['out', 'seconds', 'width']);
  if (typeof opts === 'number') return opts;
  const out = path.resolve(opts.get('out') ?? path.join(repoRoot, 'docs', 'dashboard.png'));
  const seconds = positiveNumber(opts.get('seconds'), 40, 'seconds');
  const width = Math.round(positiveNumber(opts.get('width'), 1280, 'width'));
  installCleanupHandlers();
  const mcload = ensureMcload();
  const metricsPort = await freePort();
  const server = await startMemshard({ threads: 2, memoryMb: 64, args: ['--hot-keys', '--metrics-port', String(metricsPort)] });
  const load = ['--threads', '2', '--conns', '8', '--pipeline', '1', '--key-pattern', 'zipf', '--keys', '50000', '--key-prefix', 'user:', '--value-size', '100-3000', '--ratio', '1:9'];
  await runMcload(mcload, server.port, [...load, '--mode', 'prefill', '--max-time', '60'], 90_000);
  const running = runMcload(mcload, server.port, [...load, '--duration', String(seconds + 15)], (seconds + 60) * 1000);
  const browser = await chromium.launch({ executablePath: process.env['CHROMIUM_BIN'] ?? '/usr/bin/chromium' });
  try {
    const page = await browser.newPage({ viewport: { width, height: 900 }, deviceScaleFactor: 1 });
    page.on('pageerror', (e) => log(`page error: ${e.message}`));
    await page.goto(`http://127.0.0.1:${metricsPort}/`);
    await sleep(seconds * 1000);
    await page.screenshot({ path: out, fullPage: true });
    log(`wrote ${out}`);
  } finally {
    await browser.close();
  }
  await running;
  await killAll();
  return 0;
}

runMain(import.meta.url, main);
