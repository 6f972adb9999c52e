// The rule page's "Preview changes": posts the change form as it stands (unsaved) to the admin's preview view and
// draws the answer in place of the saved rule's preview, with its summary ("... instead of M ...").
(function () {
  "use strict";

  function showErrors(list, errors) {
    list.textContent = "";
    Object.keys(errors).forEach(function (field) {
      errors[field].forEach(function (error) {
        var item = document.createElement("li");
        item.textContent = (field === "__all__" ? "" : field + ": ") + error.message;
        list.appendChild(item);
      });
    });
  }

  function redraw(chart, spec) {
    chart.dataset.spec = chart.id + "-spec";  // the add page's chart has no spec until its first preview
    document.getElementById(chart.dataset.spec).textContent = JSON.stringify(spec);
    if (window.Plotly) { window.Plotly.purge(chart); }
    chart.textContent = "";
    chart.classList.remove("tw-chart-empty");
    delete chart.dataset.rendered;
    window.ToolweaverCharts.draw(chart);
  }

  function preview(button) {
    var form = document.getElementById(button.dataset.form);
    var summary = document.getElementById("preview-summary");
    var errors = document.getElementById("preview-errors");
    var data = new FormData(form);
    data.set("preview_days", button.dataset.days);
    summary.textContent = "Previewing…";
    errors.textContent = "";
    fetch(button.dataset.url, {method: "POST", body: data, credentials: "same-origin"})
      .then(function (response) {
        return response.json().then(function (body) { return {ok: response.ok, body: body}; });
      })
      .then(function (answer) {
        if (!answer.ok) {
          summary.textContent = "Not previewed: fix these first.";
          showErrors(errors, answer.body.errors || {});
          return;
        }
        summary.textContent = answer.body.summary;
        redraw(document.getElementById("preview-chart"), answer.body.chart);
      })
      .catch(function () { summary.textContent = "The preview failed: try again."; });
  }

  function start() {
    var button = document.getElementById("preview-changes");
    if (button) { button.addEventListener("click", function () { preview(button); }); }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
