// Unggah laporan: drag and drop, upload progress (XHR), then the batch's progress (polling).
"use strict";
(function () {
  var form = document.getElementById("unggah");
  if (!form) { return; }
  var zone = document.getElementById("zona");
  var input = document.getElementById("berkas");
  var zoneText = document.getElementById("zona-teks");
  var box = document.getElementById("kemajuan");
  var sent = document.getElementById("bar-unggah");
  var work = document.getElementById("bar-proses");
  var status = document.getElementById("status-unggah");
  var button = document.getElementById("kirim");
  var defaultText = zoneText.textContent;

  function say(text, kind) {
    status.hidden = false;
    status.textContent = text;
    status.className = "notice " + (kind || "info");
  }

  function showName() {
    var file = input.files && input.files[0];
    zoneText.textContent = file ? file.name + " (" + Math.ceil(file.size / 1024) + " KB)" : defaultText;
    zone.dataset.state = file ? "chosen" : "empty";
  }

  input.addEventListener("change", showName);
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.dataset.state = "over";
    });
  });
  zone.addEventListener("dragleave", function () { showName(); });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
    }
    showName();
  });

  function poll(batchId) {
    fetch("/hasil/" + batchId + "/status", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(function (batch) {
        if (batch.status === "done" || batch.status === "failed") {
          say(form.dataset.textDone, "ok");
          var previous = form.dataset.previous;
          window.location.assign("/hasil/" + batchId + (previous ? "?sebelumnya=" + previous : ""));
          return;
        }
        say(form.dataset.textProcessing + " (" + batch.status + ")", "info");
        window.setTimeout(function () { poll(batchId); }, 500);
      })
      .catch(function () { window.setTimeout(function () { poll(batchId); }, 1500); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!input.files || !input.files.length) { input.focus(); return; }
    var data = new FormData(form);
    var request = new XMLHttpRequest();
    request.open("POST", "/unggah");
    request.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    request.responseType = "json";
    box.hidden = false;
    button.disabled = true;
    sent.value = 0;
    work.removeAttribute("value");
    say(form.dataset.textSending, "info");
    request.upload.addEventListener("progress", function (progress) {
      if (progress.lengthComputable) {
        sent.value = Math.round((100 * progress.loaded) / progress.total);
      }
    });
    request.addEventListener("load", function () {
      var body = request.response || {};
      if (request.status === 202) {
        sent.value = 100;
        say(form.dataset.textProcessing, "info");
        poll(body.batch_id);
      } else {
        button.disabled = false;
        var message = body.error ? body.error.message : String(request.status);
        say(form.dataset.textFailed + ": " + message, "error");
      }
    });
    request.addEventListener("error", function () {
      button.disabled = false;
      say(form.dataset.textFailed, "error");
    });
    request.send(data);
  });
})();
