/* Draws the charts of a commodity's page from the JSON in #chart-data (no inline script:
   the Content-Security-Policy allows only same-origin files). */
(function () {
  "use strict";
  var node = document.getElementById("chart-data");
  if (!node || typeof Chart === "undefined") {
    return;
  }
  Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
  Chart.defaults.animation = false;

  function shade(colour) {
    return colour + "33";
  }

  function lineSets(spec) {
    var sets = [];
    spec.series.forEach(function (s, i) {
      sets.push({ label: s.name, data: s.low, band: true, series: i, pointRadius: 0,
        borderWidth: 0, fill: false, spanGaps: false });
      sets.push({ label: s.name, data: s.high, band: true, series: i, pointRadius: 0,
        borderWidth: 0, backgroundColor: shade(s.colour), fill: "-1", spanGaps: false });
      sets.push({ label: s.name, data: s.values, series: i, borderColor: s.colour,
        backgroundColor: s.colour, pointRadius: 2, borderWidth: 2, fill: false, spanGaps: false });
    });
    return sets;
  }

  function barSets(spec) {
    var s = spec.series[0];
    return [
      { label: s.name, data: s.values, series: 0, backgroundColor: s.colour, grouped: false,
        order: 1 },
      { label: spec.interval, band: true, series: 0, grouped: false, barPercentage: 0.12, order: 0,
        backgroundColor: "rgba(17, 24, 39, 0.55)",
        data: s.low.map(function (low, i) { return low === null ? null : [low, s.high[i]]; }) }
    ];
  }

  function number(value, lang) {
    return Number(value).toLocaleString(lang, { maximumFractionDigits: 2 });
  }

  function tooltip(spec) {
    return {
      filter: function (item) { return !item.dataset.band; },
      callbacks: {
        label: function (item) {
          return item.dataset.label + ": " + number(item.raw, spec.lang) + " " + spec.unit;
        },
        afterLabel: function (item) {
          var s = spec.series[item.dataset.series], i = item.dataIndex;
          var lines = [];
          if (s.low[i] !== null) {
            lines.push(spec.interval + ": " + number(s.low[i], spec.lang) + " – " +
              number(s.high[i], spec.lang));
          }
          if (s.bands && s.bands[i]) {
            lines.push(spec.contributors + ": " + s.bands[i]);
          }
          return lines;
        }
      }
    };
  }

  function draw(spec) {
    var canvas = document.getElementById(spec.id);
    if (!canvas) {
      return;
    }
    new Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: spec.type === "bar" ? barSets(spec) : lineSets(spec) },
      options: {
        responsive: true, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { labels: { filter: function (item, data) {
            return !data.datasets[item.datasetIndex].band;
          } } },
          tooltip: tooltip(spec)
        },
        scales: {
          x: { title: { display: true, text: spec.xlabel } },
          y: { beginAtZero: spec.type === "bar", title: { display: true, text: spec.unit },
            ticks: { callback: function (value) { return number(value, spec.lang); } } }
        }
      }
    });
    canvas.setAttribute("data-drawn", "true");
  }

  JSON.parse(node.textContent).forEach(draw);
  document.body.setAttribute("data-charts", "drawn");
})();
