"""The report as Markdown and as HTML."""

from __future__ import annotations

import html
from typing import Sequence

from genre_style.reporting.sections import Section


def to_markdown(sections: Sequence[Section], title: str) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for caption, header, rows in section.tables:
            lines += [f"**{caption}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            lines.append("")
        lines += [f"![{caption}]({path})" for caption, path in section.images]
        lines.append("")
    return "\n".join(lines)


def to_html(sections: Sequence[Section], title: str) -> str:
    e = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}"
        "img{max-width:48%;margin:4px;border:1px solid #eee}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{e(section.title.replace('`', ''))}</h2>")
        for caption, header, rows in section.tables:
            parts.append(f"<p><b>{e(caption)}</b></p><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
            parts.append("</table>")
        parts += [
            f"<figure style='display:inline-block;width:48%'><img style='max-width:100%' src='{e(p)}'><figcaption>{e(c)}</figcaption></figure>"
            for c, p in section.images
        ]
    parts.append("</body></html>")
    return "\n".join(parts)
