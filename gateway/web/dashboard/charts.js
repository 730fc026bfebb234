// Unione dashboard: the two charts, drawn as SVG by our own code (no library, no CDN). Text is
// always set as text nodes, never as markup. Colour never carries meaning alone: each bar
// says its band in words, each series has its own marker shape and dash pattern.

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element with attributes and children (strings become text nodes). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** A linear scale from [d0, d1] to [r0, r1]. */
function scale(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

/** A "nice" upper end for an axis, so ticks fall on round numbers. */
function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw || 1));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

function domain(values, target) {
  let lo = Math.min(0, ...values, Number.isFinite(target) ? target : 0);
  let hi = Math.max(0, ...values, Number.isFinite(target) ? target : 0);
  if (hi === lo) hi = lo + 1;
  const step = niceStep(hi - lo, 5);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil((hi * 1.02) / step) * step;
  return { lo, hi, step };
}

/**
 * Horizontal bars, one per row in the order given (rows: {istat_code, display_name, rank,
 * normalised_value, band, highlighted}). `o`: {width, target, format(v), bandLabel(band),
 * ownLabel, targetLabel, title, description}.
 */
export function barChart(rows, o) {
  const width = Math.max(280, Math.floor(o.width));
  const rowHeight = 56;
  const top = 30;
  const left = 8;
  const right = 110;
  const values = rows.map((r) => r.normalised_value);
  const { lo, hi } = domain(values, o.target);
  const x = scale(lo, hi, left, width - right);
  const height = top + rows.length * rowHeight + 8;
  const root = svg("svg", {
    id: "bars-chart",
    class: "chart-svg",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": "bars-title bars-desc",
  });
  root.append(svg("title", { id: "bars-title" }, o.title), svg("desc", { id: "bars-desc" }, o.description));
  rows.forEach((r, i) => {
    const y = top + i * rowHeight;
    const v = r.normalised_value;
    const x0 = x(Math.max(lo, Math.min(0, hi)));
    const x1 = x(v);
    const g = svg("g", {
      class: r.highlighted ? "bar-row own" : "bar-row",
      dataset: { istat: r.istat_code, rank: String(r.rank), band: r.band, value: String(v) },
    });
    if (r.highlighted) g.append(svg("rect", { class: "own-bg", x: 0, y: y - 2, width, height: rowHeight - 4, rx: 4 }));
    const name = `${r.rank}. ${r.display_name}${r.highlighted ? ` (${o.ownLabel})` : ""}`;
    g.append(svg("text", { class: "bar-name", x: left, y: y + 16 }, name));
    g.append(svg("rect", {
      class: `bar band-${r.band}`,
      x: Math.min(x0, x1),
      y: y + 24,
      width: Math.max(2, Math.abs(x1 - x0)),
      height: 22,
    }));
    g.append(svg("text", { class: "bar-value", x: Math.max(x0, x1) + 6, y: y + 40 }, `${o.format(v)} · ${o.bandLabel(r.band)}`));
    root.append(g);
  });
  if (Number.isFinite(o.target)) {
    const tx = x(o.target);
    root.append(
      svg("line", { class: "target-line", x1: tx, x2: tx, y1: top - 6, y2: height - 4 }),
      svg("text", { class: "target-label", x: Math.min(Math.max(tx, left + 4), width - 4), y: 16, "text-anchor": tx > width - right ? "end" : "middle" }, `${o.targetLabel}: ${o.format(o.target)}`),
    );
  }
  return root;
}

/** The marker of series `i`: circle, square, triangle, diamond, cross, then again. */
function marker(i, cx, cy, attrs) {
  const s = 5;
  switch (i % 5) {
    case 0: return svg("circle", { cx, cy, r: s, ...attrs });
    case 1: return svg("rect", { x: cx - s, y: cy - s, width: 2 * s, height: 2 * s, ...attrs });
    case 2: return svg("path", { d: `M${cx},${cy - s - 1}L${cx + s + 1},${cy + s}L${cx - s - 1},${cy + s}Z`, ...attrs });
    case 3: return svg("path", { d: `M${cx},${cy - s - 1}L${cx + s + 1},${cy}L${cx},${cy + s + 1}L${cx - s - 1},${cy}Z`, ...attrs });
    default: return svg("path", { d: `M${cx - s},${cy - s}L${cx + s},${cy + s}M${cx - s},${cy + s}L${cx + s},${cy - s}`, ...attrs });
  }
}

