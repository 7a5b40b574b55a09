// The feature map (a Streamlit component, Streamlit's protocol by postMessage): one Plotly trace per true class,
// misclassified images drawn as crosses; hovering a dot shows its thumbnail (pixels sent as bytes, drawn on a
// canvas), clicking a dot sends {index, at} back to the app, which shows that image and its prediction.
// Class names are shown as text (textContent, Plotly's escaped labels), never as HTML. Every word shown comes
// from the app in the page's language (args.words: its legend, axis titles, tooltip lines with {placeholders}
// filled here with a class name or a percentage); this file holds no words of its own.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const HEIGHT = 520; // pixels of the map
  let data = null;
  let method = "tsne";

  function send(type, payload) {
    window.parent.postMessage({ isStreamlitMessage: true, type, ...payload }, "*");
  }

  function fitHeight() {
    send("streamlit:setFrameHeight", { height: Math.ceil(document.documentElement.scrollHeight) + 4 });
  }

  // A message from the app with its {name} placeholders replaced (values as text, shown with textContent).
  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, (match, key) => (key in values ? String(values[key]) : match));
  }

  function escapeText(text) {
    return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }

  function traces() {
    const [xs, ys] = data[method];
    const shown = [];
    data.class_names.forEach((name, c) => {
      const points = [];
      data.labels.forEach((label, i) => {
        if (label === c) points.push(i);
      });
      if (!points.length) return;
      const wrong = points.map((i) => data.predicted[i] !== c);
      shown.push({
        type: "scatter",
        mode: "markers",
        name: escapeText(name),
        x: points.map((i) => xs[i]),
        y: points.map((i) => ys[i]),
        customdata: points,
        hoverinfo: "none",
        marker: {
          size: wrong.map((w) => (w ? 10 : 7)),
          symbol: wrong.map((w) => (w ? "x" : "circle")),
          line: { width: wrong.map((w) => (w ? 1 : 0)), color: "#000" },
          opacity: 0.85,
        },
      });
    });
    return shown;
  }

  function draw() {
    const axis = { showticklabels: false, zeroline: false, showgrid: false, title: { text: "" } };
    const layout = {
      height: HEIGHT,
      margin: { l: 10, r: 10, t: 10, b: 10 },
      xaxis: { ...axis },
      yaxis: { ...axis },
      legend: { title: { text: escapeText(data.words.legend) }, itemsizing: "constant" },
      hovermode: "closest",
      dragmode: "pan",
      plot_bgcolor: "#fafafa",
    };
    if (method === "pca") {
      layout.xaxis.title.text = escapeText(data.words.pca_x);
      layout.yaxis.title.text = escapeText(data.words.pca_y);
      layout.margin = { l: 40, r: 10, t: 10, b: 40 };
    }
    const config = { displaylogo: false, responsive: true, scrollZoom: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
    return Plotly.react($("map"), traces(), layout, config);
  }

  function showTip(i, event) {
    const [h, w, c] = data.thumb_shape;
    const canvas = $("thumb");
    canvas.width = w;
    canvas.height = h;
    const context = canvas.getContext("2d");
    const pixels = context.createImageData(w, h);
    const start = i * h * w * c;
    for (let p = 0; p < h * w; p++) {
      const v = (k) => data.thumbs[start + p * c + (c === 1 ? 0 : k)];
      pixels.data.set([v(0), v(1), v(2), 255], p * 4);
    }
    context.putImageData(pixels, 0, 0);
    const truth = data.class_names[data.labels[i]];
    const guess = data.class_names[data.predicted[i]];
    const text = $("tip-text");
    text.replaceChildren();
    const line = (content, className) => {
      const node = document.createElement("div");
      node.textContent = content;
      if (className) node.className = className;
      text.append(node);
    };
    const confidence = `${(data.confidence[i] * 100).toFixed(0)}%`;
    line(fill(data.words.tip_true, { true: truth }));
    line(fill(data.words.tip_predicted, { predicted: guess, confidence }), truth === guess ? "" : "wrong");
    const tip = $("tip");
    tip.hidden = false;
    const x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 4);
    const y = Math.min(event.clientY + 14, window.innerHeight - tip.offsetHeight - 4);
    tip.style.left = `${Math.max(0, x)}px`;
    tip.style.top = `${Math.max(0, y)}px`;
  }

  async function start(args) {
    data = { ...args };
    document.documentElement.lang = data.words.lang;
    document.title = data.words.title;
    const note = $("note");
    note.textContent = args.note;
    await draw();
    const map = $("map");
    map.on("plotly_hover", (e) => showTip(e.points[0].customdata, e.event));
    map.on("plotly_unhover", () => {
      $("tip").hidden = true;
    });
    map.on("plotly_click", (e) => {
      const i = e.points[0].customdata;
      send("streamlit:setComponentValue", { value: { index: data.indices[i], at: Date.now() }, dataType: "json" });
    });
    for (const input of document.querySelectorAll('input[name="method"]')) {
      input.addEventListener("change", () => {
        method = input.value;
        draw();
      });
    }
    window.cnnStudioMap = { ready: true, method: () => method };
    fitHeight();
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || !event.data || event.data.type !== "streamlit:render") return;
    if (data === null) start(event.data.args);
  });
  send("streamlit:componentReady", { apiVersion: 1 });
})();
