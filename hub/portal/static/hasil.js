// Hasil unggahan of a batch still being processed: look again until it is finished.
"use strict";
(function () {
  var badge = document.getElementById("status-batch");
  if (!badge) { return; }
  function poll() {
    fetch("/hasil/" + badge.dataset.batch + "/status", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(function (batch) {
        if (batch.status !== badge.dataset.status) { window.location.reload(); return; }
        window.setTimeout(poll, 700);
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 700);
})();
