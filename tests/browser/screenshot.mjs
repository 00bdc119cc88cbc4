// Opens a local HTML file in Debian's Chromium and checks it renders on its own. TEST ONLY.
//
//   node screenshot.mjs <file.html> <out.png>
//
// Launches /usr/bin/chromium (env CHROMIUM overrides) headless through playwright-core (no
// browser download: Debian's build is used), opens the file:// URL and checks that
//   - the page has at least one <table> and one <svg>;
//   - it makes no request other than file:// ones (any other is blocked and fails the check)
//     and no request fails;
//   - it raises no script error and logs no console error (a Content-Security-Policy
//     violation is logged as one).
// On success prints one JSON line {"ok":true,"title":...,"tables":N,"svg":N} and writes a
// full-page screenshot to <out.png>. On failure prints {"ok":false,"problems":[...]} and
// exits 1; bad arguments exit 2.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import { chromium } from 'playwright-core';

const [file, out] = process.argv.slice(2);
if (!file || !out) {
  console.error('usage: node screenshot.mjs <file.html> <out.png>');
  process.exit(2);
}
if (!existsSync(file)) {
  console.error(`screenshot: no such file: ${file}`);
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!existsSync(executablePath)) {
  console.error(`screenshot: ${executablePath} not found (run scripts/setup-test-deps.sh as root)`);
  process.exit(2);
}

const problems = [];
const browser = await chromium.launch({
  executablePath,
  headless: true,
  timeout: 60_000,
  // CI runs as root, where Chromium's sandbox cannot start. The rest keep Chromium from
  // reaching for Google's services, which this machine's closed network refuses.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
let result;
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:')) return route.continue();
    problems.push(`external request blocked: ${url}`);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.on('requestfailed', (req) => {
    if (req.url().startsWith('file:')) {
      problems.push(`request failed: ${req.url()} (${req.failure()?.errorText ?? 'unknown'})`);
    }
  });
  page.on('pageerror', (err) => problems.push(`script error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });

  const response = await page.goto(pathToFileURL(resolve(file)).href, { waitUntil: 'load', timeout: 30_000 });
  if (response && !response.ok()) problems.push(`loading the page failed: ${response.status()}`);
  const title = await page.title();
  const tables = await page.locator('table').count();
  const svg = await page.locator('svg').count();
  if (tables === 0) problems.push('no <table> in the page');
  if (svg === 0) problems.push('no <svg> in the page');
  await page.screenshot({ path: out, fullPage: true });
  result = problems.length === 0 ? { ok: true, title, tables, svg } : { ok: false, title, tables, svg, problems };
} catch (err) {
  result = { ok: false, problems: [...problems, `error: ${err.message}`] };
} finally {
  await browser.close();
}

console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
