// The Live page's Streamlit component: Streamlit's component protocol (postMessage to the app's page), then
// camera.js with the run's model. Streamlit sends the model once per render: its metadata and graph
// topology as JSON, its weights as bytes, and the words to show in the session's language (the page's <html
// lang> too); the component key changes with the run and the language, so this frame sees one model and one
// language.
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
    if (args.lang) document.documentElement.lang = args.lang;
    window.cnnStudioCamera.start(
      args.meta,
      () => window.cnnStudioCamera.loadGraphModel(args.artifacts, buffer),
      { autostart: Boolean(args.autostart), words: args.words || {} },
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
