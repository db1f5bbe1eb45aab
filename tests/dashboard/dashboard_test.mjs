// The gateway's dashboard in a real browser: Playwright (playwright-core)
// drives Debian's chromium, headless, against `callcache serve` in front of
// the fake Bot API, while a load generator sends hits, misses, coalesced
// bursts, writes, paced sends (some refused, some answered 429 upstream and
// retried) and calls of a generic JSON API through the gateway.
//
// Checks: the page asks for the admin token once and loads with no console
// error; while load runs the charts gain points; afterwards the numbers on
// the page equal /stats and the history's sums equal the counters; no bot
// token, API key or the admin token appears on the page, in /stats or in
// /stats/history; the page keeps working across a gateway restart (without
// asking for the token again) and marks the restart. A screenshot of the
// page under load is written to --out.
//
// Run by ctest (dashboard_browser_test); by hand, e.g. for the README's
// screenshot after a longer load:
//   node tests/dashboard/dashboard_test.mjs --serve build/debug/src/gateway/callcache_serve_dev \
//     --fake build/debug/src/gateway/callcache_fake_telegram_server --load-seconds 150 \
//     --screenshot docs/img/dashboard.png
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {parseArgs} from 'node:util';

const {values: args} = parseArgs({
  options: {
    serve: {type: 'string'},
    fake: {type: 'string'},
    chromium: {type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium'},
    out: {type: 'string', default: 'dashboard-test'},
    'load-seconds': {type: 'string', default: '8'},
    screenshot: {type: 'string'},
  },
});
if (!args.serve || !args.fake) {
  console.error('usage: dashboard_test.mjs --serve <callcache_serve_dev> --fake <fake server> ' +
                '[--out DIR] [--load-seconds N] [--screenshot FILE] [--chromium PATH]');
  process.exit(2);
}

let chromium;
try {
  ({chromium} = await import('playwright-core'));
} catch (e) {
  console.error('FAILED: playwright-core is not installed: run `npm ci --prefix tests/dashboard` ' +
                '(./dev test does)');
  process.exit(1);
}

const ADMIN_TOKEN = 'dashboard-admin-secret-6f1d2c';
const BOT_TOKENS = [
  '710001:AAHdashboardTestTokenOne00000000000',
  '710002:AAHdashboardTestTokenTwo00000000000',
  '710003:AAHdashboardTestTokenThree000000000',
];
const API_KEYS = ['sns-key-alpha-93b1', 'sns-key-beta-27c4'];
const SECRETS = [ADMIN_TOKEN, ...BOT_TOKENS, ...BOT_TOKENS.map((t) => t.split(':')[1]), ...API_KEYS];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let failures = 0;
function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  console.log('ok:', what);
}

// ---- processes ---------------------------------------------------------------
const procs = [];
function startProcess(cmd, argv, pattern) {
  const p = spawn(cmd, argv, {stdio: ['ignore', 'pipe', 'pipe']});
  procs.push(p);
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd}: no line matching ${pattern}:\n${log}`)), 20000);
    const onData = (d) => {
      log += d.toString();
      const m = log.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve({proc: p, match: m});
      }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code}:\n${log}`));
    });
  });
}

function stopProcess(p) {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve(p.exitCode);
    p.removeAllListeners('exit');
    p.on('exit', (code) => resolve(code));
    p.kill('SIGTERM');
  });
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'callcache-dashboard-'));
fs.mkdirSync(args.out, {recursive: true});

