// The operator's per-app API keys, listed without any secret: the API
// shows a key's token only in the answer that makes it, and the dashboard
// does not make keys. Names are the user's: text only.

import * as api from "./api.js";
import { emptyRow, fill, h, table } from "./dom.js";

export async function renderKeys() {
  let keys;
  try {
    ({ keys } = await api.json("/v1/keys"));
  } catch (e) {
    // An app's key reads its app but never the list of keys.
    if (e instanceof api.ApiError && e.status === 403) {
      fill("keys-list", h("p", { class: "empty-state" },
        "Keys are listed for the operator only; this token is an app's key."));
      return;
    }
    throw e;
  }
  fill("keys-list", table(
    ["Key", "App", "Access", "Name", "Created", "Expires"],
    keys.length ? keys.map((k) => h(
      "tr",
      { "data-key-id": k.id },
      h("td", { class: "mono" }, k.id),
      h("td", null, k.app),
      h("td", null, k.access),
      h("td", null, k.name ?? ""),
      h("td", { class: "mono" }, k.created_at),
      h("td", { class: "mono" }, k.expires_at ?? "never"),
    )) : [emptyRow(6, "No keys. The operator issues them with `ferrite keys create APP`.")],
    { class: "grid", id: "keys-table" },
  ));
}
