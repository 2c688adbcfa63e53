// The dashboard's panels, fetched again every data-refresh-seconds without reloading the page.
// Without JavaScript the page still shows them as of its loading. No animation is used, so
// prefers-reduced-motion has nothing to turn off; the region is polite for screen readers.
(function () {
  "use strict";
  var box = document.getElementById("dashboard");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-refresh-url");
  var seconds = parseInt(box.getAttribute("data-refresh-seconds"), 10) || 30;
  var busy = false;

  function refresh() {
    if (busy) { return; }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.redirected || !response.ok) { throw new Error("dashboard " + response.status); }
        return response.text();
      })
      .then(function (html) {
        box.innerHTML = html;
        box.setAttribute("data-refreshed", String(Date.now()));
        box.dispatchEvent(new CustomEvent("ali:refreshed"));
      })
      .catch(function () { /* signed out or offline: keep what is shown, try again later */ })
      .then(function () { busy = false; });
  }

  window.setInterval(refresh, seconds * 1000);
  // Tests and other scripts may ask for a refresh now.
  document.addEventListener("ali:refresh", refresh);
})();
