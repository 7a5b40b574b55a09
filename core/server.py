"""A local prediction server with TensorFlow Serving's REST API, for one run (``python -m core serve``).

It answers what a TensorFlow Serving client asks, under the names the SavedModel export uses (core/serving.py):

    GET  /v1/models/<name>             status (AVAILABLE)
    GET  /v1/models/<name>/metadata    the serving_default signature, and the class names
    POST /v1/models/<name>:predict     {"instances": [...]} -> {"predictions": [...]}

An instance is a picture as raw 0..255 pixels (H x W x C nested lists), or ``{"b64": "..."}``: an image file,
decoded and resized exactly as the app does (core.images.decode_image). Answers add the class names and each
picture's best class. Requests are checked before they reach the model: a bad one gets a 400 with
``{"error": "..."}`` naming the input, the value and the fix. Concurrent requests are batched: a queue gathers
them for a few milliseconds and the model runs once per batch, in one thread beside the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import math
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.errors import StudioError
from core.i18n import _
from core.images import BadImage, decode_image
from core.serving import INPUT_NAME, SERVING_VERSION, SIGNATURE

MB = 1024 * 1024
MAX_BODY_BYTES = 16 * MB  # a request body; about 25 RGB 224x224 pictures as JSON numbers
# A body a little over the cap is read (and dropped) to its end, so that the client gets the 400; one far
# over it is cut short.
MAX_DRAIN_BYTES = 4 * MAX_BODY_BYTES
MAX_INSTANCES = 256  # pictures in one request
MAX_BATCH = 128  # pictures in one model call, gathered from concurrent requests
BATCH_WINDOW_S = 0.002  # how long the first request of a batch waits for others
PIXEL_RANGE = (0.0, 255.0)


class BadRequest(Exception):
    """A request the server refuses with a 400; the message says what to send instead."""


@dataclass
class ServedRun:
    """What the server needs of a run: its model as a function of a float32 batch, and how to describe it."""

    name: str
    predict: Callable[[np.ndarray], np.ndarray]  # raw 0..255 NHWC float32 -> model outputs
    image_shape: tuple[int, int, int]
    class_names: list[str]
    output: str  # the signature's output name: probabilities or logits
    run_id: str = ""
    # What a naive server calls per request (Keras's model.predict), for the benchmark's comparison.
    predict_naive: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass
class Counters:
    requests: int = 0
    images: int = 0
    model_calls: int = 0


@dataclass
class Batcher:
    """Gathers concurrent requests' pictures into one model call per batch."""

    predict: Callable[[np.ndarray], np.ndarray]
    counters: Counters
    max_batch: int = MAX_BATCH
    window_s: float = BATCH_WINDOW_S
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    # One thread runs the model: the event loop keeps reading requests meanwhile, and they form the next batch.
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="model"))

    async def submit(self, images: np.ndarray) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((images, future))
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            count = len(items[0][0])
            deadline = loop.time() + self.window_s
            while count < self.max_batch:
                try:
                    item = self.queue.get_nowait() if not self.queue.empty() else None
                    if item is None:
                        item = await asyncio.wait_for(self.queue.get(), max(deadline - loop.time(), 0))
                except TimeoutError:
                    break
                items.append(item)
                count += len(item[0])
            await self._answer(loop, items)

    async def _answer(self, loop, items: list) -> None:
        batch = np.concatenate([images for images, _future in items])
        self.counters.model_calls += 1
        try:
            outputs = await loop.run_in_executor(self.executor, self.predict, batch)
        except Exception as err:  # the model failed: every waiting request hears why
            for _images, future in items:
                if not future.done():
                    future.set_exception(err)
            return
        start = 0
        for images, future in items:
            if not future.done():  # a client that went away
                future.set_result(outputs[start : start + len(images)])
            start += len(images)


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _pixels(value, where: str, shape: tuple[int, int, int]) -> np.ndarray:
    """One picture given as nested lists of raw pixels, checked: numbers, shape H x W x C, 0..255."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        array = None
    if array is None or array.dtype == object:
        raise BadRequest(
            f"{where} is not a {list(shape)} array of numbers (rows of different lengths or non-numbers): send "
            "raw pixels 0..255 as nested lists, H x W x C."
        )
    if array.dtype.kind not in "iuf":
        raise BadRequest(
            f"{where} holds {'true/false' if array.dtype.kind == 'b' else 'text'} values: send numbers, raw pixels "
            '0..255 (or an image file as {"b64": "..."}).'
        )
    if array.shape != shape:
        raise BadRequest(
            f"{where} has shape {list(array.shape)}; this model takes {list(shape)} (height, width, channels): "
            f"resize the picture to {shape[1]}x{shape[0]} with {shape[2]} channel{'s' if shape[2] > 1 else ''}, "
            'or send the image file as {"b64": "..."} to have it resized as the app does.'
        )
    array = array.astype(np.float32)
    low, high = float(array.min()), float(array.max())
    if not (math.isfinite(low) and math.isfinite(high)) or low < PIXEL_RANGE[0] or high > PIXEL_RANGE[1]:
        raise BadRequest(
            f"{where} has values from {low:g} to {high:g}: send raw pixels 0..255 (the model normalizes them)."
        )
    return array


def _picture(data, where: str, shape: tuple[int, int, int]) -> np.ndarray:
    """An image file given as base64, decoded and resized as the app does (core.images.decode_image)."""
    if not isinstance(data, str):
        raise BadRequest(f'{where}.b64 is not a text: give the image file\'s bytes in base64, {{"b64": "iVBOR..."}}.')
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(
            f"{where}.b64 is not valid base64: encode the image file's bytes (base64 -w0 photo.png)."
        ) from None
    try:
        pixels, _original = decode_image(raw, shape[0], shape[2], draft=False)
    except BadImage as err:
        raise BadRequest(f"{where}.b64 cannot be used: {err}. Send a PNG, JPEG, BMP or GIF image.") from None
    return pixels.astype(np.float32)


def _instance(value, where: str, shape: tuple[int, int, int]) -> np.ndarray:
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            return _picture(value["b64"], where, shape)
        if set(value) == {INPUT_NAME}:
            return _instance(value[INPUT_NAME], f"{where}.{INPUT_NAME}", shape)
        raise BadRequest(
            f'{where} has keys {sorted(value)}: give the pixels as an array, as {{"{INPUT_NAME}": [...]}} '
            'or an image file as {"b64": "..."}.'
        )
    return _pixels(value, where, shape)


def parse_predict(body: bytes, shape: tuple[int, int, int]) -> tuple[np.ndarray, str]:
    """A predict request's pictures as one float32 batch, and the answer's key (Serving's row or column form)."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadRequest(
            f'The request body is not JSON ({err}): send {{"instances": [picture, ...]}} with '
            "Content-Type: application/json."
        ) from None
    if not isinstance(request, dict) or ("instances" in request) == ("inputs" in request):
        raise BadRequest(
            'The request needs exactly one of "instances" (a list of pictures) or "inputs" (TensorFlow Serving\'s '
            'columnar form): send {"instances": [picture, ...]}.'
        )
    signature = request.get("signature_name", SIGNATURE)
    if signature != SIGNATURE:
        raise BadRequest(f'signature_name "{signature}" is unknown: this model has "{SIGNATURE}" only.')
    if "inputs" in request:
        inputs = request["inputs"]
        inputs = inputs[INPUT_NAME] if isinstance(inputs, dict) and set(inputs) == {INPUT_NAME} else inputs
        instances, key, where = inputs, "outputs", "inputs"
    else:
        instances, key, where = request["instances"], "predictions", "instances"
    if not isinstance(instances, list) or not instances:
        raise BadRequest(f'"{where}" is not a list of pictures: send {{"{where}": [picture, ...]}}, at least one.')
    if len(instances) > MAX_INSTANCES:
        raise BadRequest(
            f'"{where}" holds {len(instances)} pictures; at most {MAX_INSTANCES} a request: split it into several.'
        )
    return np.stack([_instance(v, f"{where}[{i}]", shape) for i, v in enumerate(instances)]), key


