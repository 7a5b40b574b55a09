// CNN Studio web demo: classifies the camera stream, or a picture you drop or choose, with TF.js in this page.
// The model comes from model.js (data, so the page works from file:// too); pictures and camera frames become
// model input through preprocess.js, exactly as the app makes them (Pillow's bilinear resize).
// The run's metadata is data (a JSON block in index.html, read with JSON.parse); every name from it is shown
// with textContent, never as HTML, so a class or run name cannot add markup or script to this page.
"use strict";

const META = JSON.parse(document.getElementById("metadata").textContent);
const [, HEIGHT, WIDTH, CHANNELS] = META.input.shape;
const LOGITS = META.output.values.startsWith("logits");
const TOP_K = Math.min(5, META.class_names.length);
let model = null;
let stream = null;

const $ = (id) => document.getElementById(id);
$("source").textContent = `Model of run “${META.source_run.name}” (${META.source_run.run_id})`;

async function predictPixels(pixels) {
  // pixels: HEIGHT*WIDTH*CHANNELS raw values 0..255 (NHWC), as preprocess.js makes them.
  const probs = tf.tidy(() => {
    const x = tf.tensor4d(Float32Array.from(pixels), [1, HEIGHT, WIDTH, CHANNELS]);
    const y = model.predict(x);
    return LOGITS ? tf.softmax(y) : y;
  });
  const values = Array.from(await probs.data());
  probs.dispose();
  return values;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showBars(values, source, pixels) {
  const order = values.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, TOP_K);
  const rows = order.map(([v, i]) => {
    const row = element("div", "bar");
    const name = element("span", "name", META.class_names[i]);
    name.title = META.class_names[i];
    const fill = element("div", "fill");
    fill.style.width = `${Math.max(2, v * 300)}px`; // CSSOM, which the page's style-src allows
    row.append(name, fill, element("span", "", `${(v * 100).toFixed(1)}%`));
    return row;
  });
  $("bars").replaceChildren(...rows);
  $("status").textContent = `Prediction: ${META.class_names[order[0][1]]} (${(order[0][0] * 100).toFixed(1)}%)`;
  const frames = (window.cnnStudio.last && window.cnnStudio.last.frames) || 0;
  window.cnnStudio.last = { source, probabilities: values, pixels: Array.from(pixels), frames: frames + 1 };
}

async function classifyFile(file) {
  if (!model || !file) return;
  stopCamera();
  const img = $("image");
  img.src = URL.createObjectURL(file);
  await img.decode();
  img.hidden = false;
  const pixels = cnnStudioPixels(img, WIDTH, HEIGHT, CHANNELS);
  showBars(await predictPixels(pixels), "file", pixels);
}

// --- Camera: classify frame after frame while it runs --------------------------------------------------

function cameraMessage(err) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return (
      `This browser offers the camera only to pages opened from file://, https:// or http://localhost, and this ` +
      `page is ${location.protocol}//${location.host}. Open it one of those ways, or drop a picture.`
    );
  }
  const reasons = {
    NotAllowedError: "Camera access was refused. Allow the camera for this page in the browser's site settings " +
      "(the camera icon in the address bar) and press Start camera again, or drop a picture.",
    NotFoundError: "No camera was found. Connect one and press Start camera again, or drop a picture.",
    NotReadableError: "The camera is in use by another program, or the system refused it. Close that program " +
      "and press Start camera again, or drop a picture.",
    OverconstrainedError: "No camera offers a picture this page can use. Drop a picture instead.",
  };
  return reasons[err.name] || `The camera did not start (${err.name}: ${err.message}). Drop a picture instead.`;
}

function setCameraState(running, message, refused) {
  $("camera-start").disabled = running || !model;
  $("camera-stop").disabled = !running;
  $("video").hidden = !running;
  const note = $("camera-status");
  note.textContent = message;
  note.className = refused ? "refused" : "";
}

async function startCamera() {
  try {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new Error("no camera API");
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (err) {
    stream = null;
    setCameraState(false, cameraMessage(err), true);
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  $("image").hidden = true;
  setCameraState(true, "Camera on: classifying every frame…", false);
  cameraLoop(stream);
}

function stopCamera() {
  if (!stream) return;
  for (const track of stream.getTracks()) track.stop();
  stream = null;
  $("video").srcObject = null;
  $("fps").textContent = "";
  setCameraState(false, "Camera off.", false);
}

function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(resolve));
}

async function cameraLoop(running) {
  const video = $("video");
  let counted = 0;
  let since = performance.now();
  while (stream === running) {
    if (video.readyState >= 2 && video.videoWidth > 0) {
      const pixels = cnnStudioPixels(video, WIDTH, HEIGHT, CHANNELS);
      const values = await predictPixels(pixels);
      if (stream !== running) break;
      showBars(values, "camera", pixels);
      counted += 1;
      const now = performance.now();
      if (now - since >= 500) {
        $("fps").textContent = `${((counted * 1000) / (now - since)).toFixed(1)} frames/s`;
        counted = 0;
        since = now;
      }
    }
    await nextFrame();
  }
}

// --- Pictures: drop or choose ---------------------------------------------------------------------------

const drop = $("drop");
const input = $("file");
drop.addEventListener("click", () => input.click());
input.addEventListener("change", () => classifyFile(input.files[0]));
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  classifyFile(e.dataTransfer.files[0]);
});
$("camera-start").addEventListener("click", startCamera);
$("camera-stop").addEventListener("click", stopCamera);

function base64Bytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

window.cnnStudio = { predictPixels, meta: META, ready: false, last: null };
const { weightDataBase64, ...artifacts } = window.cnnStudioModel;
tf.loadGraphModel(tf.io.fromMemory({ ...artifacts, weightData: base64Bytes(weightDataBase64) }))
  .then((loaded) => {
    model = loaded;
    window.cnnStudio.ready = true;
    setCameraState(false, "", false);
    $("status").textContent =
      `Model ready: ${META.class_names.length} classes, ${WIDTH}×${HEIGHT} ${CHANNELS === 1 ? "grayscale" : "RGB"} ` +
      "input. Start the camera, or drop or choose a picture.";
  })
  .catch((err) => {
    $("status").textContent = `The model did not load (${err.message}): model.js must sit next to this page.`;
  });