/** A small legend sample (an SVG) for series `i`. */
export function seriesSample(i) {
  const root = svg("svg", { width: 40, height: 16, viewBox: "0 0 40 16", "aria-hidden": "true", class: `sample s${i % 5}` });
  root.append(svg("line", { class: `series-line s${i % 5}`, x1: 2, x2: 38, y1: 8, y2: 8 }), marker(i, 20, 8, { class: `marker s${i % 5}` }));
  return root;
}

/**
 * Lines over periods (series: [{display_name, points: [{period, normalised_value}]}]), with
 * the target as a dashed line. `o`: {width, target, format(v), targetLabel, title,
 * description, pointLabel(series, point)}.
 */
export function lineChart(series, o) {
  const width = Math.max(280, Math.floor(o.width));
  const height = 280;
  const top = 24;
  const bottom = 40;
  const left = 56;
  const right = 16;
  const periods = series.length ? series[0].points.map((p) => p.period) : [];
  const values = series.flatMap((s) => s.points.map((p) => p.normalised_value).filter((v) => v !== null && v !== undefined));
  const { lo, hi, step } = domain(values, o.target);
  const y = scale(lo, hi, height - bottom, top);
  const x = (i) => (periods.length <= 1 ? (left + width - right) / 2 : left + (i * (width - left - right)) / (periods.length - 1));
  const root = svg("svg", {
    id: "series-chart",
    class: "chart-svg",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": "series-title series-desc",
  });
  root.append(svg("title", { id: "series-title" }, o.title), svg("desc", { id: "series-desc" }, o.description));
  const axis = svg("g", { class: "axis" });
  for (let v = lo; v <= hi + step / 2; v += step) {
    axis.append(
      svg("line", { class: "grid-line", x1: left, x2: width - right, y1: y(v), y2: y(v) }),
      svg("text", { x: left - 6, y: y(v) + 5, "text-anchor": "end" }, o.format(v)),
    );
  }
  const every = Math.max(1, Math.ceil(periods.length / Math.max(1, Math.floor((width - left - right) / 72))));
  periods.forEach((p, i) => {
    if (i % every !== 0 && i !== periods.length - 1) return;
    const anchor = periods.length > 1 && i === 0 ? "start" : periods.length > 1 && i === periods.length - 1 ? "end" : "middle";
    axis.append(svg("text", { x: x(i), y: height - bottom + 22, "text-anchor": anchor }, p));
  });
  root.append(axis);
  if (Number.isFinite(o.target)) {
    root.append(
      svg("line", { class: "target-line", x1: left, x2: width - right, y1: y(o.target), y2: y(o.target) }),
      svg("text", { class: "target-label", x: width - right, y: y(o.target) - 6, "text-anchor": "end" }, `${o.targetLabel}: ${o.format(o.target)}`),
    );
  }
  series.forEach((s, si) => {
    let d = "";
    let pen = false;
    s.points.forEach((p, i) => {
      const v = p.normalised_value;
      if (v === null || v === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    const g = svg("g", { class: "series", dataset: { istat: s.istat_code } });
    if (d) g.append(svg("path", { class: `series-line s${si % 5}`, d }));
    s.points.forEach((p, i) => {
      const v = p.normalised_value;
      if (v === null || v === undefined) return;
      const m = marker(si, x(i), y(v), { class: `point marker s${si % 5}`, "data-period": p.period, "data-value": String(v) });
      m.append(svg("title", {}, o.pointLabel(s, p)));
      g.append(m);
    });
    root.append(g);
  });
  return root;
}
