// The global search box: see templates/admin/cfadmin/global_search_box.html.
// "/" focuses the box from anywhere on the page, unless the person is typing in a field;
// Escape in the box leaves it. Enter submits the form (plain HTML, no script needed).
(function () {
  "use strict";

  function isTyping(target) {
    if (!target || !(target instanceof Element)) {
      return false;
    }
    if (target.isContentEditable) {
      return true;
    }
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  document.addEventListener("keydown", function (event) {
    var box = document.getElementById("cf-global-search-q");
    if (!box) {
      return;
    }
    if (event.key === "Escape" && event.target === box) {
      box.blur();
      return;
    }
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (event.defaultPrevented || isTyping(event.target)) {
      return;
    }
    event.preventDefault(); // not a "/" typed into the box, nor the browser's quick find
    box.focus();
    box.select();
  });
})();
