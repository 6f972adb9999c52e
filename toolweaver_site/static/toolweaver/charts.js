/* The admin's charts: each <div class="tw-chart" data-spec="ID"> is drawn with plotly.js from the JSON of
 * <script id="ID" type="application/json"> (Django's json_script), which the page's view built from the same
 * query layer as the API. A spec:
 *   {kind: "line" | "bar", unit: "ms", series: [{name, points: [[iso time or label, value|null], ...],
 *    colors?: [css color per point]}], thresholds?: [{name, value}], bands?: [{start, end, label}], empty: "..."}
 * When drawn, the element gets data-rendered="chart" (or "empty") and data-points (points drawn), which the
 * browser tests read. */
(function () {
  "use strict";

  function pointCount(spec) {
    return spec.series.reduce(function (total, series) {
      return total + series.points.filter(function (point) { return point[1] !== null; }).length;
    }, 0);
  }

  function traces(spec) {
    return spec.series.map(function (series) {
      var trace = {
        name: series.name,
        x: series.points.map(function (point) { return point[0]; }),
        y: series.points.map(function (point) { return point[1]; }),
        type: spec.kind === "bar" ? "bar" : "scatter",
        hovertemplate: "%{y}" + (spec.unit ? " " + spec.unit : "") + "<extra>" + series.name + "</extra>"
      };
      if (spec.kind !== "bar") { trace.mode = "lines+markers"; trace.marker = {size: 4}; trace.connectgaps = false; }
      if (series.colors) { trace.marker = {color: series.colors}; }
      return trace;
    });
  }

  function layout(spec) {
    var shapes = (spec.thresholds || []).map(function (line) {
      return {type: "line", xref: "paper", x0: 0, x1: 1, y0: line.value, y1: line.value,
              line: {color: "#ba2121", width: 2, dash: "dash"}};
    }).concat((spec.bands || []).map(function (band) {
      return {type: "rect", xref: "x", yref: "paper", x0: band.start, x1: band.end, y0: 0, y1: 1,
              fillcolor: "rgba(186, 33, 33, 0.12)", line: {width: 0}};
    }));
    return {
      margin: {l: 56, r: 16, t: 8, b: 40}, height: spec.height || 260, shapes: shapes,
      showlegend: spec.series.length > 1, legend: {orientation: "h", y: -0.25},
      yaxis: {title: {text: spec.unit || ""}, rangemode: spec.kind === "bar" ? "tozero" : "normal"},
      xaxis: {type: spec.categories ? "category" : "date", automargin: true}, paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)"
    };
  }

  function draw(element) {
    var spec = JSON.parse(document.getElementById(element.dataset.spec).textContent);
    var points = pointCount(spec);
    element.dataset.points = String(points);
    if (points === 0) {
      element.textContent = spec.empty || "No data in this range: widen it.";
      element.classList.add("tw-chart-empty");
      element.dataset.rendered = "empty";
      return;
    }
    window.Plotly.newPlot(element, traces(spec), layout(spec), {displaylogo: false, responsive: true})
      .then(function () { element.dataset.rendered = "chart"; });
  }

  function drawAll() {
    document.querySelectorAll(".tw-chart[data-spec]").forEach(draw);
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", drawAll); } else { drawAll(); }
  window.ToolweaverCharts = {draw: draw, drawAll: drawAll};
})();
