// The views read from /v1: apps and their routes, recent calls (and one
// call's log and output), and Swarm services.

import * as api from "./api.js";
import { badge, emptyRow, fill, fmtAge, fmtSeconds, h, table } from "./dom.js";

/** At most this many apps are asked for their routes or calls per refresh. */
const MAX_APPS = 20;
/** Calls per page (the API allows up to its own maximum). */
const PAGE = 50;
/** The most of a log or output shown in the panel. */
const SHOW_BYTES = 256 * 1024;

const ms = (rfc3339) => (rfc3339 ? Date.parse(rfc3339) : null);

// Apps and routes ---------------------------------------------------------

export async function apps() {
  const { apps: list } = await api.json("/v1/apps");
  return list.map((a) => a.name).sort();
}

export async function renderApps(appNames) {
  const shown = appNames.slice(0, MAX_APPS);
  const routes = await Promise.all(shown.map(async (app) => {
    const { routes: list } = await api.json(`/v1/apps/${api.enc(app)}/routes`);
    return { app, list };
  }));
  const blocks = routes.map(({ app, list }) => h(
    "div",
    { class: "app-block" },
    h("h3", null, app, h("span", { class: "muted count" }, `${list.length} route${list.length === 1 ? "" : "s"}`)),
    table(
      ["Route", "Image", "Versions", "Type", "Format", "#Memory", "#Timeout", "#Idle", "#Concurrency", "Options"],
      list.length ? list.map((r) => h(
        "tr",
        null,
        h("td", { class: "mono" }, r.path),
        h("td", { class: "mono" }, r.image),
        h("td", null, serving(r)),
        h("td", null, badge(r.service ? "service" : r.type)),
        h("td", null, r.format),
        h("td", { class: "num" }, `${r.memory} MiB`),
        h("td", { class: "num" }, `${r.timeout} s`),
        h("td", { class: "num" }, `${r.idle_timeout} s`),
        h("td", { class: "num" }, String(r.max_concurrency)),
        h("td", { class: "muted" }, [
          r.jwt_key_set ? "token required" : null,
          r.max_retries ? `${r.max_retries} retries` : null,
          r.service ? `${r.service.min_replicas}–${r.service.max_replicas} replicas` : null,
        ].filter(Boolean).join(" · ")),
      )) : [emptyRow(10, "No routes yet.")],
      { class: "grid" },
    ),
  ));
  if (appNames.length > MAX_APPS) {
    blocks.push(h("p", { class: "muted" }, `Showing the first ${MAX_APPS} of ${appNames.length} apps.`));
  }
  fill("apps-list", blocks.length ? blocks
    : h("p", { class: "empty-state" }, "No apps yet. Create one with ", h("code", null, "ferrite apps create NAME"), "."));
}

/** Which versions serve a route (docs/versions.md): its newest alone, or
 *  its traffic's weights and header rules. */
function serving(route) {
  const entries = route.serving || [];
  const newestOnly = entries.every((e) => e.version === route.version && !e.header);
  if (newestOnly) return `v${route.version ?? 1}`;
  return entries.map((e) => (e.header
    ? `v${e.version} if ${e.header.name}: ${e.header.value}`
    : `v${e.version} ${e.weight}%`)).join(" · ");
}

// Recent calls ------------------------------------------------------------

/** What the calls view shows: filters, and the pages loaded so far. */
export const callsView = { app: "", status: "", calls: [], cursor: null, older: false };

function callsQuery(cursor) {
  const params = new URLSearchParams({ per_page: String(PAGE) });
  if (callsView.status) params.set("status", callsView.status);
  if (cursor) params.set("cursor", cursor);
  return params.toString();
}

/** The newest calls: of one app, or of the first apps merged by time. */
export async function loadCalls(appNames) {
  if (callsView.older) return; // the user paged back: keep what they look at
  const apps = callsView.app ? [callsView.app] : appNames.slice(0, MAX_APPS);
  const pages = await Promise.all(apps.map((app) =>
    api.json(`/v1/apps/${api.enc(app)}/calls?${callsQuery(null)}`)));
  const calls = pages.flatMap((p) => p.calls);
  calls.sort((a, b) => (a.id < b.id ? 1 : -1)); // UUIDv7: newest first
  callsView.calls = calls.slice(0, PAGE);
  callsView.cursor = callsView.app ? pages[0]?.next_cursor ?? null : null;
}

export async function loadOlderCalls() {
  if (!callsView.app || !callsView.cursor) return;
  const page = await api.json(`/v1/apps/${api.enc(callsView.app)}/calls?${callsQuery(callsView.cursor)}`);
  callsView.calls = callsView.calls.concat(page.calls);
  callsView.cursor = page.next_cursor ?? null;
  callsView.older = true;
}

function duration(call, now) {
  const started = ms(call.started_at);
  if (!started) return null;
  const end = ms(call.completed_at) ?? now;
  return (end - started) / 1000;
}

