// CNN Studio web demo: the run's model and metadata for camera.js, the camera-classification script the app's
// Live page runs too. The model comes from model.js (data, so the page works from file:// too); the run's
// metadata is data (a JSON block in index.html, read with JSON.parse), and its names are shown as text.
"use strict";

(function () {
  const META = JSON.parse(document.getElementById("metadata").textContent);
  document.getElementById("source").textContent =
    `Model of run “${META.source_run.name}” (${META.source_run.run_id})`;

  function base64Bytes(text) {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  const { weightDataBase64, ...artifacts } = window.cnnStudioModel;
  window.cnnStudioCamera.start(
    META,
    () => window.cnnStudioCamera.loadGraphModel(artifacts, base64Bytes(weightDataBase64)),
    { loadHint: "model.js must sit next to this page." },
  );
})();
