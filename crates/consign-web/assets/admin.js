// Consign staff pages: small enhancements over plain forms. A form's
// submit button is disabled while it is sent (no double posts), forms with
// data-confirm ask first, and a flash message takes the focus so screen
// readers announce it.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (form.method.toLowerCase() === "post") {
      window.setTimeout(function () {
        form.querySelectorAll('button[type="submit"]').forEach(function (button) { button.disabled = true; });
      }, 0);
    }
  });
  var flash = document.getElementById("flash");
  if (flash) {
    flash.tabIndex = -1;
    flash.focus();
  }
})();
