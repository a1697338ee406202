// OpenIMS console: small progressive enhancements; every page works without them.
"use strict";
document.addEventListener("submit", function (event) {
  // Destructive buttons ask first.
  var form = event.target;
  var message = form.getAttribute && form.getAttribute("data-confirm");
  if (message && !window.confirm(message)) { event.preventDefault(); return; }
  // The history filter leaves empty fields (and the custom times of a quick range) out of its URL.
  if (form.id === "filters") {
    var custom = document.getElementById("range-custom");
    Array.prototype.forEach.call(form.elements, function (field) {
      var idle = (field.id === "from" || field.id === "to") && custom && !custom.checked;
      if (field.name && (field.value === "" || idle)) field.disabled = true;
    });
  }
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
  // The event-history chart arrives after the table (it is computed separately, so it never delays it).
  document.querySelectorAll("[data-chart-src]").forEach(function (slot) {
    fetch(slot.getAttribute("data-chart-src"), {credentials: "same-origin"})
      .then(function (response) {
        // A redirect to sign-in or a refusal is a whole page or a notice: never paste it into the card.
        if (!response.ok || response.redirected) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) { slot.innerHTML = html; })
      .catch(function () {
        slot.textContent = "The chart could not be loaded. Reload the page (your session may have ended).";
      });
  });
  // The custom time inputs only matter with the Custom range; typing in them selects it.
  var custom = document.getElementById("range-custom");
  ["from", "to"].forEach(function (id) {
    var input = document.getElementById(id);
    if (input && custom) input.addEventListener("input", function () { custom.checked = true; });
  });
});
window.addEventListener("pageshow", function () {
  // Coming back to a page from the history: fields disabled for a submission are usable again.
  document.querySelectorAll("#filters [disabled]").forEach(function (field) { field.disabled = false; });
});
