"""Reports: the findings (:mod:`timeline.outputs.findings`) as HTML, Markdown or JSON.

The renderers only lay the findings out; the words come with the findings.
The HTML report is one self-contained file: plotly.js is embedded once, nothing is fetched,
and every piece of log text is escaped by the template engine.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from timeline.analysis import Analysis, kept_rows
from timeline.analysis.incidents import duration_text
from timeline.outputs import words
from timeline.outputs.atomic import write_atomically
from timeline.outputs.findings import findings, to_json
from timeline.outputs.safe import CODE_SPAN, html_text, markdown_code, markdown_text
from timeline.reading.loader import Loaded

__all__ = ["FORMATS", "findings", "render", "report_format", "write_report"]

FORMATS = ("html", "md", "json")
#: The report format each output suffix gives.
SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json"}


def report_format(path: str | Path, format: str | None = None) -> str:
    """The format of a report written to ``path``: ``format`` if given, else from the suffix.

    >>> report_format("review.md"), report_format("out.txt", "json")
    ('md', 'json')
    """
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"unknown report format {format!r}: use one of {', '.join(FORMATS)}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"cannot tell the report format from {Path(path).name!r}: name it .html, .md or "
            ".json, or give --report-format"
        )
    return SUFFIXES[suffix]


def render(
    found: dict[str, Any],
    *,
    format: str = "html",
    figure_html: str | None = None,
    hosts_html: str | None = None,
) -> str:
    """The findings as ``html`` (with the figures' HTML embedded), ``md`` or ``json`` text."""
    if format == "json":
        return to_json(found)
    if format == "md":
        text = _environment(autoescape=False).get_template("report.md.j2").render(f=found)
        return re.sub(r"\n{3,}", "\n\n", text)
    if format == "html":
        page = _environment(autoescape=True).get_template("report.html.j2")
        return page.render(f=found, figure_html=figure_html or "", hosts_html=hosts_html or "")
    raise ValueError(f"unknown report format {format!r}; use one of {', '.join(FORMATS)}")


def figure_html(figure, *, div_id: str = "timeline-figure", plotlyjs: bool = True) -> str:
    """The figure as an HTML fragment; plotly.js is embedded (once per page, by the first
    figure) so that the page works offline."""
    return figure.to_html(
        include_plotlyjs=plotlyjs,
        full_html=False,
        config={"displaylogo": False, "responsive": True},
        div_id=div_id,
    )


def write_report(
    loaded: Loaded,
    analysis: Analysis,
    path: str | Path,
    *,
    format: str | None = None,
    title: str | None = None,
) -> Path:
    """Write the report of ``analysis`` to ``path``, its format from ``format`` or the
    file's suffix (``.html``, ``.md``, ``.json``); any other suffix without ``format`` is a
    ``ValueError``. Rows not in memory are not all read: the report is drawn from those
    the analysis keeps (:func:`timeline.analysis.kept_rows`), as the CLI's is."""
    path = Path(path)
    format = report_format(path, format)
    loaded = kept_rows(loaded)
    found = findings(loaded, analysis, title=title)
    figures = {}
    if format == "html":
        from timeline.outputs.figures import host_figure, timeline_figure

        root = found["root"]
        figures["figure_html"] = figure_html(
            timeline_figure(loaded.events, analysis, title=None, root=root)
        )
        top = found["top_incident"]
        if top is not None:
            hosts = host_figure(loaded.events, analysis, int(top.split("-")[1]) - 1, root=root)
            if hosts is not None:
                figures["hosts_html"] = figure_html(hosts, div_id="hosts-figure", plotlyjs=False)
    text = render(found, format=format, **figures)
    return write_atomically(path, lambda part: part.write_text(text, encoding="utf-8"))


# --- rendering ----------------------------------------------------------------------------


def _environment(*, autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        finalize=_html_finalize if autoescape else None,
    )
    env.filters["thousands"] = lambda n: f"{int(n or 0):,}"
    env.filters["md"] = markdown_text
    env.filters["code"] = markdown_code
    env.filters["prose"] = html_prose
    env.filters["minute"] = lambda t: (t or "?")[:16].replace("T", " ")
    env.filters["hhmm"] = lambda t: (t or "?")[5:16].replace("T", " ")
    env.filters["plural"] = words.plural
    env.filters["duration"] = duration_text
    return env


def _template_source(name: str) -> str:
    return (
        resources.files("timeline.outputs").joinpath("templates", name).read_text(encoding="utf-8")
    )


def _html_finalize(value: Any) -> Any:
    """Each value the HTML template shows, its unseen characters as escapes
    (:func:`~timeline.outputs.safe.html_text`) before the template engine escapes it;
    markup the report made itself (figures, :func:`html_prose`) is left as it is."""
    return html_text(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def html_prose(value: Any) -> Markup:
    """Text for HTML: escaped, with its `code spans` set as code."""
    parts = CODE_SPAN.split(html_text(value))
    return Markup("").join(
        Markup("<code>{}</code>").format(part[1:-1]) if i % 2 else escape(part)
        for i, part in enumerate(parts)
    )
