// The Account Mgmt link bar: each plugin link opens in a popup window of the size the plugin
// asked for. Without JavaScript the links open in a new tab.
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".linkbar a[data-popup-width]").forEach(function (a) {
      a.addEventListener("click", function (event) {
        event.preventDefault();
        window.open(a.href, "panel_popup",
          "width=" + a.dataset.popupWidth + ",height=" + a.dataset.popupHeight +
          ",resizable,scrollbars");
      });
    });
  });
})();
