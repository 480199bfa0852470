// The /sidekiq pages' behaviour: "check all" on the job-set pages, and the dashboard's realtime
// graph, which polls the JSON figures and plots processed/failed per poll (as Sidekiq's does).
// Only numbers from that JSON are written into the page, and only as text or SVG coordinates.
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    var all = event.target;
    if (!all || all.id !== "check-all") return;
    var form = all.closest("form");
    if (!form) return;
    form.querySelectorAll('input[type="checkbox"][name="sel"]').forEach(function (box) {
      box.checked = all.checked;
    });
  });

  var panel = document.getElementById("realtime");
  var chart = document.getElementById("realtime-chart");
  if (!panel || !chart) return;
  var select = document.getElementById("poll-seconds");
  var status = document.getElementById("realtime-status");
  var keep = parseInt(chart.dataset.points, 10) || 60;
  var left = +chart.dataset.left, top = +chart.dataset.top;
  var width = +chart.dataset.width, height = +chart.dataset.height;
  var series = { processed: [], failed: [] };
  var previous = null;
  var timer = null;

  try {
    var saved = localStorage.getItem("supervisor-sidekiq-poll");
    if (saved && select.querySelector('option[value="' + parseInt(saved, 10) + '"]')) select.value = String(parseInt(saved, 10));
  } catch (e) { /* default interval */ }
  select.addEventListener("change", function () {
    try { localStorage.setItem("supervisor-sidekiq-poll", select.value); } catch (e) { /* not kept */ }
    window.clearTimeout(timer);
    poll();
  });

  function niceCeiling(value) {
    var step = 1;
    for (;;) {
      for (var i = 0, m = [1, 2, 5]; i < m.length; i++) if (step * m[i] >= value) return step * m[i];
      step *= 10;
    }
  }

  function draw() {
    var highest = Math.max.apply(null, [0].concat(series.processed, series.failed));
    var ceiling = niceCeiling(highest);
    Object.keys(series).forEach(function (name) {
      var values = series[name];
      var points = values.map(function (v, i) {
        var x = left + (keep > 1 ? width * (keep - values.length + i) / (keep - 1) : 0);
        var y = top + height * (1 - v / ceiling);
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      var line = chart.querySelector('[data-series="' + name + '"]');
      if (line) line.setAttribute("points", points.join(" "));
    });
    var labels = chart.querySelectorAll("[data-axis]");
    [0, 0.5, 1].forEach(function (fraction, i) {
      if (labels[i]) labels[i].textContent = compact(ceiling * fraction);
    });
  }

  // As the server-drawn charts label their axes (charts.compact_number): 750, 2.5k, 10k, 1.2M.
  function compact(value) {
    var units = [[1e9, "B"], [1e6, "M"], [1e3, "k"]];
    for (var i = 0; i < units.length; i++) {
      if (value >= units[i][0]) return String(Math.round(value / units[i][0] * 10) / 10) + units[i][1];
    }
    return String(Math.round(value * 100) / 100);
  }

  function show(figures) {
    Object.keys(figures).forEach(function (key) {
      var value = figures[key];
      if (typeof value !== "number") return;
      document.querySelectorAll('[data-stat="' + key + '"], [data-tab="' + key + '"]').forEach(function (el) {
        if (key === "default_latency") return;
        el.textContent = value.toLocaleString("en-US");
      });
    });
  }

  function record(figures) {
    if (previous) {
      ["processed", "failed"].forEach(function (name) {
        var delta = Math.max(0, figures[name] - previous[name]);
        series[name].push(delta);
        if (series[name].length > keep) series[name].shift();
        var shown = panel.querySelector('[data-rate="' + name + '"]');
        if (shown) shown.textContent = delta.toLocaleString("en-US");
      });
      draw();
    }
    previous = figures;
    show(figures);
    status.textContent = "Updated " + new Date().toLocaleTimeString();
  }

  function poll() {
    if (document.hidden) return schedule();
    fetch(panel.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (document) { record(document.sidekiq); })
      .catch(function () { status.textContent = "Sidekiq's Redis did not answer; trying again."; })
      .then(schedule);
  }

  function schedule() { timer = window.setTimeout(poll, (parseInt(select.value, 10) || 5) * 1000); }
  poll();
})();
