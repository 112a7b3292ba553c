// Keyboard shortcuts and small comforts for the web queue. Everything here only adds to pages
// that already work without JavaScript. Loaded from this file only: the CSP forbids inline code.
(function () {
  "use strict";
  // Parts that need JavaScript (the maps) are shown only when it runs.
  document.documentElement.classList.add("js");

  function typing(event) {
    var el = event.target;
    if (el && el.tagName === "INPUT") return !/^(checkbox|radio|button|submit)$/.test(el.type);
    return el && (el.isContentEditable || /^(TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#queue-table .queue-row"));
  }

  var selected = -1;
  function select(index) {
    var all = rows();
    if (!all.length) return;
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row) { row.classList.remove("selected"); });
    var row = all[index];
    row.classList.add("selected");
    var link = row.querySelector(".row-link");
    if (link) link.focus();
    selected = index;
  }

  var pendingG = false;
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    var key = event.key;
    if (pendingG) {
      pendingG = false;
      if (key === "q") { window.location.href = "/triage/reports"; event.preventDefault(); }
      return;
    }
    if (key === "j") { select(selected + 1); event.preventDefault(); }
    else if (key === "k") { select(selected - 1); event.preventDefault(); }
    else if (key === "/") {
      var search = document.querySelector("input[type=search]");
      if (search) {
        var details = search.closest("details");
        if (details) details.open = true;
        search.focus();
        event.preventDefault();
      }
    }
    else if (key === "?") { window.location.href = "/triage/help"; event.preventDefault(); }
    else if (key === "g") { pendingG = true; }
  });

  document.addEventListener("DOMContentLoaded", function () {
    // Move focus to an error summary so that screen readers announce it first.
    var summary = document.querySelector("[data-autofocus]");
    if (summary) summary.focus();
    // Keep the selection in step when a row's link gets focus by Tab.
    rows().forEach(function (row, index) {
      var link = row.querySelector(".row-link");
      if (link) link.addEventListener("focus", function () {
        rows().forEach(function (r) { r.classList.remove("selected"); });
        row.classList.add("selected");
        selected = index;
      });
    });
  });
})();
