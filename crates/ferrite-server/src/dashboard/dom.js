// Building the page from data. Text only ever enters the DOM as text nodes
// (never innerHTML): names, errors, logs and outputs are written by users
// and by functions, and a function's output is hostile.

/** An element: `h("td", { class: "num", title: x }, "text", child, ...)`. */
export function h(tag, attrs, ...children) {
  const svg = tag === "svg" || tag === "polyline" || tag === "path" || tag === "line";
  const el = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace the children of the element with id `id`. */
export function fill(id, ...children) {
  const el = typeof id === "string" ? document.getElementById(id) : id;
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table with a header row; `rows` are arrays of cells (node or text). */
export function table(headers, rows, attrs) {
  return h(
    "table",
    attrs,
    h("thead", null, h("tr", null, headers.map((c) =>
      h("th", { class: c.startsWith("#") ? "num" : null }, c.replace(/^#/, ""))))),
    h("tbody", null, rows),
  );
}

/** The row shown when a table has nothing to show, and why. */
export function emptyRow(span, text) {
  return h("tr", { class: "empty" }, h("td", { colspan: span }, text));
}

/** A status word in its colour. */
export function badge(status) {
  return h("span", { class: `badge s-${String(status).replace(/[^a-z_]/g, "")}` }, status);
}

// Formatting ------------------------------------------------------------

export function fmtRate(perSecond) {
  if (perSecond === null || perSecond === undefined || Number.isNaN(perSecond)) return "—";
  if (perSecond === 0) return "0";
  if (perSecond < 0.1) return perSecond.toFixed(3);
  if (perSecond < 10) return perSecond.toFixed(2);
  return perSecond.toFixed(perSecond < 100 ? 1 : 0);
}

export function fmtSeconds(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (!Number.isFinite(seconds)) return "> 60 s";
  if (seconds < 0.001) return `${(seconds * 1e6).toFixed(0)} µs`;
  // Up to two decimals below 10 ms, none that say nothing ("1 ms", not "1.00 ms").
  if (seconds < 1) return `${Number((seconds * 1000).toFixed(seconds < 0.01 ? 2 : 0))} ms`;
  if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  return fmtAge(seconds);
}

/** "4 s", "12 min", "3 h", "2 d": how long ago, roughly. */
export function fmtAge(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, seconds);
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

export function fmtBytes(bytes) {
  if (bytes === null || bytes === undefined || Number.isNaN(bytes)) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 && unit > 0 ? 1 : 0)} ${units[unit]}`;
}

export function fmtPercent(share) {
  if (share === null || share === undefined || Number.isNaN(share)) return "—";
  return `${(share * 100).toFixed(share < 0.1 && share > 0 ? 1 : 0)} %`;
}

/** A small line chart of `values` (null: no figure then); no axes. */
export function sparkline(values, { width = 160, height = 36, cls = "" } = {}) {
  const svg = h("svg", {
    class: `spark ${cls}`,
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "none",
    "aria-hidden": "true",
  });
  const known = values.filter((v) => v !== null && Number.isFinite(v));
  if (known.length < 2) return svg;
  const max = Math.max(...known) || 1;
  // A flat series (memory that holds still) is drawn across the middle.
  const flat = known.every((v) => v === known[0]) && known[0] !== 0;
  const step = width / Math.max(1, values.length - 1);
  const pad = 2;
  let segment = [];
  const segments = [];
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      if (segment.length) segments.push(segment);
      segment = [];
      return;
    }
    const y = flat ? height / 2 : height - pad - (v / max) * (height - 2 * pad);
    segment.push(`${(i * step).toFixed(1)},${y.toFixed(1)}`);
  });
  if (segment.length) segments.push(segment);
  for (const points of segments) {
    if (points.length === 1) points.push(points[0]);
    svg.appendChild(h("polyline", { points: points.join(" ") }));
  }
  return svg;
}
