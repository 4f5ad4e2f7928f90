"""Reports: the findings as plain data, then as HTML, Markdown or JSON.

``findings()`` gathers what the loader and the analysis found into one plain dictionary
(times as text, every number traceable to ``file:line``); the renderers only lay it out.
The HTML report is one self-contained file: plotly.js is embedded once, nothing is fetched,
and every piece of log text is escaped by the template engine.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from timeline.analysis import Analysis
from timeline.analysis.incidents import duration_text
from timeline.reading.loader import Loaded

FORMATS = ("html", "md", "json")
#: Contributors shown per incident, and raw lines per contributor.
TOP_CONTRIBUTORS = 8
SAMPLE_LINES = 4
#: Error signatures listed per source, and unparsed lines listed in the appendix.
TOP_SIGNATURES = 8
LISTED_UNPARSED = 50


def findings(loaded: Loaded, analysis: Analysis, *, title: str | None = None) -> dict[str, Any]:
    """Everything a report shows, as plain data (JSON-ready)."""
    events = loaded.events
    times = events["ts"].drop_nulls()
    span = (times.min(), times.max()) if times.len() else (None, None)
    changes = {c["change_id"]: c for c in analysis.changes.iter_rows(named=True)}
    summary = _summary(analysis, changes)
    incidents = [
        _incident(row, analysis, changes, loaded.scan())
        for row in analysis.incidents.iter_rows(named=True)
    ]
    files = loaded.summary.files
    assumptions = loaded.summary.assumptions
    return {
        "title": title or "Incident timeline",
        "root": _common_root(files["file"].to_list()),
        "span": [_t(span[0]), _t(span[1])],
        "span_text": f"{_t(span[0])} to {_t(span[1])} UTC" if span[0] else "no timed records",
        "bucket": analysis.bucket,
        "summary": " ".join(summary),
        "summary_paragraphs": summary,
        "incidents": incidents,
        "signatures": _signatures(events),
        "changes": [_change(row) for row in analysis.changes.iter_rows(named=True)],
        "loading": {
            "rows": events.height,
            "lines": int(files["lines"].sum()),
            "files": [
                {k: v for k, v in row.items() if k != "first_unparsed"}
                | {"first_unparsed": list(row["first_unparsed"] or [])}
                for row in files.iter_rows(named=True)
            ],
            "assumptions": assumptions.to_dicts(),
            "assumption_groups": assumptions.group_by(
                "what", "value", "certainty", maintain_order=True
            )
            .agg(files=pl.len(), basis=pl.col("basis").first(), example=pl.col("file").first())
            .to_dicts(),
            "formats": files.group_by("format", maintain_order=True)
            .agg(
                files=pl.len(),
                lines=pl.col("lines").sum(),
                rows=pl.col("rows").sum(),
                unparsed_lines=pl.col("unparsed_lines").sum(),
            )
            .sort("lines", descending=True)
            .to_dicts(),
            "unparsed_lines": loaded.summary.unparsed_lines,
            "unparsed": loaded.summary.warnings.filter(pl.col("unparsed"))
            .head(LISTED_UNPARSED)
            .select("file", "line", "reason", "text")
            .to_dicts(),
        },
    }


def render(found: dict[str, Any], *, format: str = "html", figure_html: str | None = None) -> str:
    """The findings as ``html`` (with ``figure_html`` embedded), ``md`` or ``json`` text."""
    if format == "json":
        return json.dumps(found, indent=2, default=str, ensure_ascii=False)
    root = found.get("root") or ""
    if format == "md":
        env = _environment(autoescape=False, root=root)
        return env.get_template("report.md.j2").render(f=found)
    if format == "html":
        page = _environment(autoescape=True, root=root).get_template("report.html.j2")
        return page.render(f=found, figure_html=figure_html or "")
    raise ValueError(f"unknown report format {format!r}; use one of {', '.join(FORMATS)}")


def figure_html(figure) -> str:
    """The figure as an HTML fragment with plotly.js embedded, so the page works offline."""
    return figure.to_html(
        include_plotlyjs=True,
        full_html=False,
        config={"displaylogo": False, "responsive": True},
        div_id="timeline-figure",
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
    file's ending (``.html``, ``.md``, ``.json``)."""
    path = Path(path)
    format = format or {".md": "md", ".json": "json"}.get(path.suffix.lower(), "html")
    found = findings(loaded, analysis, title=title)
    fragment = None
    if format == "html":
        from timeline.outputs.figures import timeline_figure

        fragment = figure_html(timeline_figure(loaded.events, analysis, title=None))
    path.write_text(render(found, format=format, figure_html=fragment), encoding="utf-8")
    return path


# --- pieces -------------------------------------------------------------------------------


