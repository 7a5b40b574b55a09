"""CNN Studio core: datasets, models, training, evaluation and export, with no UI code."""

import os

# tensorflow-decision-forests (pulled in by tensorflowjs) imports IPython to print a welcome message
# whenever stdout is not a terminal (a server, CI, a pipe), and IPython is not installed: skip it.
os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from core.errors import StudioError  # noqa: E402

__all__ = ["StudioError"]
