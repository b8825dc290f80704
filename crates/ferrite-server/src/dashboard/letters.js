// Dead letters: each app's async calls that failed for good, with a replay
// of one or of all (after the user confirms), and their count for the calls
// view. Errors are written by functions: text only, as everywhere.

import * as api from "./api.js";
import { badge, fill, fmtAge, h, table } from "./dom.js";

/** At most this many apps are asked for their letters per refresh. */
const MAX_APPS = 20;
/** Letters shown per app (the API pages them as it pages calls). */
const PAGE = 50;
/** Replay-all requests in one click: 100 letters each, the app's 10,000 at most. */
const MAX_BATCHES = 100;

const ms = (rfc3339) => (rfc3339 ? Date.parse(rfc3339) : null);

/** Each app's newest letters: `{ app, letters, more }`. */
export async function load(appNames) {
  return Promise.all(appNames.slice(0, MAX_APPS).map(async (app) => {
    const page = await api.json(`/v1/apps/${api.enc(app)}/dead-letters?per_page=${PAGE}`);
    return { app, letters: page.calls, more: Boolean(page.next_cursor) };
  }));
}

/** "3", or "50+" when there are more than one page. */
export function countText({ letters, more }) {
  return `${letters.length}${more ? "+" : ""}`;
}

/** The line above the calls table: how many dead letters the shown apps have. */
export function renderCount(lists) {
  const withLetters = lists.filter((l) => l.letters.length);
  const el = document.getElementById("calls-dead");
  if (!withLetters.length) {
    fill(el, h("span", { class: "muted" }, "No dead letters."));
    return;
  }
  fill(
    el,
    h("a", { href: "#dead-letters", class: "bad" }, "Dead letters"),
    ": ",
    withLetters.map((l, i) => [i ? " · " : null, `${l.app} ${countText(l)}`]),
  );
}

/**
 * The dead-letters view; `actions.replay(app, id)` and
 * `actions.replayAll(app, count)` run when a button is clicked.
 */
export function render(lists, appCount, actions) {
  const now = Date.now();
  const blocks = lists.filter((l) => l.letters.length).map((l) => h(
    "div",
    { class: "app-block", "data-app": l.app },
    h(
      "h3",
      null,
      l.app,
      h("span", { class: "muted count" }, `${countText(l)} dead letter${l.letters.length === 1 && !l.more ? "" : "s"}`),
      h("button", {
        type: "button",
        class: "small-button replay-all",
        onclick: () => actions.replayAll(l.app, countText(l)),
      }, "Replay all"),
    ),
    table(
      ["Call", "Route", "Status", "#Attempts", "#Created", "Error", ""],
      l.letters.map((c) => h(
        "tr",
        { "data-letter-id": c.id },
        h("td", { class: "mono", title: c.id }, c.id),
        h("td", { class: "mono" }, c.path),
        h("td", null, badge(c.status)),
        h("td", { class: "num" }, String(c.attempts)),
        h("td", { class: "num", title: c.created_at }, `${fmtAge((now - ms(c.created_at)) / 1000)} ago`),
        h("td", { class: "error-cell", title: c.error ?? "" }, c.error ?? ""),
        h("td", null, h("button", {
          type: "button",
          class: "small-button replay",
          onclick: () => actions.replay(l.app, c.id),
        }, "Replay")),
      )),
      { class: "grid" },
    ),
  ));
  if (appCount > MAX_APPS) {
    blocks.push(h("p", { class: "muted" }, `Showing the first ${MAX_APPS} of ${appCount} apps.`));
  }
  fill("dead-letters-list", blocks.length ? blocks : h(
    "p",
    { class: "empty-state" },
    "No dead letters: no async call has failed for good.",
  ));
}

/** Queue one letter again; the server's answer. */
export async function replay(app, id) {
  return api.send("POST", `/v1/apps/${api.enc(app)}/dead-letters/${api.enc(id)}/replay`);
}

/**
 * Queue all of an app's letters again, a batch of 100 a request, until
 * none remain or a batch stops early; how many were queued, and why it
 * stopped early if it did.
 */
export async function replayAll(app) {
  let replayed = 0;
  for (let batch = 0; batch < MAX_BATCHES; batch += 1) {
    const answer = await api.send("POST", `/v1/apps/${api.enc(app)}/dead-letters/replay`);
    replayed += answer.replayed.length;
    if (answer.error) return { replayed, error: answer.error };
    if (!answer.more || !answer.replayed.length) break;
  }
  return { replayed, error: null };
}