def _incident(
    row: dict, analysis: Analysis, changes: dict[int, dict], events: pl.LazyFrame
) -> dict[str, Any]:
    iid = row["incident_id"]
    ranked = analysis.contributors.filter(pl.col("incident_id") == iid).sort(
        "rank", nulls_last=True
    )
    phases = [
        ("onset", row["onset"], row["escalation"], "the first series departs from its baseline"),
        ("escalation", row["escalation"], row["peak"], "more series and hosts join"),
        ("peak", row["peak"], row["mitigation"], "the highest rate"),
        ("mitigation", row["mitigation"], row["recovery"], "rates fall back"),
    ]
    order = []
    for step in row["sequence"] or []:
        after = step.get("after_previous_s")
        order.append(
            {
                "source": step["source"],
                "series": step.get("series"),
                "first_spike": _t(step["start"]),
                "after": duration_text(after) if after else None,
            }
        )
    return {
        "id": iid,
        "start": _t(row["onset"]),
        "first_spike": _t(row["start"]),
        "end": _t(row["recovery"]),
        "onset": _t(row["onset"]),
        "peak": _t(row["peak"]),
        "duration": duration_text(row["duration_s"]),
        "description": (
            f"{row['n_spikes']} spikes in {', '.join(row['sources'] or [])} on "
            f"{row['n_hosts']} hosts, lasting {duration_text(row['duration_s'])}"
            + (
                f"; its first spike, a smaller one, began at {_t(row['start'])}."
                if row["start"] is not None and row["start"] < row["onset"]
                else "."
            )
        ),
        "phases": [
            {"phase": name, "start": _t(a), "end": _t(b), "description": what}
            for name, a, b, what in phases
            if a is not None
        ],
        "source_order": order,
        "detection": _detection(row),
        "contributors": [
            _contributor(c, changes.get(c["change_id"]) or {}, events)
            for c in ranked.head(TOP_CONTRIBUTORS).iter_rows(named=True)
        ],
    }


def _detection(row: dict) -> str:
    parts = []
    if row["first_anomaly_at"] is not None:
        parts.append(
            f"first anomalous signature at {_t(row['first_anomaly_at'])} "
            f"({row['first_anomaly']}), {duration_text(row['warning_lead_s'])} before the onset"
        )
    parts.append(f"onset at {_t(row['onset'])}")
    if row["ci_impact_at"] is not None:
        parts.append(
            f"CI users felt it at {_t(row['ci_impact_at'])} ({row['ci_impact']}), "
            f"{duration_text(row['ci_lag_s'])} after the onset"
        )
    return "; ".join(parts) + "."


def _contributor(c: dict, change: dict, events: pl.LazyFrame) -> dict[str, Any]:
    return {
        "rank": c["rank"],
        "time": _t(c["ts"]),
        "change_type": c["change_type"],
        "target": c["target"],
        "from": change.get("from"),
        "to": change.get("to"),
        "description": c.get("description") or "",
        "inferred": bool(c["inferred"]),
        "effect": c["role"],
        "score": round(float(c["score"]), 2),
        "score_parts": c.get("score_parts"),
        "lead": c.get("when"),
        "evidence": list(c["evidence"] or []),
        "samples": _samples(events, c.get("examples") or []),
        "error_lines": [
            {"side": side, **line, "ts": _t(line["ts"])}
            for side in ("before", "after")
            for line in c.get(f"lines_{side}") or []
        ],
    }


def _samples(events: pl.LazyFrame, locations: list[str]) -> list[dict[str, Any]]:
    """The raw rows behind ``file:line`` references, so a reader can check a number:
    fetched from the event store, which holds every row's whole message."""
    wanted = []
    for loc in locations[:SAMPLE_LINES]:
        file, _, line = loc.rpartition(":")
        if file and line.isdigit():
            wanted.append((file, int(line)))
    if not wanted:
        return []
    keys = pl.DataFrame(wanted, schema={"file": pl.String, "line": pl.UInt32}, orient="row")
    near = pl.col("file").is_in(keys["file"].unique().implode()) & pl.col("line").is_in(
        keys["line"].unique().implode()
    )  # lets the store skip the row groups that cannot hold them
    rows = events.filter(near).collect().join(keys, on=["file", "line"], how="semi")
    rows = rows.unique(["file", "line"])
    return [
        {"file": f, "line": n, "message": m}
        for f, n, m in rows.select("file", "line", "message").sort("file", "line").iter_rows()
    ]


def _change(row: dict) -> dict[str, Any]:
    example = (row.get("examples") or [""])[0]
    file, _, line = example.rpartition(":")
    return {
        "time": _t(row["ts"]),
        "change_type": row["change_type"],
        "target": row["target"],
        "from": row["from"],
        "to": row["to"],
        "actor": row["actor"],
        "inferred": bool(row["inferred"]),
        "hosts": len(row["hosts"] or []),
        "file": file,
        "line": line,
        "description": row["description"],
    }


