// The provider settings form: preset buttons fill their field. Without JavaScript they stay
// hidden and the field is free text (its datalist still offers the presets).
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-fill]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        document.getElementById(button.dataset.fill).value = button.value;
      });
    });
  });
})();
