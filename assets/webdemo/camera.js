// CNN Studio's one camera-classification script: the exported web demo (webdemo/index.html) and the app's Live
// page (a Streamlit component, assets/live/) both run it. It classifies the camera stream frame after frame,
// or a picture dropped or chosen (the fallback when the camera is refused), with a TF.js graph model in this
// page: top-k bars that move with each frame, frames per second, pause (freeze a frame), full screen. No frame
// leaves the page: pictures become model input through preprocess.js, exactly as the app makes them.
// Every name from the metadata is shown with textContent, never as HTML, so a class name cannot add markup.
// The page gives an empty <div id="stage">; its own script (demo.js, live.js) loads the model and calls
// cnnStudioCamera.start(meta, loadModel, options), which builds the controls into it. Every word shown comes
// from options.words, in the page's language (made by the app: core/formats.py camera_words); none is here.
"use strict";

(function (root) {
  const $ = (id) => document.getElementById(id);
  const MAX_TOP_K = 5;
  const FPS_WINDOW_MS = 500; // frames/s is the count over about half a second

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A message with its {placeholders} filled in one pass (a value is never read for placeholders itself).
  function fill(message, values = {}) {
    return String(message || "").replace(/\{(\w+)\}/g, (whole, key) =>
      Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole,
    );
  }

  function cameraMessage(err, words) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return fill(words.noCameraApi, { origin: `${location.protocol}//${location.host}` });
    }
    const known = ["NotAllowedError", "NotFoundError", "NotReadableError", "OverconstrainedError"];
    if (known.includes(err.name)) return words[err.name];
    return fill(words.cameraFailed, { error: `${err.name}: ${err.message}` });
  }

  // The controls, the preview and the picture drop zone, built into the page's <div id="stage"> (both pages
  // get the same elements, by id, from here).
  function buildStage(words) {
    const stage = $("stage");
    const button = (id, text) => {
      const node = element("button", "", text);
      node.id = id;
      node.type = "button";
      node.disabled = id !== "fullscreen";
      return node;
    };
    const withId = (node, id) => {
      node.id = id;
      return node;
    };
    const camera = withId(element("div"), "camera");
    camera.append(
      button("camera-start", words.start),
      button("camera-pause", words.pause),
      button("camera-stop", words.stop),
      button("fullscreen", words.fullscreen),
      withId(element("span"), "fps"),
      withId(element("p"), "camera-status"),
    );
    const video = withId(element("video"), "video");
    video.muted = true;
    video.playsInline = true;
    video.hidden = true;
    const image = withId(element("img"), "image");
    image.alt = "";
    image.hidden = true;
    const preview = withId(element("div"), "preview");
    preview.append(video, image, withId(element("div"), "bars"));
    const input = withId(element("input"), "file");
    input.type = "file";
    input.accept = "image/*";
    input.hidden = true;
    const drop = withId(element("div", "", words.drop), "drop");
    drop.append(input);
    stage.append(camera, withId(element("p", "", words.loading), "status"), preview, drop);
  }

  // start(meta, loadModel, {autostart, words}): meta is the export's metadata.json (input shape, output kind,
  // class names); loadModel() resolves to a tf.GraphModel; words: every text shown, by key (the page's drop text
  // and loadHint included). Sets window.cnnStudio (predictPixels, ready, last) for tests and for other scripts.
  function start(meta, loadModel, options = {}) {
    const words = options.words || {};
    const [, HEIGHT, WIDTH, CHANNELS] = meta.input.shape;
    const LOGITS = meta.output.values.startsWith("logits");
    const TOP_K = Math.min(MAX_TOP_K, meta.class_names.length);
    let model = null;
    let stream = null;
    let paused = false;

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

    // One row per top class, kept from frame to frame (the bars' widths move, the rows are not rebuilt while
    // the same classes stay on top), so a CSS transition animates them.
    function showBars(values, source, pixels) {
      const order = values
        .map((v, i) => [v, i])
        .sort((a, b) => b[0] - a[0])
        .slice(0, TOP_K);
      const bars = $("bars");
      while (bars.children.length < order.length) {
        const row = element("div", "bar");
        const track = element("div", "track");
        track.append(element("div", "fill"));
        row.append(element("span", "name"), track, element("span", "value"));
        bars.append(row);
      }
      order.forEach(([v, i], k) => {
        const row = bars.children[k];
        const name = row.querySelector(".name");
        if (name.textContent !== meta.class_names[i]) {
          name.textContent = meta.class_names[i];
          name.title = meta.class_names[i];
        }
        row.querySelector(".fill").style.width = `${Math.max(0.5, v * 100)}%`; // CSSOM: style-src allows it
        row.querySelector(".value").textContent = `${(v * 100).toFixed(1)}%`;
      });
      const [best, bestIndex] = order[0];
      $("status").textContent = fill(words.prediction, {
        name: meta.class_names[bestIndex],
        percent: `${(best * 100).toFixed(1)}%`,
      });
      const frames = (root.cnnStudio.last && root.cnnStudio.last.frames) || 0;
      root.cnnStudio.last = { source, probabilities: values, pixels: Array.from(pixels), frames: frames + 1 };
    }

    async function classifyFile(file) {
      if (!model || !file) return;
      stopCamera();
      const img = $("image");
      img.src = URL.createObjectURL(file);
      await img.decode();
      img.hidden = false;
      const pixels = root.cnnStudioPixels(img, WIDTH, HEIGHT, CHANNELS);
      showBars(await predictPixels(pixels), "file", pixels);
    }

    function setCameraState(running, message, refused) {
      $("camera-start").disabled = running || !model;
      $("camera-stop").disabled = !running;
      $("camera-pause").disabled = !running;
      $("camera-pause").textContent = paused ? words.resume : words.pause;
      $("video").hidden = !running;
      document.body.classList.toggle("refused", Boolean(refused));
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
        setCameraState(false, cameraMessage(err, words), true);
        return;
      }
      const video = $("video");
      video.srcObject = stream;
      await video.play();
      $("image").hidden = true;
      paused = false;
      setCameraState(true, words.cameraOn, false);
      cameraLoop(stream);
    }

    function stopCamera() {
      if (!stream) return;
      for (const track of stream.getTracks()) track.stop();
      stream = null;
      paused = false;
      $("video").srcObject = null;
      $("fps").textContent = "";
      setCameraState(false, words.cameraOff, false);
    }

    // Pause freezes the frame on screen with its bars; Resume classifies the stream again.
    function togglePause() {
      if (!stream) return;
      paused = !paused;
      const video = $("video");
      if (paused) {
        video.pause();
        $("fps").textContent = "";
        setCameraState(true, words.paused, false);
      } else {
        video.play();
        setCameraState(true, words.cameraOn, false);
        cameraLoop(stream);
      }
    }

    function toggleFullScreen() {
      const stage = $("stage") || document.documentElement;
      if (document.fullscreenElement) document.exitFullscreen();
      else if (stage.requestFullscreen) stage.requestFullscreen();
    }

    function nextFrame() {
      return new Promise((resolve) => requestAnimationFrame(resolve));
    }

    async function cameraLoop(running) {
      const video = $("video");
      let counted = 0;
      let since = performance.now();
      while (stream === running && !paused) {
        if (video.readyState >= 2 && video.videoWidth > 0) {
          const pixels = root.cnnStudioPixels(video, WIDTH, HEIGHT, CHANNELS);
          const values = await predictPixels(pixels);
          if (stream !== running || paused) break;
          showBars(values, "camera", pixels);
          counted += 1;
          const now = performance.now();
          if (now - since >= FPS_WINDOW_MS) {
            $("fps").textContent = fill(words.fps, { fps: ((counted * 1000) / (now - since)).toFixed(1) });
            counted = 0;
            since = now;
          }
        }
        await nextFrame();
      }
    }

    buildStage(words);
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
    $("camera-pause").addEventListener("click", togglePause);
    $("fullscreen").addEventListener("click", toggleFullScreen);

    root.cnnStudio = { predictPixels, meta, ready: false, last: null, stopCamera };
    return loadModel()
      .then((loaded) => {
        model = loaded;
        root.cnnStudio.ready = true;
        setCameraState(false, "", false);
        $("status").textContent = fill(CHANNELS === 1 ? words.readyGray : words.readyRgb, {
          classes: meta.class_names.length,
          width: WIDTH,
          height: HEIGHT,
        });
        if (options.autostart) return startCamera();
        return undefined;
      })
      .catch((err) => {
        $("status").textContent = fill(words.loadFailed, { error: err.message, hint: words.loadHint || "" }).trim();
      });
  }

  // TF.js graph-model artifacts (model.json's fields, weightSpecs) and their weights as one ArrayBuffer.
  function loadGraphModel(artifacts, weightData) {
    return tf.loadGraphModel(tf.io.fromMemory({ ...artifacts, weightData }));
  }

  root.cnnStudioCamera = { start, loadGraphModel, fill };
})(window);