def _signatures(events: pl.DataFrame) -> list[dict[str, Any]]:
    """The commonest warning and error signatures per source, with first and last seen."""
    problems = events.filter(
        (pl.col("kind") == "log") & pl.col("level").is_in(["warning", "error", "critical"])
    )
    table = (
        problems.group_by("source", "template")
        .agg(
            count=pl.len(),
            first_seen=pl.col("ts").min(),
            last_seen=pl.col("ts").max(),
            file=pl.col("file").first(),
            line=pl.col("line").first(),
        )
        .sort(["source", "count"], descending=[False, True])
    )
    out = []
    for (source,), part in table.group_by("source", maintain_order=True):
        out.append(
            {
                "source": source,
                "rows": [
                    r | {"first_seen": _t(r["first_seen"]), "last_seen": _t(r["last_seen"])}
                    for r in part.head(TOP_SIGNATURES).drop("source").iter_rows(named=True)
                ],
            }
        )
    return out


def _summary(analysis: Analysis, changes: dict[int, dict]) -> list[str]:
    """What happened, written from the findings: an opening sentence, then one paragraph
    per incident."""
    incidents = analysis.incidents
    if incidents.is_empty():
        return [
            "No incident was found: no error, warning or CI delay series departed from its "
            "own baseline by enough to count."
        ]
    n = incidents.height
    sentences = [
        f"{n} incident{'s' if n != 1 else ''} between {_t(incidents['onset'].min())} and "
        f"{_t(incidents['recovery'].max())} UTC."
    ]
    for row in incidents.iter_rows(named=True):
        ranked = analysis.contributors.filter(pl.col("incident_id") == row["incident_id"])
        ranked = ranked.sort("rank", nulls_last=True)
        text = [
            f"Incident {row['incident_id']}, {_t(row['onset'])} to {_t(row['recovery'])} "
            f"({duration_text(row['duration_s'])}): {row['order']}."
        ]
        if ranked.height and ranked["rank"].is_null().all():
            text.append(
                "No change explains it: none of the changes before it has evidence beyond "
                "chance; the nearest were considered and show none."
            )
        elif ranked.height and ranked["score"][0] > 0:
            top = ranked.row(0, named=True)
            text.append(
                f"Ranked first: the {_phrase(changes.get(top['change_id']), top)}, "
                f"{top['when']} ({top['role']})."
            )
        if row.get("precursor_change"):
            text.append(f"A precursor trickle began after the {row['precursor_change']}.")
        for role, verb in (("made worse", "Made it worse"), ("mitigation", "Mitigated by")):
            picked = ranked.filter(pl.col("role") == role)
            if picked.height:
                first = _phrase(changes.get(picked["change_id"][0]), picked.row(0, named=True))
                more = f" and {picked.height - 1} more" if picked.height > 1 else ""
                text.append(f"{verb}: the {first}{more}.")
        if row["ci_impact_at"] is not None:
            text.append(f"CI users felt it from {_t(row['ci_impact_at'])}.")
        sentences.append(" ".join(text))
    return sentences


def _phrase(change: dict | None, contributor: dict) -> str:
    """``upgrade of daemonset/kube-system/kube-proxy (v1.23.17 → v1.24.10) at 03-14 17:40``."""
    change = change or {}
    text = f"{contributor['change_type']} of {contributor['target']}"
    if change.get("from") or change.get("to"):
        text += f" ({change.get('from') or '?'} → {change.get('to') or '?'})"
    return text + f" at {contributor['ts']:%m-%d %H:%M}"


def _t(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else None


def _common_root(paths: list[str]) -> str:
    """The folder all loaded files share, so the report can show shorter paths."""
    if not paths:
        return ""
    root = os.path.commonpath([os.path.abspath(p) for p in paths])
    return root if len(paths) > 1 else os.path.dirname(root)


def _relative_to(root: str):
    def relative(path: object) -> str:
        text = "" if path is None else str(path)
        if root and os.path.abspath(text).startswith(root + os.sep):
            return os.path.relpath(os.path.abspath(text), root)
        return text

    return relative


def _environment(*, autoescape: bool, root: str = "") -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    env.filters["thousands"] = lambda n: f"{int(n or 0):,}"
    env.filters["md"] = _markdown_text
    env.filters["code"] = _markdown_code
    env.filters["rel"] = _relative_to(root)
    return env


def _template_source(name: str) -> str:
    return (
        resources.files("timeline.outputs").joinpath("templates", name).read_text(encoding="utf-8")
    )


def _markdown_text(value: Any) -> str:
    """Text safe inside Markdown: HTML and table pipes escaped, line breaks flattened."""
    text = "" if value is None else str(value)
    for raw, safe in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("`", "'")):
        text = text.replace(raw, safe)
    return text.replace("\n", " ")


def _markdown_code(value: Any) -> str:
    """Text safe inside a Markdown code span."""
    return (
        ("" if value is None else str(value))
        .replace("`", "'")
        .replace("|", "\\|")
        .replace("\n", " ")
    )
