// The queue page's comforts: "select all on this page", the count of ticked rows, x to tick the
// selected row, and Escape to hide a priority's reasons. The bulk form works without any of it.
(function () {
  "use strict";

  function typing(event) {
    var el = event.target;
    if (!el) return false;
    if (el.tagName === "INPUT") return !/^(checkbox|radio|button|submit)$/.test(el.type);
    return el.isContentEditable || /^(TEXTAREA|SELECT)$/.test(el.tagName);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var all = document.getElementById("select-all");
    var count = document.getElementById("bulk-count");

    function picks() {
      return Array.prototype.slice.call(form.querySelectorAll("input.pick"));
    }
    function update() {
      var boxes = picks();
      var ticked = boxes.filter(function (box) { return box.checked; }).length;
      if (all) {
        all.checked = ticked > 0 && ticked === boxes.length;
        all.indeterminate = ticked > 0 && ticked < boxes.length;
      }
      if (count) count.textContent = ticked ? ": " + ticked + " selected" : "";
      boxes.forEach(function (box) {
        var row = box.closest("tr");
        if (row) row.classList.toggle("picked", box.checked);
      });
    }
    if (all) {
      all.addEventListener("change", function () {
        picks().forEach(function (box) { box.checked = all.checked; });
        update();
      });
    }
    form.addEventListener("change", function (event) {
      if (event.target.classList.contains("pick")) update();
    });
    update();

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "Escape") {
        // Hide the priority reasons shown by hover or focus (WCAG 1.4.13: dismissible).
        document.querySelectorAll(".why").forEach(function (why) { why.classList.add("quiet"); });
        return;
      }
      if (event.key !== "x" || typing(event)) return;
      var row = document.querySelector("#queue-table .queue-row.selected");
      var box = row && row.querySelector("input.pick");
      if (!box) return;
      box.checked = !box.checked;
      update();
      event.preventDefault();
    });
    document.querySelectorAll(".why").forEach(function (why) {
      function wake() { why.classList.remove("quiet"); }
      why.addEventListener("mouseleave", wake);
      why.addEventListener("blur", wake);
    });
  });
})();
