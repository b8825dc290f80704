// The dashboard's main loop: tabs, a refresh every 2 s (pausable), asking
// for a token when the API answers 401, and the call detail panel.

import * as api from "./api.js";
import { fill, h } from "./dom.js";
import * as keys from "./keys.js";
import * as letters from "./letters.js";
import * as overview from "./overview.js";
import * as schedules from "./schedules.js";
import * as tables from "./tables.js";

const REFRESH_MS = 2000;
const TABS = ["overview", "apps", "calls", "dead-letters", "schedules", "services", "keys"];
/** The tabs that list each app's things. */
const PER_APP = ["apps", "calls", "dead-letters", "schedules"];

const state = {
  tab: "overview",
  paused: false,
  busy: false,
  /** A refresh was asked for while one ran: run another after it. */
  again: false,
  /** What the user's last action (a replay, a pause) ended with, if it needs saying; shown until the next action or tab. */
  notice: null,
  appNames: [],
  /** The call open in the panel, if any. */
  open: null,
};

const $ = (id) => document.getElementById(id);

function showTab(name) {
  state.tab = TABS.includes(name) ? name : "overview";
  state.notice = null; // an action's outcome belongs to the tab it was taken in
  for (const tab of TABS) {
    $(tab).hidden = tab !== state.tab || !$("login").hidden;
    const button = document.querySelector(`[data-tab="${tab}"]`);
    button.classList.toggle("active", tab === state.tab);
    button.setAttribute("aria-selected", String(tab === state.tab));
  }
  if (state.tab !== "calls" && state.open) closeCall();
  if (location.hash !== `#${state.tab}`) history.replaceState(null, "", `#${state.tab}`);
  refresh();
}

function setStatus(text, cls) {
  const el = $("updated");
  el.textContent = text;
  el.className = cls || "";
}

function banner(message) {
  const el = $("banner");
  el.hidden = !message;
  el.textContent = message || "";
}

function askForToken(message) {
  const hadToken = Boolean(api.token());
  $("login").hidden = false;
  for (const tab of TABS) $(tab).hidden = true;
  fill("login-reason", hadToken ? `The token was refused: ${message}` : message);
  $("token").focus();
  setStatus("needs a token", "bad");
}

function signedIn() {
  if (!$("login").hidden) {
    $("login").hidden = true;
    $(state.tab).hidden = false;
  }
  $("forget").hidden = !api.token();
}

/** /metrics feeds the overview's history on every refresh, whatever tab. */
async function scrapeMetrics() {
  try {
    overview.record(await api.text("/metrics"), Date.now());
    return null;
  } catch (e) {
    if (e instanceof api.AuthError) throw e;
    return `/metrics: ${e.message}`;
  }
}

async function refresh() {
  if (state.busy) {
    state.again = true;
    return;
  }
  state.busy = true;
  try {
    const metricsProblem = await scrapeMetrics();
    if (PER_APP.includes(state.tab)) {
      state.appNames = await tables.apps();
      syncAppFilter();
    }
    switch (state.tab) {
      case "overview":
        overview.render();
        break;
      case "apps":
        await tables.renderApps(state.appNames);
        break;
      case "calls": {
        const shown = tables.callsView.app ? [tables.callsView.app] : state.appNames;
        const [, lists] = await Promise.all([tables.loadCalls(state.appNames), letters.load(shown)]);
        tables.renderCalls(openCall);
        letters.renderCount(lists);
        break;
      }
      case "dead-letters":
        letters.render(await letters.load(state.appNames), state.appNames.length, letterActions);
        break;
      case "schedules":
        await schedules.renderSchedules(state.appNames, toggleSchedule);
        break;
      case "services":
        await tables.renderServices();
        break;
      case "keys":
        await keys.renderKeys();
        break;
      default:
    }
    signedIn();
    banner([state.notice, metricsProblem].filter(Boolean).join(" · ") || null);
    setStatus(`updated ${new Date().toLocaleTimeString()}`, "ok");
  } catch (e) {
    if (e instanceof api.AuthError) {
      askForToken(e.message);
    } else {
      banner(e.message);
      setStatus("update failed", "bad");
    }
  } finally {
    state.busy = false;
  }
  if (state.again) {
    state.again = false;
    refresh();
  }
}

