"""The run report: one self-contained HTML page built from plain tables and figure files.

A report is data — a title, facts about the run, and sections holding tables
(DataFrames), figures (image files) and notes — and :func:`render_report` turns
it into a single HTML page: CSS inline, figures embedded as base64 PNG (or
inline SVG), no scripts and no external URL, so it opens offline and can be
mailed to a colleague. Nothing here computes science.

:class:`Table`, :func:`format_value` and :func:`markdown_table` (the same tables as
Markdown for the run folder) live in :mod:`saltmap.tables`, the one table formatter,
and stay importable from here.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from saltmap.atomic import atomic_write_text
from saltmap.errors import InputFileError
from saltmap.tables import Table, format_value, markdown_table, numeric_columns, table_cells

__all__ = [
    "Figure",
    "Note",
    "Report",
    "Section",
    "Table",
    "embed_image",
    "format_value",
    "markdown_table",
    "render_report",
    "tables_in",
    "write_report",
]


@dataclass
class Figure:
    """A figure of the report: an image file (PNG, JPEG or SVG) and its caption."""

    title: str
    path: Path
    caption: str = ""


@dataclass
class Note:
    """A paragraph of text (plain; escaped): ``kind`` ``"warning"`` draws it as a callout,
    ``"item"`` as a bullet (consecutive items make one list)."""

    text: str
    kind: str = "text"


@dataclass
class Section:
    """A titled part of the report holding tables, figures and notes in order."""

    title: str
    items: list[Table | Figure | Note] = field(default_factory=list)
    intro: str = ""

    def add(self, item: Table | Figure | Note) -> Section:
        self.items.append(item)
        return self


@dataclass
class Report:
    """Everything on the page.

    Attributes
    ----------
    title : str
    subtitle : str
    facts : mapping
        Short label → value pairs shown at the top (samples, seed, versions, ...).
    sections : list of Section
    created : datetime
    """

    title: str
    subtitle: str = ""
    facts: Mapping[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    created: datetime = field(default_factory=datetime.now)

    def section(self, title: str, intro: str = "") -> Section:
        """Append a new section and return it."""
        new = Section(title, intro=intro)
        self.sections.append(new)
        return new


# -- HTML ---------------------------------------------------------------------------------------

_CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --rule: #d9dde5; --accent: #b5542a; --soft: #f5f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 32px 64px; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 18px; padding-bottom: 10px; }
h1 { font-size: 26px; margin: 0 0 4px; }
.subtitle { color: var(--muted); margin: 0; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px;
     border-bottom: 1px solid var(--rule); }
h3 { font-size: 16px; margin: 22px 0 6px; }
p { margin: 6px 0 10px; }
ul { margin: 6px 0 10px; padding-left: 22px; }
li { margin: 3px 0; }
nav { background: var(--soft); padding: 10px 16px; border-radius: 6px; margin: 12px 0 8px; }
nav ol { margin: 0; padding-left: 20px; columns: 2; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 10px 0;
           font-size: 14px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; margin: 6px 0 4px; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 9px; border-bottom: 1px solid var(--rule); text-align: left;
         vertical-align: top; }
th { background: var(--soft); font-weight: 600; position: sticky; top: 0; }
td.num { text-align: right; white-space: nowrap; }
tr:hover td { background: #fbf7f4; }
figure { margin: 10px 0 18px; }
figure img, figure svg { max-width: 100%; height: auto; border: 1px solid var(--rule);
                         border-radius: 4px; }
figcaption, .caption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.note { margin: 8px 0; }
.warning { border-left: 4px solid var(--accent); background: #fdf3ee; padding: 8px 12px;
           border-radius: 4px; }
footer { margin-top: 48px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--rule);
         padding-top: 8px; }
@media print { nav { display: none; } h2 { page-break-after: avoid; } }
"""

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}


def _anchor(text: str, i: int) -> str:
    slug = "".join(ch.lower() if ch.isalnum() else "-" for ch in text).strip("-")
    return f"s{i}-{slug[:40]}"


