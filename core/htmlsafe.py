"""HTML the project writes runs only its own script: data embedded safely, and a Content-Security-Policy.

Run names, class names, dataset names and paths come from users (any visitor can rename a run or upload a
class folder). Pages carry them only

* as JSON inside ``<script type="application/json">`` blocks (never as script), escaped by :func:`script_json`
  so that no text can close the block (``</script>``) or open a comment (``<!--``), and read back with
  ``JSON.parse(block.textContent)``;
* as text: ``html.escape`` on the server, ``textContent`` / ``createTextNode`` in the browser.

Every page also carries a ``<meta http-equiv="Content-Security-Policy">`` (:func:`csp_meta`) whose
``script-src`` lists only the page's own scripts: files next to it (``'self'``) or the sha256 hashes of its
exact inline scripts (:func:`script_hash`), so even a mistake in escaping would not run injected script.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math

# What must not appear raw inside a <script> element: '<' and '>' (</script>, <!--, -->), '&' (kept out for
# pages parsed as XHTML), and the line separators older JavaScript parsers end a string literal at.
_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _finite(value):
    """NaN and infinities become null: JSON.parse rejects the bare NaN that json.dumps writes."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def escape_script_text(json_text: str) -> str:
    """Escape JSON text for a <script> element: ``<`` ``>`` ``&`` U+2028 U+2029 as ``\\u003c`` and so on.

    These characters can only occur inside JSON strings, where the escapes mean the same characters, so
    ``JSON.parse`` (and ``json.loads``) read back exactly the original value."""
    return "".join(_SCRIPT_ESCAPES.get(ch, ch) for ch in json_text)


def script_json(value) -> str:
    """``value`` as JSON that is safe inside ``<script type="application/json">`` (and as a JS literal)."""
    return escape_script_text(json.dumps(_finite(value), allow_nan=False))


def json_block(block_id: str, value, class_name: str = "") -> str:
    """A ``<script type="application/json" id=...>`` data block: never run, read with JSON.parse.

    ``block_id`` and ``class_name`` are the caller's fixed identifiers, not data."""
    klass = f' class="{html.escape(class_name)}"' if class_name else ""
    return f'<script type="application/json" id="{html.escape(block_id)}"{klass}>{script_json(value)}</script>'


def script_hash(source: str) -> str:
    """The CSP source expression (``'sha256-…'``) that allows exactly the inline script ``source``.

    The browser hashes the script element's text as UTF-8 after the HTML parser turned CR LF and CR into
    LF: pass the text exactly as it is written between ``<script>`` and ``</script>`` (see
    :func:`inline_script`, which normalizes line ends first)."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def normalize_script(source: str) -> str:
    """Line ends as the HTML parser leaves them, so a hash of the returned text matches what the browser sees."""
    if "</script" in source.lower():
        raise ValueError("an inline script may not contain '</script': it would end the element early")
    return source.replace("\r\n", "\n").replace("\r", "\n")


def csp_meta(
    *, script_src: list[str], connect_src: list[str] | None = None, img_src: list[str], style_src: list[str]
) -> str:
    """``<meta http-equiv="Content-Security-Policy">``: nothing loads or runs unless listed here.

    ``default-src 'none'`` refuses every kind of resource not named (fonts, frames, objects, media, workers);
    ``base-uri`` and ``form-action`` stop an injected ``<base>`` or ``<form>`` from redirecting the page.
    The meta tag must come before any script in the document: put it right after ``<meta charset>``."""
    directives = [
        "default-src 'none'",
        "script-src " + " ".join(script_src),
        "style-src " + " ".join(style_src),
        "img-src " + " ".join(img_src),
        "base-uri 'none'",
        "form-action 'none'",
    ]
    if connect_src:
        directives.insert(3, "connect-src " + " ".join(connect_src))
    return f'<meta http-equiv="Content-Security-Policy" content="{"; ".join(directives)}">'
