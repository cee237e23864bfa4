// Small SVG line charts for the status page: no library, nothing downloaded.
// Charts.line(svg, series, opts) draws series [{name, color, points: [[t, v|null], ...]}]
// over the time range [opts.t0, opts.t1] (unix seconds); null values break the line.
// Charts.span(dataSeconds, windowSeconds) picks a time range that fits the data.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const PAD = { left: 52, right: 12, top: 28, bottom: 24 };

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The smallest 4 * step >= v with step 1, 2, 2.5 or 5 times a power of ten.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const step = v / 4;
    const p = Math.pow(10, Math.floor(Math.log10(step)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= step) return 4 * m * p;
    return 40 * p;
  }

  // Seconds shown: the smallest of 1, 2, 4, 8, 20, 40 or 60 minutes that holds the data.
  function span(dataSeconds, windowSeconds) {
    for (const s of [60, 120, 240, 480, 1200, 2400, 3600]) {
      if (s >= dataSeconds * 1.05 || s >= windowSeconds) return Math.min(s, windowSeconds);
    }
    return windowSeconds;
  }

  function line(svg, series, opts) {
    const box = svg.viewBox.baseVal;
    const W = box.width, H = box.height;
    const x0 = PAD.left, x1 = W - PAD.right, y0 = H - PAD.bottom, y1 = PAD.top;
    const { t0, t1 } = opts;
    let max = opts.yMax;
    if (max === undefined) {
      let seen = 0;
      for (const s of series) for (const [, v] of s.points) if (v !== null && v > seen) seen = v;
      max = niceMax(seen);
    }
    const fmt = opts.format || ((v) => String(v));
    const X = (t) => x0 + ((t - t0) / (t1 - t0)) * (x1 - x0);
    const Y = (v) => y0 - (v / max) * (y0 - y1);
    while (svg.firstChild) svg.removeChild(svg.firstChild);

    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4, y = Y(v);
      svg.appendChild(el("line", { class: "grid", x1: x0, x2: x1, y1: y, y2: y }));
      svg.appendChild(el("text", { class: "axis", x: x0 - 6, y: y + 4, "text-anchor": "end" }, fmt(v)));
    }
    const span = t1 - t0;
    for (let i = 0; i <= 4; i++) {
      const t = t0 + (span * i) / 4;
      const secs = Math.round(t1 - t);
      const label = secs === 0 ? "now" : span <= 120 ? `-${secs} s` : `-${Math.round(secs / 6) / 10} min`;
      const anchor = i === 0 ? "start" : i === 4 ? "end" : "middle";
      svg.appendChild(el("text", { class: "axis", x: X(t), y: H - 6, "text-anchor": anchor }, label));
    }

    let drawn = 0;
    for (const s of series) {
      let d = "";
      let pen = false;
      let last = null;
      const pts = s.points.filter(([t]) => t >= t0);
      pts.forEach(([t, v], i) => {
        if (v === null || v === undefined) { pen = false; return; }
        const x = X(t).toFixed(1), y = Y(Math.min(v, max)).toFixed(1);
        d += `${pen ? "L" : "M"}${x},${y}`;
        const next = pts[i + 1];
        if (!pen && (!next || next[1] === null || next[1] === undefined)) {
          // a lone sample: a dot, since a path of one point draws nothing
          svg.appendChild(el("circle", { cx: x, cy: y, r: 2.5, fill: s.color }));
        }
        pen = true;
        last = [x, y];
        drawn++;
      });
      if (d) svg.appendChild(el("path", { class: "series", d, stroke: s.color }));
      if (last) svg.appendChild(el("circle", { cx: last[0], cy: last[1], r: 3, fill: s.color }));
    }
    let lx = x0;
    for (const s of series) {
      svg.appendChild(el("rect", { x: lx, y: 8, width: 10, height: 10, rx: 2, fill: s.color }));
      const text = el("text", { class: "legend", x: lx + 14, y: 17 }, s.name);
      svg.appendChild(text);
      lx += 22 + 7 * s.name.length;
    }
    if (!drawn) {
      svg.appendChild(el("text", { class: "empty", x: (x0 + x1) / 2, y: (y0 + y1) / 2,
        "text-anchor": "middle" }, "collecting samples…"));
    }
  }

  window.Charts = { line, span };
})();
