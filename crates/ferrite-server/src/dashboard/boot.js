// Loads the page again when its modules did not run. One failed fetch of
// any module (a network blip: a laptop changing networks, or Docker adding
// a container's interface on the browser's own host, which makes Chromium
// fail the requests in flight) leaves the page as bare HTML, and the
// browser keeps the failure for that page. app.js marks the page once it
// has run; a plain script, so that it runs even when the modules fail.
"use strict";

const BOOT_TRIES_KEY = "ferrite.boot-tries";
const BOOT_TRIES = 3;

window.addEventListener("load", () => {
  if (document.documentElement.dataset.booted) {
    sessionStorage.removeItem(BOOT_TRIES_KEY);
    return;
  }
  const tries = Number(sessionStorage.getItem(BOOT_TRIES_KEY) || 0);
  if (tries < BOOT_TRIES) {
    sessionStorage.setItem(BOOT_TRIES_KEY, String(tries + 1));
    location.reload();
    return;
  }
  sessionStorage.removeItem(BOOT_TRIES_KEY);
  const banner = document.getElementById("banner");
  banner.textContent = "The dashboard's scripts did not load. Reload the page to try again.";
  banner.hidden = false;
});
