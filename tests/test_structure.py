"""The shape of the house: core imports no UI and has no import circle; pages stay thin."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_PAGE_LINES = 150


def imported_core_modules(source: str) -> set[str]:
    """The core modules a source file imports, wherever the import sits (top level or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            # "from . import x" and "from .x import y" are core imports too, written relatively.
            module = ("core" + (f".{node.module}" if node.module else "")) if node.level else (node.module or "")
            if module == "core":  # "from core import archives" imports the module core.archives
                found |= {f"core.{alias.name}" for alias in node.names}
            elif module.startswith("core."):
                found.add(module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("core.")}
    return found


def core_imports() -> dict[str, set[str]]:
    """For each core module, the core modules it imports."""
    graph = {}
    for path in sorted((ROOT / "core").glob("*.py")):
        name = f"core.{path.stem}" if path.stem != "__init__" else "core"
        graph[name] = imported_core_modules(path.read_text()) - {name, "core"}
    return graph


def test_every_form_of_core_import_is_seen():
    source = """
import numpy
import core.runs
from core.metrics import TOP_K
from core import archives, files
from .summary import summarize
from . import presets

def later():
    from core.models import build_model
"""
    assert imported_core_modules(source) == {
        "core.runs",
        "core.metrics",
        "core.archives",
        "core.files",
        "core.summary",
        "core.presets",
        "core.models",
    }


def import_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in the graph (its modules, the first repeated at the end), or None if it is acyclic."""
    done: set[str] = set()

    def visit(module: str, trail: tuple[str, ...]) -> list[str] | None:
        if module in trail:
            return [*trail[trail.index(module) :], module]
        if module in done:
            return None
        for target in sorted(graph.get(module, ())):
            if circle := visit(target, (*trail, module)):
                return circle
        done.add(module)
        return None

    for module in sorted(graph):
        if circle := visit(module, ()):
            return circle
    return None


def test_the_circle_finder_finds_circles():
    assert import_circle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert import_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert import_circle({"x": {"a"}, "a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_core_has_no_import_circle():
    circle = import_circle(core_imports())
    assert circle is None, "import circle in core: " + " -> ".join(circle or [])


def test_core_imports_no_ui_and_ui_imports_no_page():
    for path in (ROOT / "core").glob("*.py"):
        modules = {n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)}
        modules |= {a.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Import) for a in n.names}
        assert not {m for m in modules if m and m.split(".")[0] in ("streamlit", "ui", "app_pages")}, path.name
    for path in (ROOT / "ui").glob("*.py"):
        assert "app_pages" not in path.read_text(), f"{path.name}: ui never imports a page"


def test_pages_are_thin():
    for page in sorted((ROOT / "app_pages").glob("*.py")):
        lines = len(page.read_text().splitlines())
        assert lines <= MAX_PAGE_LINES, f"{page.name} has {lines} lines: move logic to core and helpers to ui"


def test_every_server_setting_is_in_the_readme_server_table():
    """An environment variable the code reads is a setting an admin must be able to find."""
    import re

    code = "".join(p.read_text() for d in ("core", "ui", "app_pages") for p in (ROOT / d).glob("*.py"))
    used = set(re.findall(r"CNN_STUDIO_[A-Z_]+[A-Z]", code))
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("### Server") : readme.index("## Troubleshooting")]
    assert len(used) >= 10 and not sorted(v for v in used if v not in table)
