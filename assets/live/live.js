// The Live page's Streamlit component: Streamlit's component protocol (postMessage to the app's page), then
// camera.js with the run's model. Streamlit sends the model once per render: its metadata and graph
// topology as JSON, its weights as bytes; the component key changes with the run, so this frame sees one model.
// Nothing goes back to the app: no frame, no prediction.
"use strict";

(function () {
  let started = false;

  function send(type, data) {
    window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
  }

  function fitHeight() {
    send("streamlit:setFrameHeight", { height: Math.ceil(document.documentElement.scrollHeight) + 4 });
  }

  function onRender(args) {
    if (started) return;
    started = true;
    const weights = args.weights; // a Uint8Array (Streamlit sends bytes arguments as such)
    const buffer = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength);
    window.cnnStudioCamera.start(
      args.meta,
      () => window.cnnStudioCamera.loadGraphModel(args.artifacts, buffer),
      {
        autostart: Boolean(args.autostart),
        dropText: "No camera? Drop a picture here, or click to choose one: it is classified in this browser, never uploaded.",
        loadHint: "Export the run again on the Export page.",
      },
    );
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || !event.data || event.data.type !== "streamlit:render") return;
    onRender(event.data.args);
  });
  new ResizeObserver(fitHeight).observe(document.body);
  send("streamlit:componentReady", { apiVersion: 1 });
  fitHeight();
})();
