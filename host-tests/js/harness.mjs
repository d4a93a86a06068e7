// Drives Debian's headless Chromium for tinyrtc's interop tests.
//
// Serves a blank page (with page.js) on 127.0.0.1, opens it in Chromium, then
// speaks line-delimited JSON on stdin/stdout:
//   -> {"id":1,"call":"offer","args":[{...}]}   calls window.tr.offer(...args)
//   <- {"id":1,"ok":<result>} or {"id":1,"err":"message"}
//   <- {"event":"candidate",...}                 pushed by the page at any time
// The first line written is {"ready":true,"url":"..."}. Closing stdin closes
// the browser and exits. Diagnostics go to stderr.
import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pageJs = fs.readFileSync(path.join(here, 'page.js'), 'utf8');
const html = '<!doctype html><html><head><meta charset="utf-8"><title>tinyrtc</title>' +
  '<script src="/page.js"></script></head><body></body></html>';

export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

export function chromiumArgs(userDataDir) {
  return [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--user-data-dir=${userDataDir}`, '--remote-debugging-pipe',
    '--allow-loopback-in-peer-connection',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--autoplay-policy=no-user-gesture-required',
  ];
}

function serve() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      if (req.url === '/page.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(pageJs);
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(html);
      }
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// Start a server, a browser and a page; `onEvent` receives page events.
export async function openPage(onEvent) {
  const server = await serve();
  const url = `http://127.0.0.1:${server.address().port}/`;
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyrtc-chromium-'));
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    ignoreDefaultArgs: true,
    args: chromiumArgs(userDataDir),
  });
  const context = await browser.newContext();
  await context.grantPermissions(['camera', 'microphone'], { origin: url.slice(0, -1) });
  const page = await context.newPage();
  page.on('console', (m) => process.stderr.write(`[page ${m.type()}] ${m.text()}\n`));
  page.on('pageerror', (e) => process.stderr.write(`[page error] ${e}\n`));
  await page.exposeFunction('__trEvent', (s) => onEvent(JSON.parse(s)));
  await page.goto(url);
  const call = (name, args) =>
    page.evaluate(([n, a]) => window.tr[n](...a), [name, args || []]);
  const close = async () => {
    await browser.close().catch(() => {});
    server.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { url, page, call, close };
}

async function main() {
  const write = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
  const session = await openPage((ev) => write(ev));
  write({ ready: true, url: session.url });
  const rl = readline.createInterface({ input: process.stdin });
  const pending = [];
  rl.on('line', (line) => {
    if (!line.trim()) return;
    let msg;
    try {
      msg = JSON.parse(line);
    } catch (e) {
      write({ id: null, err: `bad request: ${e}` });
      return;
    }
    pending.push(
      session.call(msg.call, msg.args).then(
        (ok) => write({ id: msg.id, ok: ok === undefined ? null : ok }),
        (e) => write({ id: msg.id, err: String(e && e.message ? e.message : e) }),
      ),
    );
  });
  rl.on('close', async () => {
    await Promise.allSettled(pending);
    await session.close();
    process.exit(0);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`harness failed: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  });
}
