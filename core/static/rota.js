// Rota pages: confirm before deleting, add an operator slot without a round trip.
// Loaded with `defer`; the pages work without it (the server handles "add operator" too).
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form instanceof HTMLFormElement ? form.getAttribute("data-confirm") : null;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

document.addEventListener("click", function (event) {
  var button = event.target instanceof Element ? event.target.closest("[data-add-operator]") : null;
  if (!button) {
    return;
  }
  var list = document.querySelector("[data-operator-slots]");
  var slots = list ? list.querySelectorAll(".operator-slot") : [];
  if (!slots.length) {
    return; // let the form ask the server for one more slot
  }
  event.preventDefault();
  var last = slots[slots.length - 1];
  var copy = last.cloneNode(true);
  var select = copy.querySelector("select");
  var index = 0;
  list.querySelectorAll("select").forEach(function (each) {
    var match = /-(\d+)$/.exec(each.name);
    if (match) {
      index = Math.max(index, Number(match[1]) + 1);
    }
  });
  select.name = select.name.replace(/-\d+$/, "-" + index);
  select.id = select.id.replace(/-\d+$/, "-" + index);
  select.value = "";
  select.setAttribute("aria-label", select.getAttribute("aria-label").replace(/\d+$/, String(slots.length + 1)));
  copy.querySelectorAll(".field-error").forEach(function (error) { error.remove(); });
  list.appendChild(copy);
  select.focus();
});
