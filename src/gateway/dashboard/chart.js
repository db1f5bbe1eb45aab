// callcache dashboard: one time-series chart drawn as SVG (a module of
// dashboard.js). Built with DOM APIs only (createElementNS, setAttribute,
// textContent): no data is ever parsed as HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';
const W = 560, H = 190, ML = 46, MR = 8, MT = 8, MB = 20;

export const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
export const svg = (tag, attrs) => {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
};
export const rate = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
export const clock = (ms) => new Date(ms).toLocaleTimeString('en-GB', {hour12: false});

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
const axisLabel = (v) => (v >= 1e6 ? (v / 1e6) + 'M' : v >= 1e4 ? (v / 1e3) + 'k'
                                                     : String(+v.toPrecision(3)));

export class Chart {
  // opts: {id, title, note, unit, percent, stacked}
  constructor(parent, opts) {
    this.opts = opts;
    const fig = el('figure');
    const cap = el('figcaption', null, opts.title + ' ');
    this.note = el('span', 'muted', opts.note || '');
    cap.append(this.note);
    this.svg = svg('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', 'data-chart': opts.id,
                           role: 'img', 'aria-label': opts.title});
    this.legend = el('div', 'legend');
    fig.append(cap, this.svg, this.legend);
    parent.append(fig);
    this.data = null;
    this.svg.addEventListener('mousemove', (e) => this.hover(e));
    this.svg.addEventListener('mouseleave', () => this.unhover());
  }

  // series: [{name, color, values (aligned with rows, null = none), dashed}]
  update(rows, series, x0, x1, extra) {
    const {percent, stacked} = this.opts;
    this.data = {rows, series, x0, x1};
    const px = (t) => ML + (W - ML - MR) * (t - x0) / (x1 - x0);
    let top = 0;
    if (stacked) {
      for (let i = 0; i < rows.length; i++) {
        let s = 0;
        for (const se of series) s += se.values[i] || 0;
        top = Math.max(top, s);
      }
    } else {
      for (const se of series) for (const v of se.values) if (v !== null && v > top) top = v;
    }
    const ymax = percent ? (this.opts.zoom ? Math.min(100, niceMax(top * 1.1)) : 100) : niceMax(top);
    const py = (v) => MT + (H - MT - MB) * (1 - Math.min(v, ymax) / ymax);
    const nodes = [];
    // Shaded intervals (L2 down) and restart markers behind the lines.
    for (const band of (extra && extra.bands) || []) {
      nodes.push(svg('rect', {class: 'down', x: px(band[0]), y: MT, width: Math.max(1, px(band[1]) - px(band[0])),
                              height: H - MT - MB}));
    }
    for (let k = 0; k <= 4; k++) {
      const v = ymax * k / 4, y = py(v);
      nodes.push(svg('line', {class: 'grid', x1: ML, x2: W - MR, y1: y, y2: y}));
      const label = svg('text', {x: ML - 4, y: y + 3, 'text-anchor': 'end'});
      label.textContent = axisLabel(v) + (percent ? '%' : '');
      nodes.push(label);
    }
    const spanMin = (x1 - x0) / 60e3;
    const ticks = spanMin > 10 ? [60, 45, 30, 15, 0] : [5, 4, 3, 2, 1, 0];
    for (const m of ticks) {
      const label = svg('text', {x: px(x1 - m * 60e3), y: H - 6, 'text-anchor': m === ticks[0] ? 'start' : m ? 'middle' : 'end'});
      label.textContent = m ? `−${m} min` : 'now';
      nodes.push(label);
    }
    for (const t of (extra && extra.restarts) || []) {
      if (t <= x0 || t >= x1) continue;
      nodes.push(svg('line', {class: 'restart', x1: px(t), x2: px(t), y1: MT, y2: H - MB}));
      const right = px(t) > W - 60;
      const label = svg('text', {x: px(t) + (right ? -3 : 3), y: MT + 9, 'text-anchor': right ? 'end' : 'start'});
      label.textContent = 'restart';
      nodes.push(label);
    }
    // Lines: a gap in time (a restart, a stalled page) breaks them.
    const gap = 2.5 * ((extra && extra.step) || Infinity);
    const base = new Array(rows.length).fill(0);
    let drawn = 0;
    for (const se of series) {
      // Runs of consecutive points: [index, bottom, top].
      const runs = [];
      let run = null;
      for (let i = 0; i < rows.length; i++) {
        const v = se.values[i];
        if (v === null || v === undefined) { run = null; continue; }
        const bottom = stacked ? base[i] : 0;
        const top = bottom + v;
        if (stacked) base[i] = top;
        if (!run || rows[i].t - rows[run[run.length - 1][0]].t > gap) runs.push(run = []);
        run.push([i, bottom, top]);
      }
      if (!runs.length) continue;
      drawn++;
      const xy = (i, v) => px(rows[i].t).toFixed(1) + ' ' + py(v).toFixed(1);
      let line = '', area = '';
      for (const r of runs) {
        line += r.map(([i, , top], k) => (k ? 'L' : 'M') + xy(i, top)).join('');
        if (stacked) {
          area += r.map(([i, , top], k) => (k ? 'L' : 'M') + xy(i, top)).join('') +
                  r.slice().reverse().map(([i, bottom]) => 'L' + xy(i, bottom)).join('') + 'Z';
        }
      }
      if (stacked) nodes.push(svg('path', {d: area, fill: se.color, 'fill-opacity': 0.45, stroke: 'none'}));
      const path = svg('path', {d: line, fill: 'none', stroke: se.color, 'stroke-width': stacked ? 1.2 : 1.6,
                                'stroke-linejoin': 'round'});
      if (se.dashed) path.setAttribute('stroke-dasharray', '4 3');
      nodes.push(path);
    }
    if (!drawn) {
      const t = svg('text', {class: 'empty', x: (W + ML) / 2, y: H / 2, 'text-anchor': 'middle'});
      t.textContent = 'nothing in this window yet';
      nodes.push(t);
    }
    this.cursor = svg('line', {class: 'cursor', x1: 0, x2: 0, y1: MT, y2: H - MB, visibility: 'hidden'});
    nodes.push(this.cursor);
    this.svg.replaceChildren(...nodes);
    this.svg.dataset.points = String(rows.length);
    this.svg.dataset.series = String(drawn);
    this.px = px;
    // Legend: each series with its latest value.
    const items = series.map((se) => {
      const s = el('span');
      const sw = el('span', 'swatch' + (se.dashed ? ' dashed' : ''));
      sw.style.background = se.color;
      let last = null;
      for (let i = se.values.length - 1; i >= 0 && last === null; i--) last = se.values[i];
      s.append(sw, document.createTextNode(se.name + (last === null ? '' : ' ' + this.fmt(last))));
      return s;
    });
    this.legend.replaceChildren(...items);
  }

  fmt(v) { return this.opts.percent ? v.toFixed(1) + '%' : rate(v) + (this.opts.unit || ''); }

  hover(e) {
    const tip = document.getElementById('tooltip');
    if (!this.data || !this.data.rows.length) return;
    const box = this.svg.getBoundingClientRect();
    const x = (e.clientX - box.left) * W / box.width;
    const {rows, series, x0, x1} = this.data;
    const t = x0 + (x - ML) / (W - ML - MR) * (x1 - x0);
    let best = 0;
    for (let i = 1; i < rows.length; i++) if (Math.abs(rows[i].t - t) < Math.abs(rows[best].t - t)) best = i;
    const cx = this.px(rows[best].t);
    this.cursor.setAttribute('x1', cx);
    this.cursor.setAttribute('x2', cx);
    this.cursor.setAttribute('visibility', 'visible');
    const lines = [el('div', null, clock(rows[best].t))];
    for (const se of series) {
      const v = se.values[best];
      if (v === null || v === undefined) continue;
      const line = el('div');
      const sw = el('span', 'swatch');
      sw.style.background = se.color;
      line.append(sw, document.createTextNode(se.name + ': ' + this.fmt(v)));
      lines.push(line);
    }
    tip.replaceChildren(...lines);
    tip.hidden = false;
    tip.style.left = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + 'px';
    tip.style.top = (e.clientY + 14) + 'px';
  }

  unhover() {
    document.getElementById('tooltip').hidden = true;
    if (this.cursor) this.cursor.setAttribute('visibility', 'hidden');
  }
}
