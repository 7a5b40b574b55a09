// Runs an exported TF.js graph model with the real TF.js runtime (@tensorflow/tfjs, CPU backend) in Node.
//
//   node tools/tfjs_predict.js MODEL_DIR INPUT.f32 N H W C OUTPUT.f32 [LATENCY_IMAGES]
//
// INPUT.f32 holds N*H*W*C little-endian float32 pixels (0..255, NHWC); OUTPUT.f32 receives the model's
// N*K outputs. Prints one JSON line: {"backend", "outputs", "classes", "latency_ms"}.
// With TFJS_LIBRARY=path/to/tf.min.js it uses that bundle (the one shipped in the web demo) instead.
const fs = require("fs");
const path = require("path");
const tf = require(process.env.TFJS_LIBRARY ? path.resolve(process.env.TFJS_LIBRARY) : "@tensorflow/tfjs");

const BATCH = 64;

function loadArtifacts(dir) {
  // The browser fetches model.json and its shards over HTTP; in Node without tfjs-node we read them from
  // disk and hand TF.js the same artifacts in memory.
  const json = JSON.parse(fs.readFileSync(path.join(dir, "model.json"), "utf8"));
  const weightSpecs = [];
  const buffers = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(buffers);
  return {
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    signature: json.signature,
    userDefinedMetadata: json.userDefinedMetadata,
    weightSpecs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
  };
}

async function main() {
  const [dir, inputPath, n, h, w, c, outputPath, latencyArg] = process.argv.slice(2);
  const [N, H, W, C] = [n, h, w, c].map(Number);
  await tf.setBackend("cpu");
  const model = await tf.loadGraphModel(tf.io.fromMemory(loadArtifacts(dir)));
  const raw = fs.readFileSync(inputPath);
  const pixels = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const outputs = [];
  let classes = 0;
  for (let start = 0; start < N; start += BATCH) {
    const count = Math.min(BATCH, N - start);
    const batch = tf.tensor4d(pixels.subarray(start * H * W * C, (start + count) * H * W * C), [count, H, W, C]);
    const result = model.predict(batch);
    const values = await result.data();
    classes = result.shape[1];
    outputs.push(Float32Array.from(values));
    tf.dispose([batch, result]);
  }
  const flat = new Float32Array(outputs.reduce((sum, o) => sum + o.length, 0));
  let offset = 0;
  for (const o of outputs) { flat.set(o, offset); offset += o.length; }
  fs.writeFileSync(outputPath, Buffer.from(flat.buffer));
  // Latency: one image at a time, as a web page classifies a dropped picture.
  const latencyImages = Math.min(Number(latencyArg || 20), N);
  let latency = null;
  if (latencyImages > 0) {
    const one = tf.tensor4d(pixels.subarray(0, H * W * C), [1, H, W, C]);
    tf.dispose(model.predict(one)); // warm-up
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < latencyImages; i++) {
      const x = tf.tensor4d(pixels.subarray(i * H * W * C, (i + 1) * H * W * C), [1, H, W, C]);
      const y = model.predict(x);
      await y.data();
      tf.dispose([x, y]);
    }
    latency = Number(process.hrtime.bigint() - t0) / 1e6 / latencyImages;
    one.dispose();
  }
  console.log(JSON.stringify({ backend: tf.getBackend(), version: tf.version_core, outputs: N, classes,
    latency_ms: latency }));
}

main().catch((err) => {
  console.error(`error: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
