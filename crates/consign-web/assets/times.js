// Consign pages (staff and shop): times come in UTC as <time datetime>;
// show them in the viewer's own zone, keeping the UTC text as the title.
// Parts that htmx or the live feed refresh are done again once they settle.
(function () {
  "use strict";
  function localTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (element) {
      var at = new Date(element.getAttribute("datetime"));
      if (isNaN(at.getTime())) return;
      element.title = element.textContent;
      element.textContent = at.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
      element.dataset.local = "true";
    });
  }
  localTimes(document);
  document.body.addEventListener("htmx:afterSettle", function (event) { localTimes(event.target); });
})();
