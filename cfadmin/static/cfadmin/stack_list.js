// The stacks list's results are a live region (templates/admin/stacks/stack/change_list.html).
// Django's actions.js binds to the rows it found when the page loaded, so:
// - a refresh that brings the same rows is not swapped in (the rows, their boxes and the
//   person's place stay as they are; only "updated N s ago" is reset);
// - after a refresh that changed them, actions.js is pointed at the new rows' checkboxes.
// A static file: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  var REGION = "cf-stack-results";

  function table(root) {
    var found = root && root.querySelector("#result_list");
    return found ? found.outerHTML : "";
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var region = event.detail.elt;
    if (!region || region.id !== REGION || !event.detail.shouldSwap) { return; }
    var parsed = new DOMParser().parseFromString(event.detail.serverResponse, "text/html");
    var fresh = parsed.getElementById(REGION);
    if (fresh && table(fresh) === table(region)) {
      event.detail.shouldSwap = false;
      region.querySelectorAll(".cf-live-age").forEach(function (label) {
        label.dataset.at = String(Date.now());
      });
    }
  });

  document.addEventListener("htmx:afterSettle", function () {
    var region = document.getElementById(REGION);
    if (!region || region.dataset.cfActions || !window.Actions) { return; }
    region.dataset.cfActions = "1";
    var boxes = region.querySelectorAll("tr input.action-select");
    if (boxes.length > 0) { window.Actions(boxes); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var region = document.getElementById(REGION);
    if (region) { region.dataset.cfActions = "1"; }  // actions.js found these rows itself
  });
})();
