// Consign live updates, for the staff pages and the customer's order page.
// One WebSocket per page to the URL in <body data-live-url> (staff: the
// page session authenticates /admin/live; customers: the order token).
// Each event is handed to the elements that asked for it with a data-live
// attribute ("all", or an order id; data-live-types narrows it to event
// types starting with one of its words) as a `consign-live` DOM event, which
// htmx turns into a refresh of that part of the page
// (hx-trigger="consign-live", hx-sync="this:replace", hx-swap="outerHTML
// settle:0ms"). After a drop the socket comes back with
// ?after=<last event id>, so nothing is missed, and every listener
// refreshes once. <body data-live-state> says "connected" while it is up.
(function () {
  "use strict";
  var path = document.body.dataset.liveUrl;
  if (!path || !window.WebSocket || !document.querySelector("[data-live]")) return;
  var lastId = null;
  var failures = 0;

  function orderOf(event) {
    var payload = event.payload || {};
    if (payload.order_id) return String(payload.order_id);
    if (event.aggregate_type === "order") return String(event.aggregate_id);
    return null;
  }

  // A burst of events refreshes a part once, 200 ms after the first. The
  // refresh goes to the element in the page when the timer fires, found by
  // its id: htmx replaces a part it refreshes, and a refresh sent to the
  // replaced element would be dropped with it. Because hx-sync="this:replace"
  // aborts a refresh still on its way for a newer one, the part always ends
  // on an answer read after the last event.
  var timers = {};

  function refresh(id) {
    if (timers[id]) return;
    timers[id] = window.setTimeout(function () {
      delete timers[id];
      var element = document.getElementById(id);
      if (element) element.dispatchEvent(new CustomEvent("consign-live"));
    }, 200);
  }

  function notify(event) {
    var order = event ? orderOf(event) : null;
    document.querySelectorAll("[data-live][id]").forEach(function (element) {
      var wants = element.dataset.live;
      if (event && wants !== "all" && wants !== order) return;
      var types = element.dataset.liveTypes;
      if (event && types && !types.split(" ").some(function (prefix) { return event.type.indexOf(prefix) === 0; })) return;
      refresh(element.id);
    });
  }

  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
    if (lastId) url += (url.indexOf("?") >= 0 ? "&" : "?") + "after=" + encodeURIComponent(lastId);
    var socket = new WebSocket(url);
    socket.onopen = function () {
      document.body.dataset.liveState = "connected";
      // Whatever happened while the socket was down is on its way; the
      // refresh also covers a resume the server could not honour.
      if (failures > 0) notify(null);
      failures = 0;
    };
    socket.onmessage = function (message) {
      var event;
      try {
        event = JSON.parse(message.data);
      } catch (e) {
        return;
      }
      if (event && event.id) lastId = event.id;
      notify(event);
    };
    socket.onclose = function () {
      document.body.dataset.liveState = "reconnecting";
      failures += 1;
      // Back off up to half a minute, so a server restart is not flooded.
      window.setTimeout(connect, Math.min(30000, 500 * Math.pow(2, failures)));
    };
  }
  connect();
})();