/** A change the user asked for, then a refresh to show it; a failure goes to the banner. */
async function act(change) {
  state.notice = null;
  try {
    state.notice = await change();
  } catch (e) {
    if (e instanceof api.AuthError) {
      askForToken(e.message);
      return;
    }
    state.notice = e.message;
  }
  refresh();
}

const letterActions = {
  replay(app, id) {
    if (!window.confirm(`Replay call ${id} of app ${app}? Its request is queued again as a new call.`)) return;
    act(async () => {
      await letters.replay(app, id);
      return null;
    });
  },
  replayAll(app, count) {
    if (!window.confirm(`Replay all ${count} dead letters of app ${app}? Each is queued again as a new call.`)) return;
    act(async () => {
      const { replayed, error } = await letters.replayAll(app);
      return error ? `Replayed ${replayed} of ${app}'s dead letters, then stopped: ${error}` : null;
    });
  },
};

function toggleSchedule(app, schedule) {
  act(async () => {
    await schedules.toggle(app, schedule);
    return null;
  });
}

function syncAppFilter() {
  const select = $("calls-app");
  const wanted = ["", ...state.appNames];
  const have = [...select.options].map((o) => o.value);
  if (wanted.join("\n") === have.join("\n")) return;
  const current = select.value;
  select.replaceChildren(...wanted.map((name) =>
    h("option", { value: name }, name || "all apps")));
  select.value = wanted.includes(current) ? current : "";
}

async function openCall(call) {
  state.open = call.id;
  $("detail").hidden = false;
  document.body.classList.add("with-detail");
  for (const row of document.querySelectorAll("#calls-table tr.selected")) row.classList.remove("selected");
  document.querySelector(`#calls-table tr[data-call-id="${CSS.escape(call.id)}"]`)?.classList.add("selected");
  try {
    await tables.renderCall(call, () => state.open === call.id);
  } catch (e) {
    if (e instanceof api.AuthError) askForToken(e.message);
    else banner(e.message);
  }
}

function closeCall() {
  state.open = null;
  $("detail").hidden = true;
  document.body.classList.remove("with-detail");
  for (const row of document.querySelectorAll("#calls-table tr.selected")) row.classList.remove("selected");
}

function wire() {
  for (const tab of TABS) {
    document.querySelector(`[data-tab="${tab}"]`).addEventListener("click", () => showTab(tab));
  }
  $("pause").addEventListener("click", () => {
    state.paused = !state.paused;
    $("pause").textContent = state.paused ? "Resume" : "Pause";
    $("pause").classList.toggle("active", state.paused);
    setStatus(state.paused ? "paused" : "resuming…", state.paused ? "muted" : "");
    if (!state.paused) refresh();
  });
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    api.setToken($("token").value);
    $("token").value = "";
    refresh();
  });
  $("forget").addEventListener("click", () => {
    api.forgetToken();
    $("forget").hidden = true;
    refresh();
  });
  $("calls-app").addEventListener("change", (e) => {
    Object.assign(tables.callsView, { app: e.target.value, older: false });
    refresh();
  });
  $("calls-status").addEventListener("change", (e) => {
    Object.assign(tables.callsView, { status: e.target.value, older: false });
    refresh();
  });
  $("calls-older").addEventListener("click", async () => {
    try {
      await tables.loadOlderCalls();
      tables.renderCalls(openCall);
    } catch (e) {
      banner(e.message);
    }
  });
  $("calls-newest").addEventListener("click", () => {
    tables.callsView.older = false;
    refresh();
  });
  $("detail-close").addEventListener("click", closeCall);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state.open) closeCall();
  });
  window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));
}

wire();
showTab(location.hash.slice(1));
// For boot.js: the modules ran.
document.documentElement.dataset.booted = "1";
setInterval(() => {
  if (!state.paused && $("login").hidden) refresh();
}, REFRESH_MS);
