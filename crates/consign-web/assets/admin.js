// Consign staff pages: small enhancements over plain forms. A form's
// submit button is disabled while it is sent (no double posts), forms with
// data-confirm ask first, the order list ticks every row at once, a canned
// response can be inserted into a reply, and a flash message takes the
// focus so screen readers announce it. Live updates are live.js.
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
