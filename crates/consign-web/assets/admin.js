// Consign staff pages: small enhancements over plain forms. A form's
// submit button is disabled while it is sent (no double posts), forms with
// data-confirm ask first, the order list ticks every row at once, a canned
// response can be inserted into a reply, and a flash message takes the
// focus so screen readers announce it. Live updates are live.js, local
// times times.js.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    // A download leaves the page as it is, so its form stays usable.
    var download = event.submitter && event.submitter.hasAttribute("data-download");
    if (form.method.toLowerCase() === "post" && !download) {
      window.setTimeout(function () {
        form.querySelectorAll('button[type="submit"]').forEach(function (button) { button.disabled = true; });
      }, 0);
    }
  });
  // The reply form's canned responses: "Insert" puts the chosen reply,
  // already filled in for this order, before what is typed, and clears the
  // choice so the server does not add it a second time. Without this script
  // the server puts it in.
  var canned = document.getElementById("canned");
  var insert = document.getElementById("insert-canned");
  if (canned && insert) {
    insert.hidden = false;
    insert.addEventListener("click", function () {
      var option = canned.options[canned.selectedIndex];
      if (!option || !option.value) return;
      var body = document.getElementById("reply-body");
      body.value = option.dataset.text + (body.value.trim() ? "\n\n" + body.value : "");
      canned.value = "";
      body.focus();
    });
  }
  // The order list's own saved views, kept in this browser: "Save this
  // view" names the current filters and adds a tab for them.
  var tabs = document.getElementById("order-tabs");
  var save = document.getElementById("save-view");
  if (tabs && save) {
    var viewsKey = "consign_order_views";
    var views = [];
    try { views = JSON.parse(localStorage.getItem(viewsKey) || "[]"); } catch (e) { views = []; }
    var here = tabs.dataset.query;
    views.forEach(function (view) {
      var link = document.createElement("a");
      link.href = "/admin/orders" + (view.query ? "?" + view.query : "");
      link.textContent = view.name;
      link.className = "saved-view";
      if (view.query === here) link.setAttribute("aria-current", "page");
      tabs.insertBefore(link, save);
    });
    var known = Array.prototype.some.call(tabs.querySelectorAll("a"), function (a) {
      return a.getAttribute("aria-current") === "page";
    });
    save.hidden = known || !here;
    save.addEventListener("click", function () {
      var name = (window.prompt("Name this view") || "").trim();
      if (!name) return;
      views.push({ name: name.slice(0, 40), query: here });
      localStorage.setItem(viewsKey, JSON.stringify(views));
      window.location.reload();
    });
  }
  // The order list's "tick every order on this page".
  var tickAll = document.getElementById("tick-all");
  if (tickAll) {
    tickAll.addEventListener("change", function () {
      document.querySelectorAll('#orders input[name="order_id"]').forEach(function (box) { box.checked = tickAll.checked; });
    });
  }
  var flash = document.getElementById("flash");
  if (flash) {
    flash.tabIndex = -1;
    flash.focus();
  }
})();
