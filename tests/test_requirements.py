"""The pinned set installs and imports together, tensorflowjs included."""

import importlib
import importlib.metadata
from pathlib import Path

import pytest

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"
IMPORT_NAMES = {
    "pillow": "PIL",
    "scikit-learn": "sklearn",
    "ai-edge-litert": "ai_edge_litert.interpreter",
    "pytest-timeout": "pytest_timeout",
}


def _pins(section: str) -> list[tuple[str, str]]:
    lines = REQUIREMENTS.read_text().splitlines()
    direct = lines.index("# --- direct dependencies ---")
    transitive = lines.index("# --- transitive pins ---")
    chosen = lines[direct + 1 : transitive] if section == "direct" else lines[transitive + 1 :]
    return [tuple(line.split("==")) for line in chosen if "==" in line]


@pytest.mark.parametrize("name, version", _pins("direct"))
def test_direct_dependency_is_installed_at_its_pin_and_imports(name, version):
    assert importlib.metadata.version(name) == version
    if name != "ruff":  # a binary, not a module
        importlib.import_module(IMPORT_NAMES.get(name, name.replace("-", "_")))


def test_every_transitive_pin_is_installed():
    wrong = {n: importlib.metadata.version(n) for n, v in _pins("transitive") if importlib.metadata.version(n) != v}
    assert not wrong


def test_tensorflowjs_converter_and_litert_interpreter_import():
    from ai_edge_litert.interpreter import Interpreter
    from tensorflowjs.converters import convert_tf_saved_model

    assert callable(convert_tf_saved_model) and Interpreter
