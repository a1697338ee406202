// OpenIMS console: small progressive enhancements; every page works without them.
"use strict";
document.addEventListener("submit", function (event) {
  // Destructive buttons ask first.
  var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});
document.addEventListener("click", function (event) {
  // "Copy" buttons copy the text of the element they name.
  var id = event.target.getAttribute && event.target.getAttribute("data-copy");
  if (!id || !navigator.clipboard) return;
  navigator.clipboard.writeText(document.getElementById(id).textContent).then(function () {
    event.target.textContent = "Copied";
  });
});
document.addEventListener("DOMContentLoaded", function () {
  // The custom time inputs only matter with the Custom range; typing in them selects it.
  var custom = document.getElementById("range-custom");
  ["from", "to"].forEach(function (id) {
    var input = document.getElementById(id);
    if (input && custom) input.addEventListener("input", function () { custom.checked = true; });
  });
});