async function main() {
  // The fake Bot API: 15 ms per call (so identical reads overlap and
  // coalesce) and a 429 to sends closer than 1.5 s to one chat (the gateway
  // paces a private chat at 1/s: every other send there is answered 429 and
  // retried after its back-off).
  const fake = await startProcess(args.fake, ['--port', '0', '--threads', '2', '--latency-ms', '15',
                                              '--chat-interval-ms', '1500'], /listening (\d+)/);
  const fakeUrl = `http://127.0.0.1:${fake.match[1]}`;
  const config = path.join(tmp, 'callcache.yaml');
  fs.writeFileSync(config, `
server: {threads: 2, access_log: false}
admin: {token: "${ADMIN_TOKEN}"}
gateway:
  upstream: ${fakeUrl}
  pacing: {max_wait: 2s, retry_429: 2, retry_max_delay: 3s}
storage:
  l2: sqlite
  path: ${path.join(tmp, 'cc.sqlite3')}
telegram:
  reads:
    getChatMember: {ttl: 2s}     # short: expired answers are served stale while refreshed
namespaces:
  sns: {ttl: 3s, max_entries: 1000, stale_ttl: 30s}
apis:
  - name: sns                    # a generic JSON API (the fake Bot API stands in for it)
    prefix: /sns
    upstream: ${fakeUrl}/bot424242:generic-upstream
    rules:
      - {match: "GET /getChat", name: chat, namespace: sns, key: [query.chat_id], tenant: [header.x-api-key]}
`);
  const serveArgs = (listen, admin) => ['--config', config, '--listen', listen, '--admin-listen', admin];
  let gw = await startProcess(args.serve, serveArgs('127.0.0.1:0', '127.0.0.1:0'),
                              /listening on http:\/\/127\.0\.0\.1:(\d+).*admin http:\/\/127\.0\.0\.1:(\d+)/);
  const port = gw.match[1], adminPort = gw.match[2];
  const base = `http://127.0.0.1:${port}`, admin = `http://127.0.0.1:${adminPort}`;
  const adminGet = async (p) => {
    const r = await fetch(admin + p, {headers: {Authorization: 'Bearer ' + ADMIN_TOKEN}});
    return {status: r.status, text: await r.text()};
  };
  const stats = async () => JSON.parse((await adminGet('/stats')).text);

  // ---- the page's files, over plain HTTP --------------------------------------
  const page0 = await fetch(admin + '/');
  check(page0.status === 200 && (await page0.text()).includes('<html'), 'the page is served without the token');
  const csp = page0.headers.get('content-security-policy') || '';
  check(csp.includes("default-src 'none'") && csp.includes("script-src 'self'"),
        'the page is served with a same-origin Content-Security-Policy');
  const js = (await (await fetch(admin + '/dashboard.js')).text()) +
             (await (await fetch(admin + '/chart.js')).text());
  check(js.length > 1000 && js.includes('export class Chart') && !/innerHTML|outerHTML|insertAdjacentHTML|document\.write/.test(js),
        'the script renders with DOM and text APIs only');
  check(!/https?:\/\//.test(js.replace('http://www.w3.org/2000/svg', '')), 'the script fetches nothing from elsewhere');
  check((await fetch(admin + '/stats')).status === 401, '/stats needs the token');
  check(JSON.parse(await (await fetch(admin + '/auth')).text()).token_required === true, '/auth says a token is needed');
  check((await adminGet('/stats/history?window=2h')).status === 400, '/stats/history rejects a bad window');

  // ---- the browser -----------------------------------------------------------------
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'callcache-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: args.chromium,
    headless: true,
    viewport: {width: 1400, height: 900},
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    const consoleErrors = [];
    const pageErrors = [];
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push({at: Date.now(), text: m.text()}); });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    const text = async (id) => (await page.textContent('#' + id)).trim();
    const number = async (id) => Number((await text(id)).replace(/,/g, ''));
    const points = async (chart) => Number(await page.getAttribute(`svg[data-chart=${chart}]`, 'data-points'));
    const series = async (chart) => Number(await page.getAttribute(`svg[data-chart=${chart}]`, 'data-series'));

    await page.goto(admin + '/');
    await page.waitForSelector('#login:not([hidden])', {timeout: 10000});
    check(true, 'the page asks for the admin token');
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForFunction(() => document.getElementById('status').textContent === 'live', null, {timeout: 10000});
    check(await page.isHidden('#login'), 'the token opens the dashboard');
    await sleep(1500);
    check(consoleErrors.length === 0 && pageErrors.length === 0,
          'the page loads with no console error ' + JSON.stringify([...consoleErrors, ...pageErrors]));

    // ---- load --------------------------------------------------------------------
    const loadSeconds = Number(args['load-seconds']);
    const loadEnd = Date.now() + loadSeconds * 1000;
    const load = runLoad(base, loadSeconds * 1000);
    await sleep(Math.min(3000, loadSeconds * 400));
    const pointsEarly = await points('requests');
    // The page under load, shortly before the load ends.
    await sleep(Math.max(0, loadEnd - 1500 - Date.now()));
    const shot = path.join(args.out, 'dashboard-under-load.png');
    await page.screenshot({path: shot, fullPage: true});
    if (args.screenshot) fs.copyFileSync(shot, args.screenshot);
    await load;
    check(fs.statSync(shot).size > 10000, 'screenshot under load written: ' + shot);
    await page.waitForFunction((n) => Number(document.querySelector('svg[data-chart=requests]').dataset.points) > n,
                               pointsEarly, {timeout: 5000});
    check(true, `the charts gain points while load runs (${pointsEarly} -> ${await points('requests')})`);
    // Let the last requests land in a history sample and the page read it.
    await sleep(2500);
    for (const [chart, min] of [['requests', 4], ['saved', 2], ['hit_ratio', 2], ['coalesced', 1], ['pacing', 1],
                                ['throttled', 1], ['latency', 2], ['l2', 2], ['memory', 2]]) {
      const n = await series(chart);
      check(n >= min, `chart ${chart} draws ${n} series (>= ${min})`);
    }

    // ---- the numbers on the page are /stats' ---------------------------------------
    let s = await stats();
    const req = s.gateway.requests;
    const total = Object.values(req).reduce((a, b) => a + b, 0);
    const served = total - req.rejected;
    const expect = {
      'total-requests': total,
      'total-upstream': s.gateway.upstream.calls,
      'total-saved': served - s.gateway.upstream.calls,
      'pacing-waits': s.gateway.pacing.waits,
      'pacing-refused': s.gateway.pacing.refused,
      'upstream-429': s.gateway.upstream['429_received'],
      'upstream-retried': s.gateway.upstream['429_retried'],
      'l2-gets': s.l2.gets,
    };
    await page.waitForFunction((e) => {
      for (const [id, v] of Object.entries(e)) {
        if (Number(document.getElementById(id).textContent.replace(/,/g, '')) !== v) return false;
      }
      return true;
    }, expect, {timeout: 5000}).catch(() => {});
    for (const [id, v] of Object.entries(expect)) {
      check(await number(id) === v, `#${id} shows ${v} as /stats does`);
    }
    check(req.hit > 0 && req.miss > 0 && req.coalesced > 0 && req.paced > 0 && req.bypass > 0 && req.stale > 0,
          'the load made hits, misses, coalesced waiters, paced sends, bypasses and stale answers ' + JSON.stringify(req));
    check(s.gateway.pacing.waits > 0 && s.gateway.pacing.refused > 0 && s.gateway.upstream['429_received'] > 0,
          'pacing waited and refused; the upstream answered 429');
    check((await text('saved-pct')).endsWith('%') && (await number('total-saved')) > 0, 'calls saved are shown');
    const tenantRows = await page.$$eval('#tenants tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
    const top = s.gateway.tenants.top;
    check(tenantRows.length === top.length && top.length >= 3 && tenantRows[0][0] === top[0].tenant &&
          Number(tenantRows[0][1].replace(/,/g, '')) === top[0].upstream_calls,
          `the tenants table is /stats' top tenants (${tenantRows.length} rows, first ${tenantRows[0][0]})`);
    check(tenantRows.every((r) => /^[0-9a-f]{16}$/.test(r[0])), 'tenants are shown as hashed ids');
    const methodRows = await page.$$eval('#methods tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
    const topMethod = Object.entries(s.gateway.upstream.methods).sort((a, b) => b[1].calls - a[1].calls)[0];
    check(methodRows[0][0] === topMethod[0] && Number(methodRows[0][1].replace(/,/g, '')) === topMethod[1].calls,
          `the methods table leads with ${topMethod[0]} (${topMethod[1].calls} calls)`);
    const pacingRows = await page.$$eval('#pacing tbody tr', (rows) => rows.map((r) => r.cells[0].textContent));
    check(pacingRows.includes('private_chat'), 'pacing is shown per rule');

    // The history's counts add up to the counters (every request so far fell
    // in a sampled interval: load stopped more than a second ago).
    const history = JSON.parse((await adminGet('/stats/history?window=5m')).text);
    const sumOf = (a) => a.reduce((x, y) => x + y, 0);
    s = await stats();
    for (const outcome of ['hit', 'miss', 'coalesced', 'paced', 'rejected']) {
      check(sumOf(history.requests[outcome]) === s.gateway.requests[outcome],
            `/stats/history's ${outcome} counts add up to /stats (${s.gateway.requests[outcome]})`);
    }
    check(sumOf(history.upstream.calls) === s.gateway.upstream.calls, '/stats/history upstream calls add up');
    check(sumOf(history.apis.sns.reads) > 0 && sumOf(history.apis.telegram.reads) > 0, 'hit ratio per API: telegram and sns');


    // ---- no secret anywhere ------------------------------------------------------
    const shown = await page.content();
    const bodies = [shown, (await adminGet('/stats')).text, (await adminGet('/stats/history?window=5m')).text,
                    (await adminGet('/stats/history?window=1h')).text, (await adminGet('/metrics')).text];
    for (const secret of SECRETS) {
      check(bodies.every((b) => !b.includes(secret)), `"${secret.slice(0, 10)}…" appears nowhere`);
    }

    // ---- a gateway restart -------------------------------------------------------
    const restartAt = Date.now();
    check(await stopProcess(gw.proc) === 0, 'the gateway exits 0 on SIGTERM');
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('offline'), null,
                               {timeout: 5000});
    check(true, 'the page shows the gateway offline');
    gw = await startProcess(args.serve, serveArgs(`127.0.0.1:${port}`, `127.0.0.1:${adminPort}`),
                            /listening on http:\/\/127\.0\.0\.1:(\d+)/);
    await page.waitForFunction(() => document.getElementById('status').textContent === 'live', null, {timeout: 10000});
    const backAt = Date.now();
    check(await page.isHidden('#login') && await page.getAttribute('#login', 'data-asked') === '1',
          'the page is back without asking for the token again');
    await page.waitForFunction(() => document.body.dataset.restarts === '1', null, {timeout: 5000});
    check(true, 'the page marks the restart');
    const pointsBefore = await points('requests');
    await runLoad(base, 2500);
    await sleep(2500);
    s = await stats();
    check(s.gateway.requests.l2_hit > 0, 'after the restart, answers come from the SQLite tier');
    const totalAfter = Object.values(s.gateway.requests).reduce((a, b) => a + b, 0);
    await page.waitForFunction((v) => Number(document.getElementById('total-requests').textContent.replace(/,/g, '')) === v,
                               totalAfter, {timeout: 5000}).catch(() => {});
    check(await number('total-requests') === totalAfter, `after the restart the page shows the new process' ${totalAfter} requests`);
    check(await points('requests') > pointsBefore, 'the charts keep gaining points after the restart');
    await page.screenshot({path: path.join(args.out, 'dashboard-after-restart.png'), fullPage: true});

    // Only the failed fetches while the gateway was down may be console errors.
    const unexpected = consoleErrors.filter((e) => !(e.at >= restartAt && e.at <= backAt + 1000 &&
                                                     /ERR_CONNECTION_REFUSED|Failed to fetch|ERR_EMPTY_RESPONSE/.test(e.text)));
    check(unexpected.length === 0, 'no console error besides the restart window ' + JSON.stringify(unexpected));
    check(pageErrors.length === 0, 'no uncaught error in the page ' + JSON.stringify(pageErrors));
  } finally {
    await context.close();
    fs.rmSync(profile, {recursive: true, force: true});
  }
  check(await stopProcess(gw.proc) === 0, 'the restarted gateway exits 0 on SIGTERM');
}

