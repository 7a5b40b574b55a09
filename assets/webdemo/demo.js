// CNN Studio web demo: the run's model and metadata for camera.js, the camera-classification script the app's
// Live page runs too. The model comes from model.js (data, so the page works from file:// too); the run's
// metadata and the page's words (in the language it was exported in) are data: JSON blocks in index.html, read
// with JSON.parse. Names are shown as text. No word a person reads is written here.
"use strict";

(function () {
  const META = JSON.parse(document.getElementById("metadata").textContent);
  const WORDS = JSON.parse(document.getElementById("words").textContent);
  document.getElementById("source").textContent = window.cnnStudioCamera.fill(WORDS.source, {
    name: META.source_run.name,
    run_id: META.source_run.run_id,
  });

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
    { words: WORDS },
  );
})();
