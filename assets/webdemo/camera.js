// CNN Studio's one camera-classification script: the exported web demo (webdemo/index.html) and the app's Live
// page (a Streamlit component, assets/live/) both run it. It classifies the camera stream frame after frame,
// or a picture dropped or chosen (the fallback when the camera is refused), with a TF.js graph model in this
// page: top-k bars that move with each frame, frames per second, pause (freeze a frame), full screen. No frame
// leaves the page: pictures become model input through preprocess.js, exactly as the app makes them.
// Every name from the metadata is shown with textContent, never as HTML, so a class name cannot add markup.
// The page gives an empty <div id="stage">; its own script (demo.js, live.js) loads the model and calls
// cnnStudioCamera.start(meta, loadModel, options), which builds the controls into it.
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

  function cameraMessage(err) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return (
        `This browser offers the camera only to pages opened from file://, https:// or http://localhost, and this ` +
        `page is ${location.protocol}//${location.host}. Open it one of those ways, or drop a picture.`
      );
    }
    const reasons = {
      NotAllowedError:
        "Camera access was refused. Allow the camera for this page in the browser's site settings " +
        "(the camera icon in the address bar) and press Start camera again, or drop a picture.",
      NotFoundError: "No camera was found. Connect one and press Start camera again, or drop a picture.",
      NotReadableError:
        "The camera is in use by another program, or the system refused it. Close that program " +
        "and press Start camera again, or drop a picture.",
      OverconstrainedError: "No camera offers a picture this page can use. Drop a picture instead.",
    };
    return reasons[err.name] || `The camera did not start (${err.name}: ${err.message}). Drop a picture instead.`;
  }

  // The controls, the preview and the picture drop zone, built into the page's <div id="stage"> (both pages
  // get the same elements, by id, from here).
  function buildStage(dropText) {
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
      button("camera-start", "Start camera"),
      button("camera-pause", "Pause"),
      button("camera-stop", "Stop camera"),
      button("fullscreen", "Full screen"),
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
    const drop = withId(element("div", "", dropText), "drop");
    drop.append(input);
    stage.append(camera, withId(element("p", "", "Loading the model…"), "status"), preview, drop);
  }

  // start(meta, loadModel, {autostart, dropText, loadHint}): meta is the export's metadata.json (input shape, output kind, class
  // names); loadModel() resolves to a tf.GraphModel. Sets window.cnnStudio (predictPixels, ready, last) for
  // tests and for other scripts on the page.
  function start(meta, loadModel, options = {}) {
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
      $("status").textContent = `Prediction: ${meta.class_names[bestIndex]} (${(best * 100).toFixed(1)}%)`;
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
      $("camera-pause").textContent = paused ? "Resume" : "Pause";
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
        setCameraState(false, cameraMessage(err), true);
        return;
      }
      const video = $("video");
      video.srcObject = stream;
      await video.play();
      $("image").hidden = true;
      paused = false;
      setCameraState(true, "Camera on: classifying every frame…", false);
      cameraLoop(stream);
    }

    function stopCamera() {
      if (!stream) return;
      for (const track of stream.getTracks()) track.stop();
      stream = null;
      paused = false;
      $("video").srcObject = null;
      $("fps").textContent = "";
      setCameraState(false, "Camera off.", false);
    }

    // Pause freezes the frame on screen with its bars; Resume classifies the stream again.
    function togglePause() {
      if (!stream) return;
      paused = !paused;
      const video = $("video");
      if (paused) {
        video.pause();
        $("fps").textContent = "";
        setCameraState(true, "Paused: the frame and its prediction are frozen. Press Resume to go on.", false);
      } else {
        video.play();
        setCameraState(true, "Camera on: classifying every frame…", false);
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
            $("fps").textContent = `${((counted * 1000) / (now - since)).toFixed(1)} frames/s`;
            counted = 0;
            since = now;
          }
        }
        await nextFrame();
      }
    }

    buildStage(options.dropText || "Drop a picture here, or click to choose one");
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
        $("status").textContent =
          `Model ready: ${meta.class_names.length} classes, ${WIDTH}×${HEIGHT} ` +
          `${CHANNELS === 1 ? "grayscale" : "RGB"} input. Start the camera, or drop or choose a picture.`;
        if (options.autostart) return startCamera();
        return undefined;
      })
      .catch((err) => {
        $("status").textContent = `The model did not load (${err.message}). ${options.loadHint || ""}`;
      });
  }

  // TF.js graph-model artifacts (model.json's fields, weightSpecs) and their weights as one ArrayBuffer.
  function loadGraphModel(artifacts, weightData) {
    return tf.loadGraphModel(tf.io.fromMemory({ ...artifacts, weightData }));
  }

  root.cnnStudioCamera = { start, loadGraphModel };
})(window);
