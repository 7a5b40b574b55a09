"""Write the generated settings table (from core.config's field declarations) into README.md, and its
Chinese twin (labels and help from the zh-CN catalog) into README.zh-CN.md.

.venv/bin/python tools/update_readme.py
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import settings_table  # noqa: E402

BLOCK = re.compile(r"(<!-- settings:start -->\n)(?:.*?\n)?(<!-- settings:end -->)", re.S)


READMES = {"README.md": "en", "README.zh-CN.md": "zh-CN"}


def main() -> None:
    for name, lang in READMES.items():
        readme = ROOT / name
        if not readme.exists():
            continue
        text = readme.read_text()
        if not BLOCK.search(text):
            sys.exit(f"{name} has no <!-- settings:start --> … <!-- settings:end --> block")
        table = settings_table(lang)
        readme.write_text(BLOCK.sub(lambda m, table=table: m.group(1) + table + "\n" + m.group(2), text))


if __name__ == "__main__":
    main()
