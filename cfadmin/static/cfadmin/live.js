// Live regions (htmx polling, see templates/admin/cfadmin/live_region.html): what keeps them
// honest and cheap. A static file, as the Content-Security-Policy allows no inline script and
// htmx runs with allowEval off (so no `every 5s [filter]` expressions).
// - A hidden tab polls nothing; it refreshes once when it is shown again.
// - A region the person is working in (a checked box, a focused field, a field typed in and
//   left, an open <details> marked data-cf-keep-open) is not replaced under their hands.
// - A poll answered by a redirect (logged out, second factor needed) or an error reloads the
//   page once so it can say why, instead of swapping a login form into the region.
// - "updated N s ago" counts from the last successful swap.
(function () {
  "use strict";
  var LIVE = ".cf-live";

  function changed(field) {
    if (field.type === "hidden" || field.type === "submit" || field.type === "button") {
      return false;
    }
    if (field.tagName === "SELECT") {
      return Array.prototype.some.call(field.options, function (option) {
        return option.selected !== option.defaultSelected;
      });
    }
    if (field.type === "checkbox" || field.type === "radio") {
      return field.checked !== field.defaultChecked;
    }
    return field.value !== field.defaultValue;
  }

  // In use: a field has focus, or was typed in and left (its value differs from the page's),
  // a box is checked (a list's selection), or a <details data-cf-keep-open> is open.
  function busy(region) {
    if (region.querySelector("input[type=checkbox]:checked")) { return true; }
    if (region.querySelector("details[data-cf-keep-open][open]")) { return true; }
    var active = document.activeElement;
    if (active && region.contains(active) && active.matches("input, select, textarea")) {
      return true;
    }
    return Array.prototype.some.call(region.querySelectorAll("input, textarea, select"), changed);
  }

  function stamp(root) {
    var now = String(Date.now());
    root.querySelectorAll(".cf-live-age").forEach(function (label) { label.dataset.at = now; });
    if (root.matches && root.matches(".cf-live-age")) { root.dataset.at = now; }
  }

  function ages() {
    var now = Date.now();
    document.querySelectorAll(".cf-live-age").forEach(function (label) {
      var at = Number(label.dataset.at || now);
      var seconds = Math.max(0, Math.round((now - at) / 1000));
      var text = seconds < 2 ? "updated just now" : "updated " + seconds + " s ago";
      if (label.textContent !== text) { label.textContent = text; }
    });
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var region = event.detail.elt;
    if (!region.matches || !region.matches(LIVE)) { return; }
    if (document.hidden || busy(region)) { event.preventDefault(); }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var region = event.detail.elt;
    if (!region.matches || !region.matches(LIVE)) { return; }
    var xhr = event.detail.xhr;
    var asked = event.detail.requestConfig && event.detail.requestConfig.path;
    var redirected = asked && xhr.responseURL &&
      new URL(xhr.responseURL, location.href).pathname !== new URL(asked, location.href).pathname;
    if (redirected || xhr.status >= 400) {
      event.detail.shouldSwap = false;
      if (!region.dataset.cfReloaded) {
        region.dataset.cfReloaded = "1";
        location.reload();
      }
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    stamp(event.detail.elt);
    // outerHTML swaps replace the region: stamp what is in the document now.
    document.querySelectorAll(LIVE).forEach(function (region) {
      region.querySelectorAll(".cf-live-age:not([data-at])").forEach(function (label) {
        label.dataset.at = String(Date.now());
      });
    });
  });

  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) { return; }
    document.querySelectorAll(LIVE).forEach(function (region) {
      window.htmx.trigger(region, "cf:refresh");
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    stamp(document.documentElement);
    ages();
    setInterval(ages, 1000);
  });
})();
