// The report page's tag search: narrows the tag checkboxes to those whose name or code holds
// what was typed. Without JavaScript the search box stays hidden and every tag is listed.
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector(".tag-search");
    var input = document.getElementById("tag-search");
    if (!box || !input) return;
    box.hidden = false;
    var none = document.getElementById("tag-search-none");
    var groups = Array.prototype.slice.call(document.querySelectorAll(".tag-group"));

    function filter() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var any = false;
      groups.forEach(function (group) {
        var visible = 0;
        group.querySelectorAll(".tag-option").forEach(function (option) {
          var text = option.getAttribute("data-search") || "";
          var match = words.every(function (word) { return text.indexOf(word) !== -1; });
          option.hidden = !match;
          if (match) visible += 1;
        });
        group.hidden = visible === 0;
        if (visible) any = true;
      });
      none.hidden = any;
    }

    input.addEventListener("input", filter);
    // Enter in the search box would submit the tags form: keep it for searching.
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") event.preventDefault();
    });
  });
})();
