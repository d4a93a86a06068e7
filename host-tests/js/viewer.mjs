// Opens the virtual device's viewer page in headless Chromium, several times
// (one browser context per viewer), and reports what each page saw.
//
//   node viewer.mjs '{"url":"http://127.0.0.1:8080/","pages":3,"frames":10,
//                     "readings":3,"fetchClip":true,"timeoutMs":30000,
//                     "screenshot":"/tmp/shot.png"}'
//
// Pages are opened one after another (each waits until it is connected or
// refused) so the first ones get the device's slots. Prints one JSON object:
// {"pages":[{"status","error","connected","framesDecoded","readings",
// "lastReading","latestText","clip","clipText"}...]}. Diagnostics on stderr.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromiumArgs, chromiumPath } from './harness.mjs';

const opts = JSON.parse(process.argv[2] || '{}');
const url = opts.url;
const deadline = Date.now() + (opts.timeoutMs || 30000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function snapshot(page) {
  return page.evaluate(() => {
    const v = window.viewer || {};
    const text = (id) => (document.getElementById(id) || {}).textContent || '';
    return {
      status: text('status'),
      error: v.error || null,
      connected: !!v.connected,
      framesDecoded: v.framesDecoded || 0,
      readings: (v.readings || []).length,
      lastReading: (v.readings || []).slice(-1)[0] || null,
      latestText: text('latest'),
      clip: v.clip || null,
      clipText: text('clipinfo'),
      fetchEnabled: !document.getElementById('fetch').disabled,
    };
  });
}

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrtc-viewer-'));
  const browser = await chromium.launch({ executablePath: chromiumPath, ignoreDefaultArgs: true, args: chromiumArgs(userDataDir) });
  const pages = [];
  try {
    for (let i = 0; i < (opts.pages || 1); i++) {
      const context = await browser.newContext({ viewport: { width: 1180, height: 600 } });
      await context.grantPermissions(['camera', 'microphone'], { origin: new URL(url).origin });
      const page = await context.newPage();
      page.on('console', (m) => process.stderr.write(`[page ${i} ${m.type()}] ${m.text()}\n`));
      page.on('pageerror', (e) => process.stderr.write(`[page ${i} error] ${e}\n`));
      await page.goto(url);
      // Wait until this viewer is connected, refused, or failed.
      while (Date.now() < deadline) {
        const s = await snapshot(page);
        if (s.connected || s.error || /failed|refused/.test(s.status)) break;
        await sleep(200);
      }
      pages.push(page);
    }
    const want = (s) =>
      s.framesDecoded >= (opts.frames || 0) &&
      s.readings >= (opts.readings || 0) &&
      (!opts.fetchClip || (s.clip && s.clip.size > 0));
    const clicked = new Set();
    while (Date.now() < deadline) {
      let done = true;
      for (const [i, page] of pages.entries()) {
        const s = await snapshot(page);
        if (s.error) continue; // refused viewers are judged by the caller
        if (opts.fetchClip && s.fetchEnabled && !clicked.has(i)) {
          clicked.add(i);
          await page.click('#fetch');
        }
        if (!want(s)) done = false;
      }
      if (done) break;
      await sleep(250);
    }
    const out = [];
    for (const page of pages) out.push(await snapshot(page));
    if (opts.screenshot && pages.length) await pages[0].screenshot({ path: opts.screenshot });
    process.stdout.write(JSON.stringify({ pages: out }) + '\n');
  } finally {
    await browser.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`viewer.mjs failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
