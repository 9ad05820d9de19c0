// blockarray diagnostics: drawing shared by the HTML report and the live dashboard.
// Plain browser JavaScript, no library, no network: everything a page needs is inline.
"use strict";
// A script error is written on the page's body, where tests (and people) see it.
window.addEventListener("error", ev => {
  document.body.setAttribute("data-error", String(ev.message));
});
const BA = (() => {
  const NS = "http://www.w3.org/2000/svg"; // the SVG namespace name, not a download
  const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#8cd17d", "#499894", "#d37295", "#a0cbe8", "#fabfd2"];

  function colour(i) { return PALETTE[i % PALETTE.length]; }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "–";
    const u = ["B", "kB", "MB", "GB", "TB", "PB"];
    let i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return i === 0 ? Math.round(n) + " B" : n.toFixed(2) + " " + u[i];
  }

  function fmtTime(s) {
    if (s === null || s === undefined) return "–";
    if (s >= 120) return (s / 60).toFixed(1) + " min";
    if (s >= 1) return s.toFixed(2) + " s";
    if (s >= 1e-3) return (s * 1e3).toFixed(2) + " ms";
    return (s * 1e6).toFixed(1) + " µs";
  }

  function fmtInt(n) { return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }

  // An SVG element with attributes, appended to parent.
  function svg(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  // An HTML element with attributes and text, appended to parent.
  function html(tag, attrs, text, parent) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }

  // About n round numbers covering [lo, hi].
  function ticks(lo, hi, n) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
    return out;
  }

  // The width an SVG should be drawn at: its container's.
  function widthOf(e) {
    const w = (e.parentNode && e.parentNode.clientWidth) || 0;
    return Math.max(320, w || 960);
  }

  // Hover text: any element with data-tip shows it next to the pointer.
  let tip = null;
  function tooltip() {
    if (!tip) {
      tip = html("div", { id: "tooltip", "class": "tooltip" }, "", document.body);
    }
    return tip;
  }
  document.addEventListener("mousemove", ev => {
    const t = ev.target && ev.target.closest ? ev.target.closest("[data-tip]") : null;
    const d = tooltip();
    if (t) {
      d.textContent = t.getAttribute("data-tip");
      d.style.display = "block";
      d.style.left = Math.min(ev.pageX + 14, window.innerWidth - 340) + "px";
      d.style.top = (ev.pageY + 14) + "px";
    } else {
      d.style.display = "none";
    }
  });

  const LEFT = 78, RIGHT = 14, AXIS = 22;

  // A time axis along the bottom of an SVG.
  function timeAxis(g, x, t0, t1, y, width) {
    svg("line", { x1: LEFT, x2: width - RIGHT, y1: y, y2: y, "class": "axis" }, g);
    for (const t of ticks(t0, t1, Math.max(2, Math.floor((width - LEFT) / 110)))) {
      const px = x(t);
      svg("line", { x1: px, x2: px, y1: y, y2: y + 4, "class": "axis" }, g);
      const label = svg("text", { x: px, y: y + 16, "class": "tick", "text-anchor": "middle" }, g);
      label.textContent = Math.abs(t) < 1e-12 ? "0" : fmtTime(t).replace(".00 ", " ");
    }
  }

  // The task stream: one row per worker, one bar per task (or per run of short tasks of one
  // operation), coloured by operation. o = {workers, t0, t1, ops: [names], segments:
  // [[worker, op, start, end, count, busy, key|null], ...]}. Returns the bars drawn.
  function stream(e, o) {
    clear(e);
    const width = widthOf(e), row = 22, workers = Math.max(1, o.workers);
    const height = workers * row + AXIS + 6;
    e.setAttribute("width", width);
    e.setAttribute("height", height);
    e.setAttribute("viewBox", "0 0 " + width + " " + height);
    const t0 = o.t0, t1 = o.t1 > o.t0 ? o.t1 : o.t0 + 1e-3;
    const x = t => LEFT + (t - t0) / (t1 - t0) * (width - LEFT - RIGHT);
    const g = svg("g", {}, e);
    for (let w = 0; w < workers; w++) {
      svg("rect", { x: LEFT, y: w * row + 2, width: width - LEFT - RIGHT, height: row - 4,
        "class": "lane" }, g);
      const label = svg("text", { x: LEFT - 8, y: w * row + row / 2 + 4, "class": "lane-label",
        "text-anchor": "end" }, g);
      label.textContent = "worker " + w;
    }
    let drawn = 0;
    const bars = svg("g", { "class": "bars" }, e);
    for (const s of o.segments) {
      const [w, op, start, end, count, busy, key] = s;
      if (end < t0 || start > t1 || w >= workers) continue;
      const x0 = x(Math.max(start, t0)), x1 = x(Math.min(end, t1));
      const name = o.ops[op] || "?";
      const tipText = count === 1
        ? (key || name) + "\n" + name + " · " + fmtTime(end - start) + " · worker " + w
        : count + " tasks of " + name + " · " + fmtTime(busy) + " running in " +
          fmtTime(end - start) + " · worker " + w;
      svg("rect", { x: x0.toFixed(2), y: w * row + 3, width: Math.max(0.6, x1 - x0).toFixed(2),
        height: row - 6, fill: colour(op), "class": "task", "data-op": op, "data-tip": tipText },
        bars);
      drawn++;
    }
    timeAxis(g, x, t0, t1, workers * row + 2, width);
    e.setAttribute("data-bars", drawn);
    return drawn;
  }

  // A line chart over time. o = {t0, t1, height, ymax, fmt, series: [{name, colour, t, v,
  // area}], hlines: [{name, colour, v}]}.
  function lines(e, o) {
    clear(e);
    const width = widthOf(e), height = o.height || 180, top = 10;
    e.setAttribute("width", width);
    e.setAttribute("height", height);
    e.setAttribute("viewBox", "0 0 " + width + " " + height);
    const t0 = o.t0, t1 = o.t1 > o.t0 ? o.t1 : o.t0 + 1e-3;
    let ymax = o.ymax || 0;
    for (const s of o.series) for (const v of s.v) if (v > ymax) ymax = v;
    // A reference line far above the data (a memory limit of gigabytes over megabytes held)
    // would flatten the data: it is named at the top instead of drawn.
    const data = ymax;
    const above = [];
    for (const h of o.hlines || []) {
      if (data > 0 && h.v > 4 * data) above.push(h);
      else if (h.v > ymax) ymax = h.v;
    }
    if (!(ymax > 0)) ymax = 1;
    ymax *= 1.08;
    const plotH = height - AXIS - top;
    const x = t => LEFT + (t - t0) / (t1 - t0) * (width - LEFT - RIGHT);
    const y = v => top + plotH - v / ymax * plotH;
    const g = svg("g", {}, e);
    for (const v of ticks(0, ymax, 4)) {
      svg("line", { x1: LEFT, x2: width - RIGHT, y1: y(v), y2: y(v), "class": "gridline" }, g);
      const label = svg("text", { x: LEFT - 8, y: y(v) + 4, "class": "tick", "text-anchor": "end" }, g);
      label.textContent = (o.fmt || String)(v);
    }
    timeAxis(g, x, t0, t1, top + plotH, width);
    for (const s of o.series) {
      if (!s.t.length) continue;
      const pts = s.t.map((t, i) => x(t).toFixed(1) + "," + y(s.v[i]).toFixed(1));
      if (s.area) {
        svg("polygon", { points: x(s.t[0]).toFixed(1) + "," + y(0) + " " + pts.join(" ") + " " +
          x(s.t[s.t.length - 1]).toFixed(1) + "," + y(0), fill: s.colour, "class": "area" }, g);
      }
      svg("polyline", { points: pts.join(" "), stroke: s.colour, "class": "series",
        "data-series": s.name }, g);
      // Invisible hover targets at the samples.
      const step = Math.max(1, Math.floor(s.t.length / 300));
      for (let i = 0; i < s.t.length; i += step) {
        svg("circle", { cx: x(s.t[i]).toFixed(1), cy: y(s.v[i]).toFixed(1), r: 4, "class": "hover",
          "data-tip": s.name + ": " + (o.fmt || String)(s.v[i]) + " at " + fmtTime(s.t[i]) }, g);
      }
    }
    for (const h of o.hlines || []) {
      if (above.includes(h)) continue;
      svg("line", { x1: LEFT, x2: width - RIGHT, y1: y(h.v), y2: y(h.v), stroke: h.colour,
        "class": "hline", "data-tip": h.name + ": " + (o.fmt || String)(h.v) }, g);
    }
    above.forEach((h, i) => {
      const t = svg("text", { x: width - RIGHT, y: top + 10 + 13 * i, "text-anchor": "end",
        fill: h.colour, "class": "off-scale" }, g);
      t.textContent = "↑ " + h.name + " " + (o.fmt || String)(h.v) + " (off scale)";
    });
  }

  // A legend: coloured swatches with names.
  function legend(e, items) {
    clear(e);
    for (const it of items) {
      const span = html("span", { "class": "legend-item" }, null, e);
      const sw = html("span", { "class": "swatch" + (it.line ? " line" : "") }, null, span);
      sw.style.background = it.colour;
      html("span", {}, it.name, span);
    }
  }

  // Horizontal bars on one scale (full width = max, default the largest value; a row with
  // `reference` set does not stretch the scale when it is far above the others, and is drawn
  // cut): rows = [{label, value, colour, text, id, reference}].
  function bars(e, rows, max) {
    clear(e);
    const plain = Math.max(0, ...rows.filter(r => !r.reference).map(r => r.value || 0));
    const refs = rows.filter(r => r.reference && !(plain > 0 && r.value > 4 * plain));
    max = Math.max(1e-12, max || 0, plain, ...refs.map(r => r.value || 0));
    for (const r of rows) {
      const div = html("div", { "class": "hbar", "data-id": r.id || "" }, null, e);
      html("span", { "class": "hbar-label" }, r.label, div);
      const track = html("span", { "class": "hbar-track" }, null, div);
      const fill = html("span", { "class": "hbar-fill" }, null, track);
      fill.style.width = Math.min(100, 100 * (r.value || 0) / max).toFixed(2) + "%";
      fill.style.background = r.colour;
      if ((r.value || 0) > max * 1.0001) fill.classList.add("cut");
      html("span", { "class": "hbar-text" }, r.text, div);
    }
  }

  // The report: everything drawn from the data the Rust side wrote into the page.
  function renderReport(D) {
    const summary = document.getElementById("summary");
    for (const [id, label, value] of D.summary) {
      const tr = html("tr", { "data-id": id }, null, summary);
      html("th", {}, label, tr);
      html("td", {}, value, tr);
    }
    const colours = D.ops.map((_, i) => colour(i));
    legend(document.getElementById("legend"), D.ops.map((o, i) => ({ name: o.name, colour: colours[i] })));
    const span = D.span > 0 ? D.span : 1e-3;
    const draw = () => {
      stream(document.getElementById("stream"), { workers: D.workers, t0: 0, t1: span,
        ops: D.ops.map(o => o.name), segments: D.segments });
      const mem = document.getElementById("memory"), cpu = document.getElementById("cpu");
      const m = D.memory, hl = [];
      if (m.predicted !== null) hl.push({ name: "predicted peak held", colour: "#7b3294", v: m.predicted });
      if (m.limit !== null) hl.push({ name: "memory limit", colour: "#d7191c", v: m.limit });
      if (D.samples) {
        const S = D.samples;
        lines(mem, { t0: 0, t1: span, fmt: fmtBytes, series: [
          { name: "resident memory", colour: "#4e79a7", t: S.t, v: S.rss, area: true },
          { name: "bytes held", colour: "#f28e2b", t: S.t, v: S.held, area: true }], hlines: hl });
        lines(cpu, { t0: 0, t1: span, ymax: S.cores, fmt: v => (v * 100).toFixed(0) + " %",
          series: [{ name: "CPU", colour: "#59a14f", t: S.t, v: S.cpu, area: true }],
          hlines: [{ name: S.cores + " cores", colour: "#999", v: S.cores }] });
      } else {
        for (const e of [mem, cpu]) {
          clear(e);
          e.setAttribute("height", 30);
          const t = svg("text", { x: 10, y: 20, "class": "tick" }, e);
          t.textContent = "no samples (run with a ResourceProfiler to see them)";
        }
      }
      const ml = [{ name: "resident memory", colour: "#4e79a7" }, { name: "bytes held", colour: "#f28e2b" }];
      for (const h of hl) ml.push({ name: h.name, colour: h.colour, line: true });
      legend(document.getElementById("memory-legend"), ml);
    };
    draw();
    window.addEventListener("resize", draw);

    const m = D.memory, rows = [];
    if (m.predicted !== null) rows.push({ id: "predicted", label: "predicted peak held", value: m.predicted, colour: "#7b3294", text: fmtBytes(m.predicted) });
    if (m.measured !== null) rows.push({ id: "measured", label: "measured peak held", value: m.measured, colour: "#f28e2b", text: fmtBytes(m.measured) });
    if (m.sampled !== null) rows.push({ id: "sampled", label: "sampled peak held", value: m.sampled, colour: "#fdb863", text: fmtBytes(m.sampled) });
    if (m.rss !== null) rows.push({ id: "rss", label: "peak resident memory", value: m.rss, colour: "#4e79a7", text: fmtBytes(m.rss) });
    if (m.limit !== null) rows.push({ id: "limit", label: "memory limit", value: m.limit, colour: "#d7191c", text: fmtBytes(m.limit), reference: true });
    if (!rows.length) rows.push({ id: "none", label: "no memory data", value: 0, colour: "#ccc", text: "" });
    bars(document.getElementById("peaks"), rows);

    const table = document.getElementById("ops");
    const head = html("tr", {}, null, table);
    for (const h of ["operation", "tasks", "total time", "share", "mean", "longest", "bytes in", "bytes out"]) html("th", {}, h, head);
    const order = D.ops.map((o, i) => i).sort((a, b) => D.ops[b].total - D.ops[a].total);
    const total = D.ops.reduce((s, o) => s + o.total, 0) || 1e-12;
    for (const i of order) {
      const o = D.ops[i];
      const tr = html("tr", { "class": "op-row", "data-op": o.name }, null, table);
      const name = html("td", {}, null, tr);
      const sw = html("span", { "class": "swatch" }, null, name);
      sw.style.background = colours[i];
      html("span", {}, o.name, name);
      html("td", { "class": "num" }, fmtInt(o.tasks), tr);
      html("td", { "class": "num" }, fmtTime(o.total), tr);
      const share = html("td", { "class": "share" }, null, tr);
      const bar = html("span", { "class": "share-bar" }, null, share);
      bar.style.width = (70 * o.total / total).toFixed(1) + "%";
      bar.style.background = colours[i];
      html("span", { "class": "share-text" }, (100 * o.total / total).toFixed(1) + " %", share);
      html("td", { "class": "num" }, fmtTime(o.mean), tr);
      html("td", { "class": "num" }, fmtTime(o.max), tr);
      html("td", { "class": "num" }, fmtBytes(o.bytes_in), tr);
      html("td", { "class": "num" }, fmtBytes(o.bytes_out), tr);
    }
    document.body.setAttribute("data-rendered", "ok");
  }

  return { colour, fmtBytes, fmtTime, fmtInt, svg, html, clear, ticks, stream, lines, legend,
    bars, renderReport };
})();
