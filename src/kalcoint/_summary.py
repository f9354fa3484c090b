"""A printable summary of a result: text for a terminal, HTML for a notebook.

Every result's ``summary()`` returns a :class:`Summary`: ``print(res.summary())`` shows the
text; a notebook shows the HTML table (``_repr_html_``), as statsmodels' summaries do.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Summary", "Table", "cell"]


def cell(value: Any, spec: str = ".6g") -> str:
    """One table cell: ``-`` for None or NaN, yes/no for booleans, ``spec`` for other numbers.

    Examples
    --------
    >>> cell(0.123456789), cell(None), cell(float("nan")), cell(3)
    ('0.123457', '-', '-', '3')
    """
    if value is None:
        return "-"
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "yes" if value else "no"
    if isinstance(value, int) or type(value).__name__.startswith("int"):
        return str(int(value))
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        v = float(value)
        return format(v, spec) if math.isfinite(v) or math.isinf(v) else "-"
    return str(value)


@dataclass(frozen=True)
class Table:
    """A titled table of text cells.

    Examples
    --------
    >>> t = Table(("name", "value"), (("alpha11", "0.99"),), title="params")
    >>> t.header
    ('name', 'value')
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""


@dataclass(frozen=True)
class Summary:
    """A result's summary: a title, tables and notes.

    Parameters
    ----------
    title : str
        First line.
    tables : sequence of Table
        Shown in order.
    notes : sequence of str
        Lines after the tables (warnings, reasons).
    text : str, optional
        The plain text, when a result has its own compact layout (the HTML still shows the tables).

    Examples
    --------
    >>> s = Summary("Demo", (Table(("a", "b"), (("1", "2"),)),), ("a note",))
    >>> print(s.as_text())
    Demo
    a  b
    -  -
    1  2
    a note
    >>> "<table" in s.as_html()
    True
    """

    title: str
    tables: Sequence[Table] = field(default_factory=tuple)
    notes: Sequence[str] = field(default_factory=tuple)
    text: str | None = None

    def as_text(self) -> str:
        """Plain text: the title, each table with aligned columns, then the notes."""
        if self.text is not None:
            return self.text
        lines = [self.title]
        for table in self.tables:
            if table.title:
                lines.append(table.title)
            widths = [max(len(r[j]) for r in (table.header, *table.rows)) for j in range(len(table.header))]
            for r in (table.header, tuple("-" * w for w in widths), *table.rows):
                parts = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
                lines.append("  ".join(parts).rstrip())
        lines.extend(self.notes)
        return "\n".join(lines)

    def as_html(self) -> str:
        """HTML: one ``<table>`` per table (caption = its title), notes as paragraphs."""
        out = [f'<div class="kalcoint-summary"><p><b>{html.escape(self.title)}</b></p>']
        for table in self.tables:
            out.append("<table>")
            if table.title:
                out.append(f"<caption>{html.escape(table.title)}</caption>")
            out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.header) + "</tr>")
            for r in table.rows:
                out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
            out.append("</table>")
        out.extend(f"<p>{html.escape(n)}</p>" for n in self.notes)
        out.append("</div>")
        return "\n".join(out)

    def _repr_html_(self) -> str:
        return self.as_html()

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()
