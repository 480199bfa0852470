// Runs before the first paint (loaded synchronously in <head>): apply the saved theme choice.
(function () {
  try {
    var saved = localStorage.getItem("supervisor-theme");
    if (saved === "light" || saved === "dark") document.documentElement.dataset.theme = saved;
  } catch (e) { /* storage blocked: follow prefers-color-scheme */ }
})();
