// Schedules: each app's timetables with their next run times, paused and
// resumed from here. Payloads are the user's: text only.

import * as api from "./api.js";
import { badge, fill, h, table } from "./dom.js";

/** At most this many apps are asked for their schedules per refresh. */
const MAX_APPS = 20;
/** Next run times shown per schedule. */
const NEXT = 3;
/** The most of a payload shown in the table (the whole is in its title). */
const PAYLOAD_CHARS = 60;

const clip = (text, max) => (text.length > max ? `${text.slice(0, max)}…` : text);

export async function renderSchedules(appNames, onToggle) {
  const lists = await Promise.all(appNames.slice(0, MAX_APPS).map(async (app) => {
    const { schedules } = await api.json(`/v1/apps/${api.enc(app)}/schedules?next=${NEXT}`);
    return { app, schedules };
  }));
  const blocks = lists.filter((l) => l.schedules.length).map((l) => h(
    "div",
    { class: "app-block" },
    h("h3", null, l.app, h("span", { class: "muted count" },
      `${l.schedules.length} schedule${l.schedules.length === 1 ? "" : "s"}`)),
    table(
      ["Schedule", "Route", "Cron", "Time zone", "Catch-up", "State", "Next runs", "Payload", ""],
      l.schedules.map((s) => h(
        "tr",
        { "data-schedule-id": s.id },
        h("td", { class: "mono id-cell", title: s.id }, s.id),
        h("td", { class: "mono" }, s.path),
        h("td", { class: "mono" }, s.cron),
        h("td", null, s.timezone),
        h("td", null, s.catch_up),
        h("td", null, badge(s.enabled ? "enabled" : "paused")),
        h("td", { class: "mono runs" }, s.next_runs.length
          ? s.next_runs.map((t, i) => [i ? h("br") : null, t]) : "—"),
        h("td", { class: "mono payload", title: s.payload }, clip(s.payload, PAYLOAD_CHARS)),
        h("td", null, h("button", {
          type: "button",
          class: "small-button toggle",
          onclick: () => onToggle(l.app, s),
        }, s.enabled ? "Pause" : "Resume")),
      )),
      { class: "grid" },
    ),
  ));
  if (appNames.length > MAX_APPS) {
    blocks.push(h("p", { class: "muted" }, `Showing the first ${MAX_APPS} of ${appNames.length} apps.`));
  }
  fill("schedules-list", blocks.length ? blocks : h(
    "p",
    { class: "empty-state" },
    "No schedules yet. Make one with ",
    h("code", null, "ferrite schedules create APP /route --cron '0 9 * * *'"),
    ".",
  ));
}

/** Pause a running schedule, resume a paused one. */
export async function toggle(app, schedule) {
  return api.send(
    "PATCH",
    `/v1/apps/${api.enc(app)}/schedules/${api.enc(schedule.id)}`,
    { schedule: { enabled: !schedule.enabled } },
  );
}
