"""Keep the catalogs in step with the code (Babel's pybabel, driven with the project's settings).

.venv/bin/python tools/i18n.py update          # extract the marked messages, merge them into each .po
.venv/bin/python tools/i18n.py missing [FILE]  # the message ids still without a translation, as JSON
.venv/bin/python tools/i18n.py fill FILE.json  # set translations from a {message id: translation} file
.venv/bin/python tools/i18n.py compile         # the .mo files the app reads (the install step runs this)

A message whose id changed loses its translation (no fuzzy matching): the catalog test then names it.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from babel.messages.pofile import read_po, write_po  # noqa: E402

from core.i18n import CATALOG_NAMES, LOCALE_DIR, catalog_path  # noqa: E402

TEMPLATE = LOCALE_DIR / "messages.pot"
PYBABEL = [sys.executable, "-m", "babel.messages.frontend"]


def extract(target: Path = TEMPLATE) -> Path:
    """The template of every marked message in the code (not kept: made again each time)."""
    subprocess.run(
        [
            *PYBABEL,
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "N_",
            "--no-wrap",
            "--sort-by-file",
            "--project",
            "CNN Studio",
            "-o",
            str(target),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return target


def update() -> None:
    extract()
    for lang, name in CATALOG_NAMES.items():
        command = "update" if catalog_path(lang).exists() else "init"
        args = ["--ignore-obsolete", "--no-fuzzy-matching"] if command == "update" else []
        subprocess.run(
            [*PYBABEL, command, "-i", str(TEMPLATE), "-d", str(LOCALE_DIR), "-l", name, "--no-wrap", *args],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    TEMPLATE.unlink()


def _load(lang: str):
    with catalog_path(lang).open("rb") as handle:
        return read_po(handle, locale=CATALOG_NAMES[lang])


def _save(lang: str, catalog) -> None:
    with catalog_path(lang).open("wb") as handle:
        write_po(handle, catalog, width=0, sort_output=True, omit_header=False, no_location=True, ignore_obsolete=True)


def missing(lang: str = "zh-CN") -> dict[str, str]:
    catalog = _load(lang)
    return {
        (m.id[0] if isinstance(m.id, tuple) else m.id): ""
        for m in catalog
        if m.id and not (m.string[0] if isinstance(m.string, tuple) else m.string)
    }


def fill(files: list[str], lang: str = "zh-CN") -> None:
    catalog = _load(lang)
    given: dict[str, str] = {}
    for file in files:
        given.update(json.loads(Path(file).read_text()))
    filled = 0
    for message in catalog:
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        if message.id and given.get(key):
            message.string = (given[key],) if isinstance(message.id, tuple) else given[key]
            message.flags.discard("fuzzy")
            filled += 1
    _save(lang, catalog)
    print(f"{filled} translations set; {len(missing(lang))} still missing")


def compile_all() -> None:
    subprocess.run([*PYBABEL, "compile", "-d", str(LOCALE_DIR), "-D", "messages"], cwd=ROOT, check=True)


if __name__ == "__main__":
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "update":
        update()
    elif command == "missing":
        text = json.dumps(missing(), ensure_ascii=False, indent=1)
        Path(rest[0]).write_text(text) if rest else print(text)
    elif command == "fill" and rest:
        fill(rest)
    elif command == "compile":
        compile_all()
    else:
        sys.exit(__doc__)
