// The stack page's live region (templates/admin/stacks/stack/stack_live.html) is refreshed by
// htmx (live.js); an operation's steps are folded once it ended. A fold the person opened or
// closed stays so across refreshes: remembered by the <details> id when its summary is
// clicked, and put back after each swap.
// (A static file, not inline: the Content-Security-Policy allows no inline script.)
(function () {
  "use strict";
  var REGION = "cf-stack-live";
  var chosen = {};

  document.addEventListener("click", function (event) {
    var summary = event.target.closest && event.target.closest("#" + REGION + " details[id] > summary");
    if (!summary) { return; }
    var details = summary.parentElement;
    // The click toggles after this handler: remember the state it is going to.
    chosen[details.id] = !details.open;
  });

  document.addEventListener("htmx:afterSettle", function () {
    var region = document.getElementById(REGION);
    if (!region) { return; }
    region.querySelectorAll("details[id]").forEach(function (details) {
      if (Object.prototype.hasOwnProperty.call(chosen, details.id)) {
        details.open = chosen[details.id];
      }
    });
  });
})();