// ---- the load generator ------------------------------------------------------------
// Reads with a hot set (hits) and a tail (misses), bursts of identical reads
// of a fresh chat (one miss, the rest coalesced), short-lived members
// (stale answers), writes (invalidation, then bypass), sends paced per chat
// (one chat flooded: waits, refusals, upstream 429s), a generic API.
async function runLoad(base, ms) {
  const end = Date.now() + ms;
  let fresh = 1000 + Math.floor(Math.random() * 1e6);
  const pick = (a, weights) => {
    let x = Math.random() * weights.reduce((p, q) => p + q, 0);
    for (let i = 0; i < a.length; i++) if ((x -= weights[i]) < 0) return a[i];
    return a[a.length - 1];
  };
  const call = async (p, init) => {
    try {
      const r = await fetch(base + p, init);
      await r.arrayBuffer();
      return r.status;
    } catch (e) {
      return 0;
    }
  };
  const bot = () => pick(BOT_TOKENS, [6, 3, 1]);
  const chat = () => -1000 - (Math.random() < 0.85 ? Math.floor(Math.random() * 12) : Math.floor(Math.random() * 400));
  const reader = async () => {
    while (Date.now() < end) {
      const r = Math.random();
      if (r < 0.55) await call(`/bot${bot()}/getChat?chat_id=${chat()}`);
      else if (r < 0.8) await call(`/bot${bot()}/getChatMember?chat_id=${chat()}&user_id=${Math.floor(Math.random() * 5)}`);
      else if (r < 0.9) await call(`/bot${bot()}/getMe`);
      else await call(`/sns/getChat?chat_id=${Math.floor(Math.random() * 30)}`,
                      {headers: {'x-api-key': pick(API_KEYS, [3, 1])}});
      await sleep(4 + 8 * (1 + Math.sin(Date.now() / 9000)));
    }
  };
  const bursts = async () => {
    while (Date.now() < end) {
      const id = fresh++;
      await Promise.all(Array.from({length: 6}, () => call(`/bot${BOT_TOKENS[0]}/getChat?chat_id=${id}`)));
      await sleep(600);
    }
  };
  const writer = async () => {
    while (Date.now() < end) {
      await call(`/bot${bot()}/setChatTitle`, {method: 'POST', headers: {'content-type': 'application/json'},
                                               body: JSON.stringify({chat_id: chat(), title: 'load ' + Date.now()})});
      await sleep(700);
    }
  };
  const sends = [];
  const sender = async () => {
    let n = 0;
    while (Date.now() < end) {
      // Chat 42 gets 3 sends a second (paced to 1/s: waits, then refusals);
      // other chats one each (only the per-bot limit applies).
      const target = n++ % 2 ? 42 : 500 + (n % 50);
      sends.push(call(`/bot${BOT_TOKENS[0]}/sendMessage`, {method: 'POST', headers: {'content-type': 'application/json'},
                                                           body: JSON.stringify({chat_id: target, text: 'hello ' + n})}));
      await sleep(170);
    }
  };
  await Promise.all([reader(), reader(), reader(), reader(), bursts(), writer(), sender()]);
  await Promise.all(sends);
}

try {
  await main();
  console.log('1 passed, 0 failed');
} catch (e) {
  failures++;
  console.log('FAILED:', e && e.stack || e);
  console.log('0 passed, 1 failed');
} finally {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  fs.rmSync(tmp, {recursive: true, force: true});
}
process.exit(failures ? 1 : 0);