def embed_image(path: str | Path, alt: str = "") -> str:
    """An ``<img>`` with the file inlined as a data URI, or the SVG itself inline."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputFileError(f"figure {path} for the report cannot be read: {err}") from err
    suffix = path.suffix.lower()
    if suffix == ".svg":
        text = data.decode("utf-8")
        start = text.find("<svg")
        return text[start:] if start >= 0 else text
    mime = _MIME.get(suffix)
    if mime is None:
        raise InputFileError(f"figure {path}: embed PNG, JPEG, GIF or SVG, not {suffix}")
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{encoded}">'


def _table_html(table: Table) -> str:
    columns, rows = table_cells(table)
    numeric = {c for c, n in zip(columns, numeric_columns(table, columns), strict=True) if n}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "\n".join(
        "<tr>"
        + "".join(
            f'<td class="num">{html.escape(v)}</td>'
            if c in numeric
            else f"<td>{html.escape(v)}</td>"
            for c, v in zip(columns, row, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    caption = f'<p class="caption">{html.escape(table.caption)}</p>' if table.caption else ""
    return (
        f'<h3>{html.escape(table.title)}</h3>\n<div class="scroll"><table>\n<thead><tr>{head}'
        f"</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>\n{caption}"
    )


def _figure_html(figure: Figure) -> str:
    caption = html.escape(figure.caption)
    return (
        f"<h3>{html.escape(figure.title)}</h3>\n<figure>{embed_image(figure.path, figure.title)}"
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _item_html(item: Table | Figure | Note) -> str:
    if isinstance(item, Table):
        return _table_html(item)
    if isinstance(item, Figure):
        return _figure_html(item)
    css = "note warning" if item.kind == "warning" else "note"
    return f'<p class="{css}">{html.escape(item.text)}</p>'


def _items_html(items: Sequence[Table | Figure | Note]) -> str:
    """HTML of a section's items; consecutive ``Note(kind="item")`` form one bullet list."""
    parts: list[str] = []
    bullets: list[str] = []
    for item in [*items, None]:
        if isinstance(item, Note) and item.kind == "item":
            bullets.append(f"<li>{html.escape(item.text)}</li>")
            continue
        if bullets:
            parts.append("<ul>" + "".join(bullets) + "</ul>")
            bullets = []
        if item is not None:
            parts.append(_item_html(item))
    return "\n".join(parts)


def render_report(report: Report) -> str:
    """The report as one self-contained HTML page (a string)."""
    facts = "".join(
        f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(format_value(v))}</dd>"
        for k, v in report.facts.items()
    )
    toc, parts = [], []
    for i, section in enumerate(report.sections, start=1):
        anchor = _anchor(section.title, i)
        toc.append(f'<li><a href="#{anchor}">{html.escape(section.title)}</a></li>')
        intro = f"<p>{html.escape(section.intro)}</p>" if section.intro else ""
        body = _items_html(section.items)
        parts.append(
            f'<section id="{anchor}">\n<h2>{html.escape(section.title)}</h2>\n{intro}\n{body}\n'
            "</section>"
        )
    subtitle = f'<p class="subtitle">{html.escape(report.subtitle)}</p>' if report.subtitle else ""
    created = report.created.strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(report.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<h1>{html.escape(report.title)}</h1>
{subtitle}
</header>
<dl class="facts">{facts}</dl>
<nav><strong>Contents</strong><ol>{"".join(toc)}</ol></nav>
{"".join(parts)}
<footer>Written by saltmap on {created}. This page is self-contained: every figure is embedded
and it loads nothing from the network.</footer>
</main>
</body>
</html>
"""


def write_report(report: Report, path: str | Path) -> Path:
    """Render ``report`` and write it to ``path`` (UTF-8)."""
    path = Path(path)
    return atomic_write_text(path, render_report(report))


def tables_in(sections: Sequence[Section]) -> list[Table]:
    """Every table of the given sections, in order."""
    return [item for s in sections for item in s.items if isinstance(item, Table)]
