// Reading /metrics (Prometheus' text format) and turning two scrapes into
// rates and latency quantiles, as Prometheus' rate() and
// histogram_quantile() would over the same window. A metric this node does
// not report is simply absent from a snapshot: the views show "—" for it.

/** Every sample of the text, as `{ name, labels, value }`. */
export function parse(text) {
  const samples = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const sample = parseLine(line);
    if (sample) samples.push(sample);
  }
  return samples;
}

function parseLine(line) {
  const brace = line.indexOf("{");
  const space = line.indexOf(" ");
  let name;
  let labels = {};
  let rest;
  if (brace !== -1 && (space === -1 || brace < space)) {
    name = line.slice(0, brace);
    const parsed = parseLabels(line, brace + 1);
    if (!parsed) return null;
    labels = parsed.labels;
    rest = line.slice(parsed.end + 1);
  } else {
    name = line.slice(0, space);
    rest = line.slice(space + 1);
  }
  const value = parseValue(rest.trim().split(/\s+/)[0]);
  return Number.isNaN(value) ? null : { name, labels, value };
}

/** `a="x",b="y\"z"}` from `start`; the labels and the index of `}`. */
function parseLabels(line, start) {
  const labels = {};
  let i = start;
  while (i < line.length) {
    while (line[i] === " " || line[i] === ",") i += 1;
    if (line[i] === "}") return { labels, end: i };
    const eq = line.indexOf("=", i);
    if (eq === -1 || line[eq + 1] !== '"') return null;
    const key = line.slice(i, eq).trim();
    let value = "";
    let j = eq + 2;
    for (; j < line.length && line[j] !== '"'; j += 1) {
      if (line[j] === "\\" && j + 1 < line.length) {
        j += 1;
        value += line[j] === "n" ? "\n" : line[j];
      } else {
        value += line[j];
      }
    }
    labels[key] = value;
    i = j + 1;
  }
  return null;
}

function parseValue(text) {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  return Number(text);
}

const routeKey = (app, route) => `${app}\u0000${route}`;

/** What the views need of one scrape taken at `t` (ms). */
export function snapshot(text, t) {
  const routes = new Map();
  const present = new Set();
  const gauges = {};
  const route = (labels) => {
    const key = routeKey(labels.app ?? "", labels.route ?? "");
    if (!routes.has(key)) {
      routes.set(key, {
        app: labels.app ?? "",
        route: labels.route ?? "",
        calls: 0,
        errors: 0,
        cold: 0,
        buckets: new Map(),
        containers: { prestarted: 0, hot_idle: 0, hot_busy: 0 },
        hasContainers: false,
      });
    }
    return routes.get(key);
  };
  for (const { name, labels, value } of parse(text)) {
    present.add(name);
    switch (name) {
      case "ferrite_calls_total": {
        const r = route(labels);
        r.calls += value;
        if (labels.status !== "success") r.errors += value;
        break;
      }
      case "ferrite_call_duration_seconds_bucket": {
        const r = route(labels);
        const le = parseValue(labels.le);
        r.buckets.set(le, (r.buckets.get(le) ?? 0) + value);
        break;
      }
      case "ferrite_cold_starts_total":
        route(labels).cold += value;
        break;
      case "ferrite_containers": {
        const r = route(labels);
        r.hasContainers = true;
        if (labels.state in r.containers) r.containers[labels.state] += value;
        break;
      }
      default:
        gauges[name] = (gauges[name] ?? 0) + value;
    }
  }
  return { t, routes, present, gauges };
}

/** A counter's increase, across a restart of the node (a reset). */
function increase(older, newer) {
  if (older === undefined) return newer;
  return newer >= older ? newer - older : newer;
}

/** The `q` quantile of the observations between two cumulative histograms. */
export function quantile(q, olderBuckets, newerBuckets) {
  const bounds = [...newerBuckets.keys()].sort((a, b) => a - b);
  if (!bounds.length) return null;
  const counts = bounds.map((le) => increase(olderBuckets?.get(le), newerBuckets.get(le)));
  const total = counts[counts.length - 1];
  if (!total) return null;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i += 1) {
    if (counts[i] >= rank) {
      if (!Number.isFinite(bounds[i])) return i > 0 ? bounds[i - 1] : null;
      const lower = i > 0 ? bounds[i - 1] : 0;
      const below = i > 0 ? counts[i - 1] : 0;
      const inBucket = counts[i] - below;
      return inBucket > 0 ? lower + (bounds[i] - lower) * ((rank - below) / inBucket) : bounds[i];
    }
  }
  return bounds[bounds.length - 2] ?? null;
}

function sumBuckets(routes) {
  const sum = new Map();
  for (const r of routes) {
    for (const [le, v] of r.buckets) sum.set(le, (sum.get(le) ?? 0) + v);
  }
  return sum;
}

/**
 * Rates between two snapshots: per route and in total. `older` may be
 * undefined (the first scrape): then there are no rates yet.
 */
export function between(older, newer) {
  const seconds = older ? (newer.t - older.t) / 1000 : 0;
  const perRoute = [];
  for (const [key, r] of newer.routes) {
    const o = older?.routes.get(key);
    const calls = older ? increase(o?.calls, r.calls) : null;
    const errors = older ? increase(o?.errors, r.errors) : null;
    const cold = older ? increase(o?.cold, r.cold) : null;
    perRoute.push({
      app: r.app,
      route: r.route,
      callsPerSec: seconds > 0 ? calls / seconds : null,
      errorsPerSec: seconds > 0 ? errors / seconds : null,
      calls,
      coldShare: calls ? cold / calls : null,
      p50: older ? quantile(0.5, o?.buckets, r.buckets) : null,
      p95: older ? quantile(0.95, o?.buckets, r.buckets) : null,
      containers: r.hasContainers ? r.containers : null,
      totalCalls: r.calls,
    });
  }
  perRoute.sort((a, b) => (b.totalCalls - a.totalCalls) || a.app.localeCompare(b.app)
    || a.route.localeCompare(b.route));
  const sum = (f) => perRoute.reduce((acc, r) => acc + (f(r) ?? 0), 0);
  const calls = older ? sum((r) => r.calls) : null;
  const olderAll = older ? sumBuckets(older.routes.values()) : null;
  const newerAll = sumBuckets(newer.routes.values());
  const coldTotal = older
    ? [...newer.routes].reduce((acc, [k, r]) => acc + increase(older.routes.get(k)?.cold, r.cold), 0)
    : null;
  return {
    seconds,
    routes: perRoute,
    total: {
      callsPerSec: seconds > 0 ? calls / seconds : null,
      errorsPerSec: seconds > 0 ? sum((r) => r.errorsPerSec) : null,
      coldShare: calls ? coldTotal / calls : null,
      p50: older ? quantile(0.5, olderAll, newerAll) : null,
      p95: older ? quantile(0.95, olderAll, newerAll) : null,
    },
  };
}

/** The current containers of every route, summed by state. */
export function containerTotals(snap) {
  const totals = { prestarted: 0, hot_idle: 0, hot_busy: 0 };
  for (const r of snap.routes.values()) {
    for (const state of Object.keys(totals)) totals[state] += r.containers[state];
  }
  return totals;
}
