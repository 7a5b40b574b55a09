// CNN Studio web demo: loads model/model.json with TF.js and classifies the image you drop or choose.
// The run's metadata is data (a JSON block in index.html, read with JSON.parse); every name from it is shown
// with textContent, never as HTML, so a class or run name cannot add markup or script to this page.
"use strict";

const META = JSON.parse(document.getElementById("metadata").textContent);
const [, HEIGHT, WIDTH, CHANNELS] = META.input.shape;
const LOGITS = META.output.values.startsWith("logits");
let model = null;

document.getElementById("source").textContent = `Model of run “${META.source_run.name}” (${META.source_run.run_id})`;

async function predictPixels(pixels) {
  // pixels: a flat array of HEIGHT*WIDTH*CHANNELS values in 0..255 (NHWC), exactly what the model was trained on.
  const probs = tf.tidy(() => {
    const x = tf.tensor4d(Float32Array.from(pixels), [1, HEIGHT, WIDTH, CHANNELS]);
    const y = model.predict(x);
    return LOGITS ? tf.softmax(y) : y;
  });
  const values = Array.from(await probs.data());
  probs.dispose();
  return values;
}

function pixelsFromImage(img) {
  const canvas = document.getElementById("canvas");
  canvas.width = WIDTH; canvas.height = HEIGHT;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.fillStyle = "white"; ctx.fillRect(0, 0, WIDTH, HEIGHT);  // transparent pixels become white, as in training
  ctx.drawImage(img, 0, 0, WIDTH, HEIGHT);
  const rgba = ctx.getImageData(0, 0, WIDTH, HEIGHT).data;
  const out = new Float32Array(WIDTH * HEIGHT * CHANNELS);
  for (let i = 0; i < WIDTH * HEIGHT; i++) {
    const [r, g, b] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]];
    if (CHANNELS === 1) out[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    else { out[3 * i] = r; out[3 * i + 1] = g; out[3 * i + 2] = b; }
  }
  return out;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showBars(values) {
  const order = values.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 5);
  const rows = order.map(([v, i]) => {
    const row = element("div", "bar");
    const name = element("span", "name", META.class_names[i]);
    name.title = META.class_names[i];
    const fill = element("div", "fill");
    fill.style.width = `${Math.max(2, v * 300)}px`;  // CSSOM, which the page's style-src allows
    row.append(name, fill, element("span", "", `${(v * 100).toFixed(1)}%`));
    return row;
  });
  document.getElementById("bars").replaceChildren(...rows);
  document.getElementById("status").textContent =
    `Prediction: ${META.class_names[order[0][1]]} (${(order[0][0] * 100).toFixed(1)}%)`;
}

async function classifyFile(file) {
  const img = document.getElementById("image");
  img.src = URL.createObjectURL(file);
  await img.decode();
  img.hidden = false;
  showBars(await predictPixels(pixelsFromImage(img)));
}

const drop = document.getElementById("drop");
const input = document.getElementById("file");
drop.addEventListener("click", () => input.click());
input.addEventListener("change", () => input.files[0] && classifyFile(input.files[0]));
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files[0]) classifyFile(e.dataTransfer.files[0]);
});

tf.loadGraphModel("model/model.json").then((loaded) => {
  model = loaded;
  window.cnnStudio = { predictPixels, meta: META, ready: true };
  document.getElementById("status").textContent =
    `Model ready: ${META.class_names.length} classes, ${WIDTH}×${HEIGHT} ${CHANNELS === 1 ? "grayscale" : "RGB"} input.`;
}).catch((err) => {
  document.getElementById("status").textContent =
    `The model did not load (${err.message}). Serve this folder over HTTP: python3 -m http.server 8000`;
});
