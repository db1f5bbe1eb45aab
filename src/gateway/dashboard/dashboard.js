// callcache dashboard: reads /stats and /stats/history from the admin
// listener every second and draws cards, SVG charts (chart.js) and tables.
// A module (strict mode).
// Everything is built with DOM and text APIs (createElement, textContent,
// setAttribute): no data is ever parsed as HTML.
import {Chart, el, rate} from './chart.js';

(() => {
  const TOKEN_KEY = 'callcache.admin_token';
  const WINDOWS = {
    '5m': {span: 300e3, step: 1e3, label: 'last 5 min'},
    '1h': {span: 3600e3, step: 10e3, label: 'last hour'},
  };
  const OUTCOME_COLORS = {
    hit: '#16a34a', l2_hit: '#65a30d', coalesced: '#0891b2', stale: '#ca8a04',
    negative: '#a16207', miss: '#dc2626', bypass: '#f97316', pass: '#6b7280',
    paced: '#7c3aed', rejected: '#e879f9', error: '#111827',
  };
  const PALETTE = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2',
                   '#ca8a04', '#db2777', '#4b5563', '#65a30d', '#7c3aed', '#0f766e'];

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    window: '5m',
    rows: {'5m': [], '1h': []},
    lastT: {'5m': 0, '1h': 0},
    now: 0,
    started: 0,
    restarts: [],  // start times of later gateway processes seen by this page
    stats: null,
    running: false,
  };

  const $ = (id) => document.getElementById(id);
  const setText = (id, text) => { $(id).textContent = text; };
  const dict = () => Object.create(null);

  // ---- formatting ----------------------------------------------------------
  const int = (n) => Math.round(n).toLocaleString('en-US');
  const pct = (num, den) => (den > 0 ? (100 * num / den).toFixed(1) + '%' : '–');
  const bytes = (b) => {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    return (i ? b.toFixed(1) : String(b)) + ' ' + units[i];
  };
  const duration = (s) => (s < 120 ? s.toFixed(0) + ' s' : s < 7200 ? (s / 60).toFixed(0) + ' min'
                                                                     : (s / 3600).toFixed(1) + ' h');

  // ---- data ----------------------------------------------------------------
  async function getJSON(path) {
    const headers = state.token ? {Authorization: 'Bearer ' + state.token} : {};
    const r = await fetch(path, {headers, cache: 'no-store'});
    if (r.status === 401) throw Object.assign(new Error('unauthorized'), {unauthorized: true});
    if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
    return r.json();
  }

  // Column-oriented history (stats_history.h) to one object per point.
  function toRows(h) {
    const rows = [];
    for (let i = 0; i < h.t.length; i++) {
      const r = {
        t: h.t[i], dt: h.dt[i], req: dict(), served: h.served[i], saved: h.saved[i],
        up: h.upstream.calls[i], r429: h.upstream['429'][i], retried: h.upstream.retried[i],
        apis: dict(), ns: dict(), pacing: dict(), lat: dict(), l2: null,
      };
      for (const [k, v] of Object.entries(h.requests)) r.req[k] = v[i];
      for (const [k, v] of Object.entries(h.apis)) r.apis[k] = {hits: v.hits[i], reads: v.reads[i]};
      for (const [k, v] of Object.entries(h.namespaces)) {
        r.ns[k] = {hits: v.hits[i], lookups: v.lookups[i], entries: v.entries[i], bytes: v.bytes[i],
                   max_entries: v.max_entries, max_bytes: v.max_bytes};
      }
      for (const [k, v] of Object.entries(h.pacing)) r.pacing[k] = {waits: v.waits[i], refused: v.refused[i]};
      for (const [k, v] of Object.entries(h.latency)) {
        if (v.calls[i]) r.lat[k] = {calls: v.calls[i], p50: v.p50_ms[i], p99: v.p99_ms[i]};
      }
      if (h.l2) {
        r.l2 = {down: h.l2.down[i], gets: h.l2.gets[i], hits: h.l2.hits[i], errors: h.l2.errors[i],
                pending: h.l2.pending_writes[i]};
      }
      rows.push(r);
    }
    return rows;
  }

  function merge(win, h) {
    if (!h.started_ms) return;  // no sample yet
    if (state.started && h.started_ms !== state.started && !state.restarts.includes(h.started_ms)) {
      state.restarts.push(h.started_ms);
      document.body.dataset.restarts = String(state.restarts.length);
    }
    state.started = h.started_ms;
    state.now = Math.max(state.now, h.now_ms);
    const rows = state.rows[win];
    for (const r of toRows(h)) {
      if (r.t > state.lastT[win]) {
        rows.push(r);
        state.lastT[win] = r.t;
      }
    }
    const oldest = state.now - WINDOWS[win].span;
    while (rows.length && rows[0].t <= oldest) rows.shift();
  }

  const charts = {};
  function buildCharts() {
    const parent = $('charts');
    const add = (opts) => { charts[opts.id] = new Chart(parent, opts); };
    add({id: 'requests', title: 'Requests/s by outcome', note: 'stacked', stacked: true, unit: '/s'});
    add({id: 'saved', title: 'Upstream calls/s and calls saved/s', unit: '/s'});
    add({id: 'hit_ratio', title: 'Hit ratio', note: 'per API (solid) and namespace (dashed), over 10 points',
         percent: true});
    add({id: 'coalesced', title: 'Coalesced waiters/s and stale answers served/s', unit: '/s'});
    add({id: 'pacing', title: 'Pacing per rule', note: 'waits/s (solid), refusals/s (dashed)', unit: '/s'});
    add({id: 'throttled', title: 'Upstream 429s/s and retries/s', unit: '/s'});
    add({id: 'latency', title: 'Upstream latency per method', note: 'p99 (solid), p50 (dashed)', unit: ' ms'});
    add({id: 'l2', title: 'L2 tier', note: 'gets, hits, errors /s; write-behind queue (shaded: down)'});
    add({id: 'memory', title: 'Memory per namespace', note: '% of its bound (bytes, else entries)', percent: true,
         zoom: true});
  }

  // ---- rendering -----------------------------------------------------------
  const sum = (rows, f) => rows.reduce((a, r) => a + f(r), 0);
  const perSecond = (rows, f) => rows.map((r) => (r.dt > 0 ? f(r) / r.dt : null));
  const ratio = (num, den) => (den > 0 ? 100 * num / den : null);
  const reqTotal = (r) => Object.values(r.req).reduce((a, b) => a + b, 0);
  const apiSum = (r, k) => Object.values(r.apis).reduce((a, v) => a + v[k], 0);

  function keysOf(rows, field, active) {
    const seen = new Set();
    for (const r of rows) for (const [k, v] of Object.entries(r[field])) if (!active || active(v)) seen.add(k);
    return [...seen].sort();
  }

  function renderCharts() {
    const win = WINDOWS[state.window];
    const rows = state.rows[state.window];
    const x1 = state.now, x0 = x1 - win.span;
    const ctx = {restarts: state.restarts, step: win.step};
    const color = (i) => PALETTE[i % PALETTE.length];

    const outcomes = Object.keys(OUTCOME_COLORS).filter((k) => rows.some((r) => r.req[k] > 0));
    charts.requests.update(rows, outcomes.map((k) => ({name: k, color: OUTCOME_COLORS[k],
                                                      values: perSecond(rows, (r) => r.req[k] || 0)})), x0, x1, ctx);
    charts.saved.note.textContent = 'saved ' + pct(sum(rows, (r) => r.saved), sum(rows, (r) => r.served)) +
                                     ' of the requests served in the window';
    charts.saved.update(rows, [
      {name: 'upstream calls', color: '#dc2626', values: perSecond(rows, (r) => r.up)},
      {name: 'calls saved', color: '#16a34a', values: perSecond(rows, (r) => r.saved)},
      {name: 'requests served', color: '#9ca3af', values: perSecond(rows, (r) => r.served), dashed: true},
    ], x0, x1, ctx);

    // Ratios over a rolling 10 points (10 s, or 100 s on the hour view):
    // one second holds too few reads for a steady line.
    const rolling = (hits, reads) => {
      const out = [];
      let h = 0, n = 0;
      for (let i = 0; i < rows.length; i++) {
        h += hits(rows[i]);
        n += reads(rows[i]);
        if (i >= 10) { h -= hits(rows[i - 10]); n -= reads(rows[i - 10]); }
        out.push(ratio(h, n));
      }
      return out;
    };
    const apis = keysOf(rows, 'apis', (v) => v.reads > 0);
    const nss = keysOf(rows, 'ns', (v) => v.lookups > 0);
    charts.hit_ratio.update(rows, [
      ...apis.map((k, i) => ({name: k, color: color(i),
                              values: rolling((r) => (r.apis[k] ? r.apis[k].hits : 0), (r) => (r.apis[k] ? r.apis[k].reads : 0))})),
      ...nss.map((k, i) => ({name: k, color: color(apis.length + i), dashed: true,
                             values: rolling((r) => (r.ns[k] ? r.ns[k].hits : 0), (r) => (r.ns[k] ? r.ns[k].lookups : 0))})),
    ], x0, x1, ctx);

    charts.coalesced.update(rows, [
      {name: 'coalesced waiters', color: OUTCOME_COLORS.coalesced, values: perSecond(rows, (r) => r.req.coalesced || 0)},
      {name: 'stale served', color: OUTCOME_COLORS.stale, values: perSecond(rows, (r) => r.req.stale || 0)},
    ], x0, x1, ctx);

    const rules = keysOf(rows, 'pacing', (v) => v.waits + v.refused > 0);
    charts.pacing.update(rows, rules.flatMap((k, i) => [
      {name: k + ' waits', color: color(i), values: perSecond(rows, (r) => (r.pacing[k] ? r.pacing[k].waits : 0))},
      {name: k + ' refused', color: color(i), dashed: true,
       values: perSecond(rows, (r) => (r.pacing[k] ? r.pacing[k].refused : 0))},
    ]), x0, x1, ctx);

    charts.throttled.update(rows, [
      {name: '429s received', color: '#dc2626', values: perSecond(rows, (r) => r.r429)},
      {name: 'retried', color: '#7c3aed', values: perSecond(rows, (r) => r.retried)},
      {name: 'refused by pacing', color: '#be123c', dashed: true,
       values: perSecond(rows, (r) => Object.values(r.pacing).reduce((a, v) => a + v.refused, 0))},
    ], x0, x1, ctx);

    // The busiest methods of the window.
    const calls = dict();
    for (const r of rows) for (const [k, v] of Object.entries(r.lat)) calls[k] = (calls[k] || 0) + v.calls;
    const methods = Object.keys(calls).sort((a, b) => calls[b] - calls[a]).slice(0, 5);
    charts.latency.update(rows, methods.flatMap((k, i) => [
      {name: k + ' p99', color: color(i), values: rows.map((r) => (r.lat[k] ? r.lat[k].p99 : null))},
      {name: k + ' p50', color: color(i), dashed: true, values: rows.map((r) => (r.lat[k] ? r.lat[k].p50 : null))},
    ]), x0, x1, ctx);

    const l2rows = rows.filter((r) => r.l2);
    const bands = [];
    for (const r of l2rows) if (r.l2.down) bands.push([r.t - r.dt * 1000, r.t]);
    charts.l2.update(rows, l2rows.length ? [
      {name: 'gets', color: '#2563eb', values: perSecond(rows, (r) => (r.l2 ? r.l2.gets : 0))},
      {name: 'hits', color: '#16a34a', values: perSecond(rows, (r) => (r.l2 ? r.l2.hits : 0))},
      {name: 'errors', color: '#dc2626', values: perSecond(rows, (r) => (r.l2 ? r.l2.errors : 0))},
      {name: 'queue', color: '#9ca3af', dashed: true, values: rows.map((r) => (r.l2 ? r.l2.pending : null))},
    ] : [], x0, x1, {...ctx, bands});

    const memNs = keysOf(rows, 'ns', (v) => v.entries > 0);
    charts.memory.update(rows, memNs.map((k, i) => ({
      name: k, color: color(i), values: rows.map((r) => {
        const n = r.ns[k];
        if (!n) return null;
        return n.max_bytes > 0 ? ratio(n.bytes, n.max_bytes) : n.max_entries > 0 ? ratio(n.entries, n.max_entries) : null;
      }),
    })), x0, x1, ctx);
  }

  function renderCards() {
    const win = WINDOWS[state.window];
    const rows = state.rows[state.window];
    for (const e of document.querySelectorAll('.window-label')) e.textContent = win.label;
    const served = sum(rows, (r) => r.served), saved = sum(rows, (r) => r.saved);
    setText('saved-pct', pct(saved, served));
    setText('saved-abs', int(saved));
    setText('hit-ratio', pct(sum(rows, (r) => apiSum(r, 'hits')), sum(rows, (r) => apiSum(r, 'reads'))));
    const recent = state.rows['5m'].filter((r) => r.t > state.now - 10e3);
    const recentSeconds = sum(recent, (r) => r.dt);
    setText('hit-ratio-now', pct(sum(recent, (r) => apiSum(r, 'hits')), sum(recent, (r) => apiSum(r, 'reads'))));
    setText('rps', recentSeconds > 0 ? rate(sum(recent, reqTotal) / recentSeconds) : '–');
    setText('ups', recentSeconds > 0 ? rate(sum(recent, (r) => r.up) / recentSeconds) : '–');

    const s = state.stats;
    if (!s) return;
    const g = s.gateway, req = g.requests;
    const total = Object.values(req).reduce((a, b) => a + b, 0);
    const totalServed = total - req.rejected;
    const hits = req.hit + req.l2_hit + req.coalesced + req.stale + req.negative;
    setText('total-requests', int(total));
    setText('total-upstream', int(g.upstream.calls));
    setText('total-saved', int(totalServed - g.upstream.calls));
    setText('total-saved-pct', pct(totalServed - g.upstream.calls, totalServed));
    setText('total-hit-ratio', pct(hits, hits + req.miss + req.bypass));
    setText('connections', int(s.server.connections));
    setText('upstream-429', int(g.upstream['429_received']));
    setText('upstream-retried', int(g.upstream['429_retried']));
    setText('pacing-waits', int(g.pacing.waits));
    setText('pacing-refused', int(g.pacing.refused));
    setText('pacing-seconds', g.pacing.wait_seconds.toFixed(1) + ' s');
    const l2 = $('l2-state');
    if (s.l2) {
      const down = rows.length && rows[rows.length - 1].l2 && rows[rows.length - 1].l2.down;
      l2.textContent = down ? 'degraded' : 'ok';
      l2.className = 'big ' + (down ? 'bad' : 'good');
      setText('l2-backend', s.l2.backend);
      setText('l2-hits', int(s.l2.hits));
      setText('l2-gets', int(s.l2.gets));
      setText('l2-queue', int(s.l2.pending_writes));
    } else {
      l2.textContent = 'none';
      l2.className = 'big';
      for (const id of ['l2-backend', 'l2-hits', 'l2-gets', 'l2-queue']) setText(id, '–');
    }
  }

  function fillTable(id, rows) {
    const body = $(id).tBodies[0];
    body.replaceChildren(...rows.map((cells) => {
      const tr = el('tr');
      for (const c of cells) {
        if (c instanceof Node) {
          const td = el('td');
          td.append(c);
          tr.append(td);
        } else if (c && typeof c === 'object') {
          tr.append(el('td', c.cls, c.text));
        } else {
          tr.append(el('td', null, String(c)));
        }
      }
      return tr;
    }));
  }

  function meter(value, max) {
    const m = el('meter');
    m.min = 0;
    m.max = max > 0 ? max : 1;
    m.value = max > 0 ? value : 0;
    m.title = max > 0 ? pct(value, max) + ' of the bound' : 'unbounded';
    return m;
  }

  function renderTables() {
    const s = state.stats;
    if (!s) return;
    const rows = state.rows[state.window];
    const ns = s.engine.namespaces || {};
    fillTable('namespaces', Object.entries(ns).map(([name, v]) => {
      const hits = sum(rows, (r) => (r.ns[name] ? r.ns[name].hits : 0));
      const lookups = sum(rows, (r) => (r.ns[name] ? r.ns[name].lookups : 0));
      const ev = v.evictions || {};
      const evicted = Object.entries(ev).filter(([, n]) => n > 0).map(([k, n]) => k + ' ' + int(n)).join(', ');
      return [name, pct(hits, lookups),
              int(v.entries) + (v.max_entries ? ' / ' + int(v.max_entries) : ''), meter(v.entries, v.max_entries),
              bytes(v.bytes) + (v.max_bytes ? ' / ' + bytes(v.max_bytes) : ''), meter(v.bytes, v.max_bytes),
              evicted || '–'];
    }));
    const methods = Object.entries(s.gateway.upstream.methods).sort((a, b) => b[1].calls - a[1].calls).slice(0, 10);
    fillTable('methods', methods.map(([name, m]) => [name, int(m.calls), int(m.errors + m['5xx'] + m.failed),
                                                     int(m['429']), m.p50_ms.toFixed(1), m.p99_ms.toFixed(1)]));
    fillTable('tenants', s.gateway.tenants.top.map((t) => [{cls: 'id', text: t.tenant}, int(t.upstream_calls),
                                                           pct(t.upstream_calls, s.gateway.upstream.calls)]));
    const rules = s.gateway.pacing.rules || {};
    fillTable('pacing', Object.entries(rules).map(([name, r]) => [name, int(r.waits), r.wait_seconds.toFixed(1),
                                                                   int(r.refused)]));
  }

  function render() {
    renderCards();
    renderCharts();
    renderTables();
    if (state.started) setText('uptime', 'up ' + duration((state.now - state.started) / 1000));
  }

  // ---- the loop ------------------------------------------------------------
  function setStatus(text, cls) {
    const s = $('status');
    s.textContent = text;
    s.className = 'pill ' + cls;
  }

  function askToken(message) {
    state.running = false;
    const form = $('login');
    if (form.hidden) form.dataset.asked = String(Number(form.dataset.asked) + 1);
    form.hidden = false;
    $('main').hidden = true;
    setText('login-error', message || '');
    setStatus('token required', 'offline');
    $('token').focus();
  }

  async function tick() {
    if (!state.running) return;
    try {
      // Both windows: the cards read the last seconds whichever is shown.
      const [stats, fine, coarse] = await Promise.all([
        getJSON('stats'),
        getJSON(`stats/history?window=5m&since=${state.lastT['5m']}`),
        getJSON(`stats/history?window=1h&since=${state.lastT['1h']}`),
      ]);
      state.stats = stats;
      merge('5m', fine);
      merge('1h', coarse);
      $('main').hidden = false;
      setStatus('live', 'live');
      render();
    } catch (e) {
      if (e.unauthorized) {
        sessionStorage.removeItem(TOKEN_KEY);
        state.token = '';
        askToken('The admin token was not accepted.');
        return;
      }
      setStatus('offline, retrying', 'offline');
    }
    setTimeout(tick, 1000);
  }

  function start() {
    if (state.running) return;
    state.running = true;
    $('login').hidden = true;
    tick();
  }

  async function init() {
    buildCharts();
    for (const b of document.querySelectorAll('button.window')) {
      b.addEventListener('click', () => {
        state.window = b.dataset.window;
        for (const o of document.querySelectorAll('button.window')) {
          o.setAttribute('aria-pressed', String(o === b));
        }
        render();
      });
    }
    $('login').addEventListener('submit', (e) => {
      e.preventDefault();
      const input = $('token');
      state.token = input.value.trim();
      input.value = '';
      sessionStorage.setItem(TOKEN_KEY, state.token);
      start();
    });
    // Whether the listener wants a token (no data, no token needed to ask).
    for (;;) {
      try {
        const auth = await getJSON('auth');
        if (auth.token_required && !state.token) askToken();
        else start();
        return;
      } catch (e) {
        setStatus('offline, retrying', 'offline');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  init();
})();
