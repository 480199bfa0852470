// The dashboard's only behaviour: the theme toggle and live refresh by polling.
// Refreshed content is parsed with DOMParser and moved in as nodes: nothing is eval'd, and the
// server has already escaped every value in it.
(function () {
  "use strict";
  var root = document.documentElement;

  function currentTheme() {
    if (root.dataset.theme) return root.dataset.theme;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  var toggle = document.getElementById("theme-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      root.dataset.theme = next;
      try { localStorage.setItem("supervisor-theme", next); } catch (e) { /* not kept */ }
    });
  }

  var seconds = parseInt(document.body.dataset.refresh || "0", 10);
  var live = document.getElementById("live");
  if (!seconds || !live) return;
  // Pages that refresh by default remember "supervisor-live"; the /sidekiq lists, like Sidekiq's
  // Live Poll, start still and remember "supervisor-live-poll"; ?poll=true turns it on.
  var remember = live.dataset.remember || "supervisor-live";
  function keep(on) { try { localStorage.setItem(remember, on ? "on" : "off"); } catch (e) { /* */ } }
  try {
    var stored = localStorage.getItem(remember);
    if (stored) live.checked = stored === "on";
  } catch (e) { /* the rendered default */ }
  if (new URLSearchParams(window.location.search).get("poll") === "true") { live.checked = true; keep(true); }
  live.addEventListener("change", function () { keep(live.checked); });

  function busy() {
    var active = document.activeElement;
    return active && active.closest && active.closest("main form");
  }

  function refresh() {
    if (!live.checked || document.hidden || busy()) return schedule();
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live-Refresh": "1" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        var main = document.getElementById("main");
        if (fresh && main && !busy()) main.replaceChildren.apply(main, Array.from(fresh.childNodes));
      })
      .catch(function () { /* offline for a moment: try again next time */ })
      .then(schedule);
  }

  function schedule() { window.setTimeout(refresh, seconds * 1000); }
  schedule();
})();
