"""``python -m core serve`` (#17): TensorFlow Serving's REST API for a run, in a subprocess on a free port.
Status, metadata, predictions from pixel arrays and from base64 PNGs matching Keras (1e-5), concurrent requests
batched, and bad requests refused with a 400 and a message while the server keeps answering."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.evaluation import load_run_model, load_test_data, predict_image
from core.server import MAX_BODY_BYTES
from core.serving import serving_name
from tests.browser import free_port

ROOT = Path(__file__).resolve().parent.parent
ATOL = 1e-5
START_SECONDS = 180  # TensorFlow's import and the model's first call, on a loaded machine


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, **kwargs
    )


def call(url: str, body: bytes | None = None, method: str | None = None) -> tuple[int, dict]:
    """(HTTP status, JSON answer) of a request; a 4xx/5xx answer is returned, not raised."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, method=method), timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def png(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def server(trained_run, tmp_path_factory):
    """(base URL of the run's model, the run) with ``python -m core serve`` answering on a free port."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(log, "w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "core", "serve", "--run", str(trained_run.path), "--port", str(port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
    try:
        started = json.loads(process.stdout.readline() or "{}")  # printed once the model is loaded
        assert started.get("model") == serving_name(trained_run), log.read_text()[-3000:]
        url = f"http://127.0.0.1:{port}/v1/models/{started['model']}"
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                if call(url)[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield url, trained_run
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="module")
def keras_run(trained_run):
    """(test images, the Keras model, its raw outputs on them)."""
    images, _, _ = load_test_data(trained_run)
    images = images[:24]
    model = load_run_model(trained_run)
    return images, model, np.asarray(model.predict(images.astype(np.float32), verbose=0))


@pytest.mark.slow
def test_status_and_metadata_speak_tensorflow_serving(server):
    url, run = server
    assert call(url) == (200, {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {
        "error_code": "OK", "error_message": ""}}]})  # fmt: skip
    status, meta = call(f"{url}/metadata")
    assert status == 200 and meta["model_spec"]["name"] == serving_name(run)
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    dims = [int(d["size"]) for d in signature["inputs"]["pixels"]["tensor_shape"]["dim"]]
    assert dims == [-1, 28, 28, 1] and list(signature["outputs"]) == ["probabilities"]
    assert meta["class_names"] == [str(i) for i in range(10)]
    assert call(f"{url}/versions/1")[0] == 200


@pytest.mark.slow
def test_predict_pixel_arrays_matches_keras(server, keras_run):
    url, _ = server
    images, _, expected = keras_run
    status, answer = call(f"{url}:predict", json.dumps({"instances": images[:5].tolist()}).encode())
    assert status == 200, answer
    np.testing.assert_allclose(answer["predictions"], expected[:5], atol=ATOL)
    assert answer["class_names"] == [str(i) for i in range(10)]
    assert answer["classes"] == [str(i) for i in expected[:5].argmax(axis=1)]
    named = {"signature_name": "serving_default", "instances": [{"pixels": images[5].tolist()}]}
    status, answer = call(f"{url}/versions/1:predict", json.dumps(named).encode())
    assert status == 200
    np.testing.assert_allclose(answer["predictions"], expected[5:6], atol=ATOL)
    status, answer = call(f"{url}:predict", json.dumps({"inputs": images[6:8].tolist()}).encode())
    assert status == 200  # TensorFlow Serving's columnar form answers "outputs"
    np.testing.assert_allclose(answer["outputs"], expected[6:8], atol=ATOL)


@pytest.mark.slow
def test_predict_base64_pngs_are_resized_as_the_app_does(server, keras_run):
    url, _ = server
    _, model, _ = keras_run
    rng = np.random.default_rng(3)
    pictures = [  # an RGB one that needs shrinking, a gray one that needs enlarging, one already 28x28
        rng.integers(0, 256, (45, 61, 3), dtype=np.uint8),
        rng.integers(0, 256, (20, 17), dtype=np.uint8),
        rng.integers(0, 256, (28, 28), dtype=np.uint8),
    ]
    encoded = [png(p) for p in pictures]
    status, answer = call(f"{url}:predict", json.dumps({"instances": [{"b64": e} for e in encoded]}).encode())
    assert status == 200, answer
    for got, data in zip(answer["predictions"], encoded, strict=True):
        expected, _ = predict_image(model, base64.b64decode(data), (28, 28, 1), logits=False)  # the try-it's answer
        np.testing.assert_allclose(got, expected, atol=ATOL)


@pytest.mark.slow
def test_concurrent_requests_are_batched(server, keras_run):
    url, _ = server
    images, _, expected = keras_run
    before = call(f"{url}/metadata")[1]["batching"]
    bodies = [json.dumps({"instances": [images[i].tolist()]}).encode() for i in range(len(images))]
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda body: call(f"{url}:predict", body), bodies))
    for i, (status, answer) in enumerate(answers):
        assert status == 200
        np.testing.assert_allclose(answer["predictions"][0], expected[i], atol=ATOL)
    after = call(f"{url}/metadata")[1]["batching"]
    assert after["requests"] - before["requests"] == len(bodies)
    assert after["model_calls"] - before["model_calls"] < len(bodies), "one model call per batch, not per request"


def instances(*pictures) -> bytes:
    return json.dumps({"instances": list(pictures)}).encode()


GRAY = [[[0]] * 28] * 28  # one 28x28x1 picture, as nested lists
BAD_REQUESTS = {
    "not JSON": (b"{not json", "The request body is not JSON"),
    "no channel axis": (instances([[0] * 28] * 28), "instances[0] has shape [28, 28]; this model takes [28, 28, 1]"),
    "over 255": (instances([[[300]] * 28] * 28), "instances[0] has values from 300 to 300: send raw pixels 0..255"),
    "text": (instances([[["a"]] * 28] * 28), "instances[0] holds text values"),
    "ragged": (instances(GRAY, GRAY[:27] + [[[0]] * 5]), "instances[1] is not a [28, 28, 1] array"),
    "bad base64": (instances({"b64": "not base64!"}), "instances[0].b64 is not valid base64"),
    "not an image": (instances({"b64": base64.b64encode(b"GIF89a junk").decode()}), "instances[0].b64 cannot be"),
    "no instances": (json.dumps({"pictures": []}).encode(), 'exactly one of "instances"'),
    "empty": (instances(), '"instances" is not a list of pictures'),
    "signature": (json.dumps({"instances": [GRAY], "signature_name": "x"}).encode(), 'signature_name "x" is unknown'),
    "too large": (b" " * (MAX_BODY_BYTES + 1), "The request body is 16.0 MB; at most 16 MB"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_400_with_a_message_and_the_server_keeps_answering(server, keras_run, case):
    url, _ = server
    body, message = BAD_REQUESTS[case]
    images, _, expected = keras_run
    status, answer = call(f"{url}:predict", body)
    assert status == 400 and message in answer["error"], answer
    assert "Traceback" not in answer["error"]
    status, answer = call(f"{url}:predict", json.dumps({"instances": images[:1].tolist()}).encode())
    assert status == 200
    np.testing.assert_allclose(answer["predictions"], expected[:1], atol=ATOL)


@pytest.mark.slow
def test_unknown_models_and_paths_get_404_with_the_right_url(server):
    url, run = server
    base = url.rsplit("/", 1)[0]
    status, answer = call(f"{base}/other:predict", b"{}")
    assert status == 404 and f"this server serves '{serving_name(run)}'" in answer["error"]
    status, answer = call(f"{url}/versions/2")
    assert status == 404 and "version 1 only" in answer["error"]
    status, answer = call(url.split("/v1/")[0] + "/")
    assert status == 404 and f"/v1/models/{serving_name(run)}" in answer["error"]
    assert call(f"{url}:classify", b"{}")[0] == 400


def test_serve_refuses_a_missing_run_and_a_busy_port_with_exit_2(trained_run, tmp_path):
    done = cli("serve", "--run", str(tmp_path / "nothing"))
    assert done.returncode == 2 and "error: No run at" in done.stderr and "Traceback" not in done.stderr
    done = cli("serve", "--run", str(trained_run.path), "--port", "70000")
    assert done.returncode == 2 and "--port 70000 is not a port" in done.stderr
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = cli("serve", "--run", str(trained_run.path), "--port", str(port))
    assert done.returncode == 2 and f"Cannot listen on 127.0.0.1:{port}" in done.stderr
