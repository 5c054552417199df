"""The HTML pieces report.html and compare.html share: escaping, tables, inline images, the page.

Every value that comes from a file goes through ``esc`` (text and attributes alike): a layer name,
a setting or a metrics header may hold markup, and the page must show it as text. Images are
inline PNG data, so a page works offline and from any folder.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["esc", "fmt", "table", "figure", "page"]

_CSS = """body{font-family:system-ui,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;
padding:4px 8px;text-align:right;vertical-align:top}th{background:#f4f4f4}figure{margin:1.5em 0}
img{max-width:100%}td.text,th.text{text-align:left}
.finding{background:#fff4e5;border-left:4px solid #f0a020;padding:.5em 1em;margin:.5em 0}
.ok{background:#eef9ee;border-left:4px solid #3a3;padding:.5em 1em}.warn{color:#a00}
td.best{font-weight:bold;background:#e6f3e6}.swatch{display:inline-block;width:.9em;height:.9em;
margin-right:.4em;vertical-align:middle}pre{background:#f7f7f7;padding:1em;overflow:auto}
.note{color:#555;font-size:.9em}#findings{table-layout:fixed;width:100%}"""
# After load, <body> gets data-images-total, -loaded (decoded, naturalWidth > 0) and -visible
# (a non-empty box on the page): the headless-browser tests read them from the DOM.
_COUNT_IMAGES = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var seen = imgs.filter(function (i) {
    var r = i.getBoundingClientRect(); return r.width > 0 && r.height > 0; }).length;
  document.body.setAttribute('data-images-total', imgs.length);
  document.body.setAttribute('data-images-loaded', ok);
  document.body.setAttribute('data-images-visible', seen);
});
</script>"""


def esc(x: Any) -> str:
    """``x`` as HTML text, safe inside an element and inside a quoted attribute."""
    return html.escape(str(x), quote=True)


def fmt(v: Any) -> str:
    """A table cell: integers as they are, floats to 4 significant digits, NaN as blank."""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    return str(v)


def table(header: Sequence[Any], rows: Sequence[Sequence[Any]],
          classes: Sequence[Sequence[str]] | None = None, html_id: str = "") -> str:
    """An escaped table; ``classes[r][c]`` adds a CSS class to a cell (e.g. ``best``)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for r, row in enumerate(rows):
        cells = []
        for c, v in enumerate(row):
            cls = classes[r][c] if classes is not None else ""
            attr = f' class="{esc(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{esc(fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    ident = f' id="{esc(html_id)}"' if html_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(png: bytes, alt: str, caption: str) -> str:
    """An inline PNG with its caption."""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def page(title: str, body: str, body_attrs: str = "") -> str:
    """A whole self-contained page. ``body`` must already be escaped HTML."""
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{esc(title)}</title><style>{_CSS}</style></head>"
            f"<body{body_attrs}>{body}{_COUNT_IMAGES}</body></html>")