export function renderCalls(onOpen) {
  const now = Date.now();
  const rows = callsView.calls.map((c) => h(
    "tr",
    {
      class: "clickable",
      tabindex: "0",
      "data-call-id": c.id,
      onclick: () => onOpen(c),
      onkeydown: (e) => { if (e.key === "Enter") onOpen(c); },
    },
    h("td", { class: "mono", title: c.id }, c.id),
    h("td", null, c.app_name),
    h("td", { class: "mono" }, c.path),
    h("td", null, c.type),
    h("td", null, badge(c.status)),
    h("td", { class: "num" }, c.completed_at || c.status !== "running"
      ? fmtSeconds(duration(c, now)) : `${fmtSeconds(duration(c, now))}…`),
    h("td", { class: "num" }, String(c.attempts)),
    h("td", { class: "num", title: c.created_at }, `${fmtAge((now - ms(c.created_at)) / 1000)} ago`),
    h("td", { class: "error-cell", title: c.error ?? "" }, c.error ?? ""),
  ));
  fill(
    "calls-list",
    table(
      ["Call", "App", "Route", "Type", "Status", "#Duration", "#Attempts", "#Created", "Error"],
      rows.length ? rows : [emptyRow(9, callsView.status
        ? `No ${callsView.status} calls.` : "No calls yet: they show here as soon as a route is called.")],
      { class: "grid", id: "calls-table" },
    ),
  );
  document.getElementById("calls-older").hidden = !(callsView.app && callsView.cursor);
  document.getElementById("calls-newest").hidden = !callsView.older;
}

/**
 * Fill the detail panel with one call, its log and its output; `current()`
 * says whether the panel still shows this call when they arrive.
 */
export async function renderCall(call, current) {
  const base = `/v1/apps/${api.enc(call.app_name)}/calls/${api.enc(call.id)}`;
  fill("detail-title", `Call ${call.id}`);
  const meta = [
    ["App", call.app_name],
    ["Route", call.version ? `${call.path} (version ${call.version})` : call.path],
    ["Type", call.type],
    ["Status", badge(call.status)],
    ["Attempts", String(call.attempts)],
    ["Created", call.created_at],
    ["Started", call.started_at ?? "—"],
    ["Completed", call.completed_at ?? "—"],
    ["Duration", fmtSeconds(duration(call, Date.now()))],
  ];
  if (call.error) meta.push(["Error", call.error]);
  fill("detail-meta", meta.flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
  fill("detail-log", h("span", { class: "muted" }, "loading…"));
  fill("detail-output", h("span", { class: "muted" }, "loading…"));
  const [log, output] = await Promise.allSettled([
    api.blob(`${base}/log`, SHOW_BYTES),
    api.blob(`${base}/output`, SHOW_BYTES),
  ]);
  if (!current()) return;
  showBlob("detail-log", log, "The function wrote nothing to stderr.");
  showBlob("detail-output", output, call.type === "async"
    ? "No output (yet)." : "Sync calls keep no output: it went to the caller.");
}

function showBlob(id, settled, emptyText) {
  if (settled.status === "rejected") {
    fill(id, h("span", { class: "bad" }, settled.reason.message));
    return;
  }
  const { text, total, truncated } = settled.value;
  if (!total) {
    fill(id, h("span", { class: "muted" }, emptyText));
    return;
  }
  fill(id, text, truncated ? h("span", { class: "muted" }, `\n… ${total - SHOW_BYTES} more bytes not shown`) : null);
}

// Services ----------------------------------------------------------------

export async function renderServices() {
  const { services, reason } = await api.json("/v1/services");
  const now = Date.now();
  const rows = services.map((s) => h(
    "tr",
    null,
    h("td", null, s.app),
    h("td", { class: "mono" }, s.path),
    h("td", { class: "mono" }, s.service),
    h("td", { class: `num ${s.running < s.replicas ? "warn" : ""}` }, `${s.running} / ${s.replicas}`),
    h("td", { class: "num" }, `${s.min_replicas}–${s.max_replicas}`),
    h("td", { class: "num" }, String(s.in_flight)),
    h("td", { class: "num" }, String(s.requests)),
    h("td", { class: "num" }, s.autoscaler ? String(s.autoscaler.wanted) : "—"),
    h("td", null, s.autoscaler
      ? `${s.autoscaler.reason}${s.autoscaler.panicking ? " (panic mode)" : ""}` : "—"),
    h("td", { class: "num" }, s.autoscaler
      ? `${s.autoscaler.stable_concurrency} · ${s.autoscaler.panic_concurrency}` : "—"),
    h("td", null, s.last_scaling
      ? `→ ${s.last_scaling.replicas}: ${s.last_scaling.reason}, ${fmtAge((now - ms(s.last_scaling.at)) / 1000)} ago`
      : "—"),
  ));
  fill(
    "services-list",
    table(
      ["App", "Route", "Service", "#Running", "#Min–max", "#In flight", "#Requests", "#Wanted",
        "Autoscaler", "#Stable · panic", "Last scaling"],
      rows.length ? rows : [emptyRow(11, reason
        ? `No services: ${reason}.` : "No route of this node runs as a service.")],
      { class: "grid" },
    ),
  );
}
