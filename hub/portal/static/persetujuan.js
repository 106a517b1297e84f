// Persetujuan: select all, and new records waiting, live (Server-Sent Events).
"use strict";
(function () {
  var form = document.getElementById("keputusan");
  if (!form) { return; }
  var body = document.getElementById("baris-antrean");
  var all = document.getElementById("pilih-semua");
  var notice = document.getElementById("pemberitahuan");
  var empty = document.getElementById("kosong");

  all.addEventListener("change", function () {
    body.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = all.checked; });
  });

  function shown() {
    var ids = {};
    body.querySelectorAll("tr[data-id]").forEach(function (row) { ids[row.dataset.id] = true; });
    return ids;
  }

  function announce(count) {
    notice.textContent = notice.dataset.text.replace("{n}", String(count));
    notice.hidden = false;
    notice.classList.remove("flash");
    void notice.offsetWidth;
    notice.classList.add("flash");
  }

  function add(ids) {
    var query = ids.map(function (id) { return "id=" + encodeURIComponent(id); }).join("&");
    fetch("/persetujuan/baris?" + query, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        if (!html.trim()) { return; }
        var template = document.createElement("template");
        template.innerHTML = html;
        var rows = template.content.querySelectorAll("tr[data-id]");
        var known = shown();
        var added = 0;
        rows.forEach(function (row) {
          if (!known[row.dataset.id]) { row.classList.add("new"); body.appendChild(row); added += 1; }
        });
        if (added) { empty.hidden = true; announce(added); }
      });
  }

  if (!window.EventSource) { return; }
  var source = new EventSource(form.dataset.stream);
  source.addEventListener("antrean", function (event) {
    var data = JSON.parse(event.data);
    var known = shown();
    var fresh = data.ids.filter(function (id) { return !known[String(id)]; });
    if (fresh.length) { add(fresh.slice(0, 100)); }
  });
})();
