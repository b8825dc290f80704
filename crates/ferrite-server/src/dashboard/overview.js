// The overview: what this node does now, from its /metrics. Scrapes are
// kept for a few minutes in memory (this tab only) so that rates,
// latencies and sparklines need no server-side history.

import { between, containerTotals, snapshot } from "./prom.js";
import {
  emptyRow, fill, fmtAge, fmtBytes, fmtPercent, fmtRate, fmtSeconds, h, sparkline, table,
} from "./dom.js";

/** How long sparklines reach back. */
const HISTORY_MS = 5 * 60 * 1000;
/** The window of the route table's rates: long enough to be steady. */
const TABLE_WINDOW_MS = 30 * 1000;
/** A gap longer than this between scrapes (a pause) breaks the lines. */
const GAP_MS = 10 * 1000;

const snapshots = [];
/** One point per scrape: the figures the sparklines draw. */
const points = [];

/** Take in one scrape of /metrics. */
export function record(text, t) {
  const snap = snapshot(text, t);
  const prev = snapshots[snapshots.length - 1];
  const gap = !prev || t - prev.t > GAP_MS;
  const rates = gap ? null : between(prev, snap).total;
  const containers = containerTotals(snap);
  points.push({
    t,
    calls: rates?.callsPerSec ?? null,
    errors: rates?.errorsPerSec ?? null,
    p95: rates?.p95 ?? null,
    cold: rates?.coldShare ?? null,
    busy: containers.hot_busy,
    queue: snap.gauges.ferrite_async_queue_depth ?? null,
    rss: snap.gauges.process_resident_memory_bytes ?? null,
  });
  snapshots.push(snap);
  while (snapshots.length && t - snapshots[0].t > HISTORY_MS) snapshots.shift();
  while (points.length && t - points[0].t > HISTORY_MS) points.shift();
}

function series(field) {
  return points.map((p) => p[field]);
}

function card(title, value, sub, spark, { cls = "", id } = {}) {
  return h(
    "div",
    { class: `card ${cls}`, id },
    h("div", { class: "card-title" }, title),
    h("div", { class: "card-value" }, value),
    h("div", { class: "card-sub" }, sub),
    spark,
  );
}

const missing = "not reported by this node";

/** Draw the overview from what has been recorded. */
export function render() {
  const latest = snapshots[snapshots.length - 1];
  if (!latest) {
    fill("overview-cards", h("p", { class: "muted" }, "Waiting for the first scrape of /metrics…"));
    fill("overview-routes");
    return;
  }
  const older = snapshots.find((s) => latest.t - s.t <= TABLE_WINDOW_MS && s !== latest)
    ?? snapshots[snapshots.length - 2];
  const win = between(older, latest);
  const has = (name) => latest.present.has(name);
  const g = latest.gauges;
  const callsKnown = has("ferrite_calls_total");
  const histKnown = has("ferrite_call_duration_seconds_bucket");
  const containers = containerTotals(latest);
  const collecting = older ? `last ${Math.round(win.seconds)} s` : "collecting…";

  fill(
    "overview-cards",
    card("Calls / s", callsKnown ? fmtRate(win.total.callsPerSec) : "—",
      callsKnown ? collecting : missing, sparkline(series("calls")), { id: "card-calls" }),
    card("Errors / s", callsKnown ? fmtRate(win.total.errorsPerSec) : "—",
      callsKnown ? "error, timeout, killed, rejected" : missing,
      sparkline(series("errors"), { cls: "bad" }),
      { cls: win.total.errorsPerSec > 0 ? "alert" : "" }),
    card("Latency p50 · p95", histKnown
      ? `${fmtSeconds(win.total.p50)} · ${fmtSeconds(win.total.p95)}` : "—",
    histKnown ? (win.total.p95 === null ? "no calls in the window" : `p95 line · ${collecting}`) : missing,
    sparkline(series("p95"))),
    card("Cold starts", has("ferrite_cold_starts_total") ? fmtPercent(win.total.coldShare) : "—",
      has("ferrite_cold_starts_total") ? "share of calls that started a container" : missing,
      sparkline(series("cold"))),
    card("Containers", has("ferrite_containers")
      ? `${containers.hot_busy} busy · ${containers.hot_idle} idle` : "—",
    has("ferrite_containers") ? `${containers.prestarted} started ahead` : missing,
    sparkline(series("busy"))),
    card("Async queue", has("ferrite_async_queue_depth") ? String(g.ferrite_async_queue_depth) : "—",
      has("ferrite_async_oldest_queued_seconds")
        ? `oldest waits ${fmtAge(g.ferrite_async_oldest_queued_seconds)}` : missing,
      sparkline(series("queue")),
      { cls: g.ferrite_async_oldest_queued_seconds > 60 ? "warn" : "" }),
    card("Memory", has("process_resident_memory_bytes") ? fmtBytes(g.process_resident_memory_bytes) : "—",
      has("process_resident_memory_bytes")
        ? `resident${has("process_open_fds") ? ` · ${g.process_open_fds} open files` : ""}` : missing,
      sparkline(series("rss"))),
    card("Store", has("ferrite_store_up") ? (g.ferrite_store_up ? "up" : "down") : "—",
      has("ferrite_history_buffered")
        ? `${g.ferrite_history_buffered} records buffered · ${g.ferrite_history_dropped_total ?? 0} dropped`
        : missing,
      null,
      { cls: has("ferrite_store_up") && !g.ferrite_store_up ? "alert" : "" }),
  );

  const rows = win.routes.map((r) => h(
    "tr",
    null,
    h("td", null, r.app),
    h("td", { class: "mono" }, r.route),
    h("td", { class: "num" }, fmtRate(r.callsPerSec)),
    h("td", { class: `num ${r.errorsPerSec > 0 ? "bad" : ""}` }, fmtRate(r.errorsPerSec)),
    h("td", { class: "num" }, fmtSeconds(r.p50)),
    h("td", { class: "num" }, fmtSeconds(r.p95)),
    h("td", { class: "num" }, fmtPercent(r.coldShare)),
    h("td", { class: "num" }, r.containers
      ? `${r.containers.hot_busy} / ${r.containers.hot_idle} / ${r.containers.prestarted}` : "—"),
    h("td", { class: "num" }, String(r.totalCalls)),
  ));
  fill(
    "overview-routes",
    table(
      ["App", "Route", "#Calls/s", "#Errors/s", "#p50", "#p95", "#Cold", "#Busy / idle / ahead", "#Since start"],
      rows.length ? rows : [emptyRow(9, callsKnown || has("ferrite_containers")
        ? "No calls yet: a route's rates show here once it is called."
        : "This node reports no per-route metrics yet.")],
      { class: "grid", id: "routes-table" },
    ),
  );
}
