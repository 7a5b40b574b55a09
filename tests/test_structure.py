"""The shape of the house: core imports no UI and has no import circle; pages stay thin."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_PAGE_LINES = 150


def core_imports() -> dict[str, set[str]]:
    """For each core module, the core modules it imports (at the top or inside functions)."""
    graph = {}
    for path in sorted((ROOT / "core").glob("*.py")):
        name = f"core.{path.stem}" if path.stem != "__init__" else "core"
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name.startswith("core.")}
        graph[name] = found - {name, "core"}
    return graph


def test_core_has_no_import_circle():
    graph = core_imports()
    done: set[str] = set()

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, "import circle: " + " -> ".join((*trail, module))
        if module in done:
            return
        for target in graph.get(module, ()):
            visit(target, (*trail, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_core_imports_no_streamlit_and_pages_import_no_core_internals_backwards():
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
