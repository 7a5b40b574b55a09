"""Names and commands for serving a run over TensorFlow Serving's REST API, with no TensorFlow import: the
Export page shows them, the SavedModel export lays its ZIP out by them and ``python -m core serve`` answers
under them (core/server.py), so a client written against one works unchanged against the other."""

from __future__ import annotations

import re

from core.runs import RunInfo

SERVING_VERSION = "1"  # the SavedModel's version folder: <model name>/1/saved_model.pb
SIGNATURE = "serving_default"
INPUT_NAME = "pixels"
# TensorFlow Serving's own REST port is 8501, which is also Streamlit's: the local server takes the next one.
DEFAULT_PORT = 8502
DEFAULT_HOST = "127.0.0.1"
DOCKER_PORT = 8501
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def serving_name(run: RunInfo) -> str:
    """The model's name in Serving URLs (/v1/models/<name>): the run's name, lower case, URL-safe characters only."""
    return _UNSAFE.sub("-", run.name.lower()).strip("-.") or "model"


def output_name(logits: bool) -> str:
    """The serving signature's output: what it holds."""
    return "logits" if logits else "probabilities"


def serve_command(run: RunInfo, port: int = DEFAULT_PORT) -> str:
    """The command line that serves ``run`` on this machine."""
    return f"python -m core serve --run {run.run_id} --port {port}"


def docker_command(name: str) -> str:
    """TensorFlow Serving in Docker on the unzipped saved_model.zip (its top folder is ``name``)."""
    return (
        f"unzip saved_model.zip   # gives {name}/{SERVING_VERSION}/saved_model.pb\n"
        f'docker run --rm -p {DOCKER_PORT}:8501 -v "$PWD/{name}:/models/{name}" -e MODEL_NAME={name} '
        "tensorflow/serving"
    )


def local_requests(name: str, port: int = DEFAULT_PORT) -> str:
    """curl requests to ``python -m core serve``: status, and a predict with a picture file as base64."""
    url = f"http://localhost:{port}/v1/models/{name}"
    return (
        f"curl {url}            # status; {url}/metadata: signature and class names\n"
        f'curl {url}:predict -d "{{\\"instances\\": [{{\\"b64\\": \\"$(base64 -w0 photo.png)\\"}}]}}"'
    )