def build_app(served: ServedRun, batching: bool = True) -> Starlette:
    """The Starlette app. ``batching`` False: each request calls Keras's model.predict on its own pictures, in
    Starlette's thread pool (the naive server the benchmark compares with)."""
    counters = Counters()
    batcher = Batcher(served.predict, counters)
    h, w, c = served.image_shape
    version = {"version": SERVING_VERSION, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}

    def tensor(name: str, dims: list[int]) -> dict:
        shape = {"dim": [{"size": str(d), "name": ""} for d in dims], "unknown_rank": False}
        return {"dtype": "DT_FLOAT", "tensor_shape": shape, "name": f"{SIGNATURE}_{name}:0"}

    def metadata() -> dict:
        signature = {
            "inputs": {INPUT_NAME: tensor(INPUT_NAME, [-1, h, w, c])},
            "outputs": {served.output: tensor(served.output, [-1, len(served.class_names)])},
            "method_name": "tensorflow/serving/predict",
        }
        return {
            "model_spec": {"name": served.name, "signature_name": "", "version": SERVING_VERSION},
            "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}},
            "class_names": served.class_names,
            "input": f"{INPUT_NAME}: float32 [N, {h}, {w}, {c}] raw pixels 0..255, or image files as "
            '{"b64": "..."} (resized as the app does)',
            "output": served.output,
            "batching": {
                "enabled": batching,
                "window_ms": BATCH_WINDOW_S * 1000,
                "max_batch": MAX_BATCH,
                **counters.__dict__,
            },
        }

    async def predict(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        too_large = f"at most {MAX_BODY_BYTES // MB} MB: send fewer or smaller pictures a request."
        if declared.isdigit() and int(declared) > MAX_DRAIN_BYTES:
            return _error(f"The request body is {int(declared) / MB:.1f} MB; {too_large}")
        body, size = bytearray(), 0
        async for chunk in request.stream():
            size += len(chunk)
            if size <= MAX_BODY_BYTES:
                body += chunk
            elif size > MAX_DRAIN_BYTES:
                return _error(f"The request body is over {MAX_DRAIN_BYTES // MB} MB; {too_large}")
        if size > MAX_BODY_BYTES:  # read to its end: a client sends it all before it reads the answer
            return _error(f"The request body is {size / MB:.1f} MB; {too_large}")
        try:
            images, key = await run_in_threadpool(parse_predict, bytes(body), served.image_shape)
        except BadRequest as err:
            return _error(str(err))
        counters.requests += 1
        counters.images += len(images)
        if batching:
            outputs = await batcher.submit(images)
        else:
            counters.model_calls += 1
            outputs = await run_in_threadpool(served.predict_naive or served.predict, images)
        best = [served.class_names[i] for i in np.argmax(outputs, axis=1)]
        return JSONResponse({key: outputs.tolist(), "class_names": served.class_names, "classes": best})

    async def route(request: Request) -> JSONResponse:
        path = request.path_params["rest"]
        name, _colon, verb = path.partition(":")
        parts = name.split("/")
        model, rest = parts[0], parts[1:]
        if rest[:1] == ["versions"]:
            if rest[1:2] != [SERVING_VERSION]:
                asked = "/".join(rest[1:2])
                return _error(f"Model {model} has version {SERVING_VERSION} only; asked for {asked}.", 404)
            rest = rest[2:]
        if model != served.name:
            known = f"'{served.name}' (/v1/models/{served.name})"
            return _error(f"No model named '{model}': this server serves {known}.", 404)
        try:
            if verb == "predict" and not rest and request.method == "POST":
                return await predict(request)
            if not verb and not rest and request.method == "GET":
                return JSONResponse({"model_version_status": [version]})
            if not verb and rest == ["metadata"] and request.method == "GET":
                return JSONResponse(metadata())
        except Exception as err:  # never a traceback to the client: what failed, in one line
            return _error(f"The model failed on this request: {type(err).__name__}: {str(err)[:300]}", 500)
        return _error(
            f"{request.method} /v1/models/{path} is not served: use GET /v1/models/{served.name}, GET "
            f"/v1/models/{served.name}/metadata or POST /v1/models/{served.name}:predict.",
            404 if verb in ("", "predict") else 400,
        )

    async def unknown(request: Request) -> JSONResponse:
        path = request.url.path
        return _error(f"{path} is not served: use /v1/models/{served.name} (TensorFlow Serving's API).", 404)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(batcher.run()) if batching else None
        yield
        if task:
            task.cancel()
        batcher.executor.shutdown(wait=False)

    routes = [
        Route("/v1/models/{rest:path}", route, methods=["GET", "POST"]),
        Route("/{rest:path}", unknown, methods=["GET", "POST", "PUT", "DELETE"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def load_served_run(run) -> ServedRun:
    """The run's Keras model behind one compiled function of any batch size (traced once, not per batch)."""
    import tensorflow as tf

    from core.evaluation import load_run_model, load_test_data, run_config
    from core.serving import output_name, serving_name

    model = load_run_model(run)
    _images, _labels, names = load_test_data(run)
    shape = tuple(int(d) for d in model.input_shape[1:])
    call = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec((None, *shape), tf.float32)])
    logits = run_config(run).model.output == "logits"
    return ServedRun(
        serving_name(run),
        lambda x: call(x).numpy(),
        shape,
        list(names),
        output_name(logits),
        run.run_id,
        lambda x: model.predict(x, verbose=0),
    )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a StudioError naming the port and the fix (before TensorFlow loads)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as err:
        raise StudioError(
            _("Cannot listen on {host}:{port} ({error}): pick a free --port, or a --host of this machine.").format(
                host=host, port=port, error=err.strerror or err
            )
        ) from None
    sock.listen(2048)
    return sock


def serve(served: ServedRun, sock: socket.socket, batching: bool = True) -> None:
    """Answer on ``sock`` until interrupted (Ctrl+C or SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(build_app(served, batching), log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
