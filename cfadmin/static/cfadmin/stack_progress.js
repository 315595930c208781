// The stack page follows its operation: while one is queued or running, the progress box is
// refreshed every 2 s; when it ends, the page reloads to show the stack's new state.
// (A static file, not inline: the Content-Security-Policy allows no inline script.)
(function () {
  "use strict";
  var box = document.getElementById("cf-operation-progress");
  if (!box) { return; }

  function inFlight() {
    var op = box.querySelector(".cf-operation");
    return op !== null && op.dataset.inFlight === "1";
  }

  function replaceContent(html) {
    // Parse the server's fragment into an inert document and move its nodes over: no innerHTML.
    var parsed = new DOMParser().parseFromString(html, "text/html");
    box.replaceChildren.apply(box, Array.prototype.slice.call(parsed.body.childNodes));
  }

  if (!inFlight()) { return; }
  var timer = setInterval(function () {
    fetch(box.dataset.url, {credentials: "same-origin"}).then(function (response) {
      if (!response.ok || response.redirected) {
        // Logged out (idle timeout) or second factor needed: let the page show why.
        clearInterval(timer);
        window.location.reload();
        return null;
      }
      return response.text();
    }).then(function (html) {
      if (html === null) { return; }
      replaceContent(html);
      if (!inFlight()) { clearInterval(timer); window.location.reload(); }
    }).catch(function () {});
  }, 2000);
})();
