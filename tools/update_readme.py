"""Write the generated settings table (from core.config's field declarations) into README.md.

.venv/bin/python tools/update_readme.py
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import settings_table  # noqa: E402

BLOCK = re.compile(r"(<!-- settings:start -->\n)(?:.*?\n)?(<!-- settings:end -->)", re.S)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if not BLOCK.search(text):
        sys.exit("README.md has no <!-- settings:start --> … <!-- settings:end --> block")
    readme.write_text(BLOCK.sub(lambda m: m.group(1) + settings_table() + "\n" + m.group(2), text))


if __name__ == "__main__":
    main()
