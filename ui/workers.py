"""The server's warm TensorFlow workers as the pages call them: ``served("evaluation", run_dir, request=…)``.

The web process never imports TensorFlow (``core.worker`` says why); each name is a function of
``core.served`` that a warm worker runs. The pool starts with the first visitor, so TensorFlow is imported
in the workers while that visitor is still on the Dataset page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.worker import Progress, WarmPool, warm_pool

SERVED_MODULE = "core.served"


@st.cache_resource(show_spinner=False)
def pool() -> WarmPool:
    """The warm workers of this server, started (in the background) on the first call."""
    workers = warm_pool()
    workers.start()
    return workers


def served(name: str, *args: Any, request: str, on_progress: Callable[[str], None] | None = None, **kwargs) -> Any:
    """``core.served.<name>(*args, **kwargs)`` in a warm worker; a StudioError starting with ``request``."""
    return pool().call(f"{SERVED_MODULE}:{name}", *args, request=request, on_progress=on_progress, **kwargs)


__all__ = ["Progress", "pool", "served"]
