"""The findings as plain data, in one versioned shape (``findings.schema.json``).

``analyze --json``, ``report -o x.json`` and the HTML and Markdown reports all start from
:func:`findings`. Times are ISO 8601 in UTC (``2023-03-14T18:00:00Z``), durations are
seconds, ids are stable strings (``incident-1``, ``change-5``, ``spike-3``) numbered from 1
in time order, and paths are relative to ``root``. Only ``generated_at`` differs between
two runs on the same input.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import polars as pl

from timeline.analysis import Analysis, kept_rows
from timeline.analysis.incidents import duration_text
from timeline.analysis.rates import to_timedelta
from timeline.outputs import words
from timeline.outputs.safe import json_text
from timeline.paths import common_root
from timeline.reading.loader import Loaded

SCHEMA_NAME = "findings.schema.json"
SCHEMA_VERSION = 1
#: Raw lines quoted per ranked change, error signatures per source, unparsed lines listed.
SAMPLE_LINES = 4
TOP_SIGNATURES = 8
LISTED_UNPARSED = 50


def schema() -> dict[str, Any]:
    """The JSON Schema the findings follow (shipped in the package)."""
    text = resources.files("timeline.outputs").joinpath(SCHEMA_NAME).read_text(encoding="utf-8")
    return json.loads(text)


def incident_ref(incident_id: int | None) -> str | None:
    """The stable id of an incident: ``incident-1`` for the first."""
    return None if incident_id is None else f"incident-{incident_id + 1}"


def change_ref(change_id: int | None) -> str | None:
    """The stable id of a change: ``change-1`` for the first in time."""
    return None if change_id is None else f"change-{change_id + 1}"


def spike_ref(spike_id: int | None) -> str | None:
    """The stable id of a spike: ``spike-1`` for the first."""
    return None if spike_id is None else f"spike-{spike_id + 1}"


def findings(
    loaded: Loaded,
    analysis: Analysis,
    *,
    title: str | None = None,
    generated_at: datetime | None = None,
) -> dict[str, Any]:
    """Everything a report shows, as JSON-ready data following ``findings.schema.json``.
    Rows not in memory are not all read (:func:`timeline.analysis.kept_rows`)."""
    loaded = kept_rows(loaded)
    events = loaded.events
    files = loaded.summary.files
    root = common_root(files["file"].to_list())
    span = loaded.scan().select(lo=pl.col("ts").min(), hi=pl.col("ts").max()).collect().row(0)
    windows = _windows(analysis)
    changes = {c["change_id"]: c for c in analysis.changes.iter_rows(named=True)}
    messages = _sample_messages(loaded.scan(), analysis.contributors["examples"].to_list())
    spikes = [
        _spike(row, root, bucket=analysis.bucket) for row in analysis.spikes.iter_rows(named=True)
    ]
    incidents = [
        _incident(row, analysis, changes, messages, spikes, root=root, windows=windows)
        for row in analysis.incidents.sort("incident_id").iter_rows(named=True)
    ]
    from importlib.metadata import PackageNotFoundError, version

    try:
        tool_version = version("incident-timeline")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout
        tool_version = "0"
    return {
        "schema": "incident-timeline/findings",
        "schema_version": SCHEMA_VERSION,
        "generated_at": words.iso(generated_at or datetime.now(UTC)),
        "generator": {"name": "incident-timeline", "version": tool_version},
        "title": title or "Incident timeline",
        "root": root,
        "span": {"start": words.iso(span[0]), "end": words.iso(span[1])},
        "bucket": analysis.bucket,
        "bucket_s": to_timedelta(analysis.bucket).total_seconds(),
        "options": {k: v for k, v in sorted(analysis.options.items())},
        "summary": _overview(incidents),
        "top_incident": _top_incident(incidents),
        "incidents": incidents,
        "spikes": spikes,
        "changes": [_change(row, root) for row in analysis.changes.iter_rows(named=True)],
        "signatures": _signatures(events, root),
        "loading": _loading(loaded, root),
    }


def to_json(found: dict[str, Any]) -> str:
    """The findings as JSON text (keys in a fixed order, UTF-8 kept)."""
    return json_text(found, indent=2) + "\n"


# --- incidents ----------------------------------------------------------------------------


def _windows(analysis: Analysis) -> dict[str, float]:
    options = analysis.options
    return {
        "before_s": to_timedelta(options.get("change_before", "15m")).total_seconds(),
        "after_s": to_timedelta(options.get("change_window", "1h")).total_seconds(),
    }


def _incident(
    row: dict,
    analysis: Analysis,
    changes: dict[int, dict],
    messages: dict[tuple[str, int], str | None],
    spikes: list[dict[str, Any]],
    *,
    root: str,
    windows: dict[str, float],
) -> dict[str, Any]:
    iid = row["incident_id"]
    ranked = analysis.contributors.filter(pl.col("incident_id") == iid).sort(
        "rank", nulls_last=True
    )
    contributors = [
        _contributor(c, changes.get(c["change_id"]) or {}, messages, root=root, windows=windows)
        for c in ranked.iter_rows(named=True)
    ]
    first_sign = row.get("first_anomaly_at")
    out = {
        "id": incident_ref(iid),
        "number": iid + 1,
        "times": {
            "first_sign": words.iso(first_sign),
            "first_spike": words.iso(row["start"]),
            "onset": words.iso(row["onset"]),
            "escalation": words.iso(row["escalation"]),
            "peak": words.iso(row["peak"]),
            "mitigation": words.iso(row["mitigation"]),
            "recovery": words.iso(row["recovery"]),
            "logs_end": words.iso(row.get("logs_end")) if row.get("ongoing") else None,
        },
        "ongoing": bool(row.get("ongoing")),
        "duration_s": row["duration_s"],
        "level": row.get("level"),
        "sources": list(row["sources"] or []),
        "hosts": list(row["hosts"] or []),
        "spikes": [spike_ref(s) for s in row["spike_ids"] or []],
        "source_order": [
            {
                "source": step["source"],
                "series": step.get("series"),
                "first_spike": words.iso(step["start"]),
                "after_previous_s": step.get("after_previous_s"),
            }
            for step in row["sequence"] or []
        ],
        "detection": {
            "first_sign": words.iso(first_sign),
            "first_sign_what": row.get("first_anomaly"),
            "lead_s": row.get("warning_lead_s"),
            "ci_impact_at": words.iso(row.get("ci_impact_at")),
            "ci_impact": row.get("ci_impact"),
            "ci_lag_s": row.get("ci_lag_s"),
        },
        "contributors": contributors,
    }
    own = set(out["spikes"])
    out["story"] = _story(row, out, contributors, [s for s in spikes if s["id"] in own])
    return out


def _contributor(
    c: dict,
    change: dict,
    messages: dict[tuple[str, int], str | None],
    *,
    root: str,
    windows: dict[str, float],
) -> dict[str, Any]:
    # Counts before a change made ahead of the onset span the same window as after it;
    # during the incident, the shorter one before (where the errors stood).
    if (c.get("lead_s") or 0) > 0:
        windows = {**windows, "before_s": windows["after_s"]}
    return {
        "change": change_ref(c["change_id"]),
        "rank": c["rank"],
        "time": words.iso(c["ts"]),
        "change_type": c["change_type"],
        "target": c["target"],
        "name": words.short_change(c),
        "versions": words.versions(change),
        "inferred": bool(c["inferred"]),
        "role": c["role"],
        "role_words": words.role_words(c["role"]),
        "evidenced": c["rank"] is not None and c["role"] not in words.NO_EVIDENCE_ROLES,
        "score": round(float(c["score"]), 3),
        "score_parts": c.get("score_parts"),
        "lead_s": c.get("lead_s"),
        "headline": words.headline(c, **windows),
        "evidence": words.evidence_words(c, **windows),
        "measures": {
            key: c.get(key)
            for key in (
                "touched_hosts",
                "before",
                "after",
                "after_unknown_host",
                "untouched_hosts",
                "untouched_before",
                "untouched_after",
                "precursor_rows",
            )
        },
        "examples": [words.location(loc, root) for loc in c.get("examples") or []],
        "samples": _samples(messages, c.get("examples") or [], root),
        "error_lines": [
            {
                "side": side,
                "time": words.iso(line.get("ts")),
                "file": words.relative_path(line.get("file"), root),
                "line": line.get("line"),
                "message": line.get("message"),
            }
            for side in ("before", "after")
            for line in c.get(f"lines_{side}") or []
        ],
    }


def _story(
    row: dict, incident: dict, contributors: list[dict], spikes: list[dict]
) -> list[dict[str, str]]:
    """The sentences a reviewer would write, labelled: what happened, when, trigger,
    precursor, what made it worse, what mitigated it, recovery, detection (with what the
    incident's CI ``spikes`` measured: a chart alone would not say how long jobs waited)."""
    story = []

    def say(label: str, text: str) -> None:
        story.append({"label": label, "text": text})

    order = incident["source_order"]
    steps = [
        step["source"]
        + (
            f" {duration_text(step['after_previous_s'])} later"
            if step.get("after_previous_s")
            else ""
        )
        for step in order[1:]
    ]
    first = f"{order[0]['source']} spiked first" if order else "its series spiked"
    say(
        "what happened",
        first
        + "".join(f", then {step}" for step in steps)
        + f": {words.plural(len(incident['spikes']), 'spike')}"
        f"{words.on_hosts(len(incident['hosts']))}.",
    )
    ongoing = bool(row.get("ongoing"))
    if ongoing:
        say(
            "when",
            f"{words.minute(row['onset'])} to the end of the logs at "
            f"{words.minute(row.get('logs_end'))} UTC (at least "
            f"{duration_text(row['duration_s'])}), not recovered by then.",
        )
    else:
        say(
            "when",
            f"{words.minute(row['onset'])} to {words.minute(row['recovery'])} UTC "
            f"({duration_text(row['duration_s'])}).",
        )
    by_role: dict[str, list[dict]] = {}
    for c in contributors:
        by_role.setdefault(c["role"], []).append(c)
    if contributors and all(c["rank"] is None for c in contributors):
        say("cause", "no change explains it: none before it has evidence beyond chance.")
    for role, label in (
        ("trigger", "trigger"),
        ("precursor", "precursor"),
        ("latent cause", "latent cause"),
    ):
        if by_role.get(role):
            c = by_role[role][0]
            say(label, f"{_change_phrase(c)}: {c['headline']}.")
    for role, label in (("made worse", "made it worse"), ("mitigation", "mitigated by")):
        picked = sorted(by_role.get(role, []), key=lambda c: (c["time"], c["rank"]))
        if picked:
            say(label, _grouped(picked) + ".")
    if ongoing:
        say(
            "ongoing",
            f"not recovered by the end of the logs at {words.minute(row.get('logs_end'))} UTC; "
            f"at least {duration_text(row['duration_s'])} after the onset.",
        )
    else:
        say(
            "recovered",
            f"{words.minute(row['recovery'])} UTC, {duration_text(row['duration_s'])} after "
            "the onset.",
        )
    detection = incident["detection"]
    seen = []
    if detection["first_sign"]:
        seen.append(
            f"first sign at {words.minute(row['first_anomaly_at'])} "
            f"({_what(detection['first_sign_what'])}), "
            + (
                "at the onset"
                if abs(detection["lead_s"] or 0) < 60
                else f"{words.relative_time(detection['lead_s'], 'before', 'after')} the onset"
            )
        )
    if detection["ci_impact_at"]:
        ci = words.ci_spike_words(spikes)
        seen.append(
            f"CI users felt it at {words.minute(row['ci_impact_at'])}, "
            f"{words.relative_time(detection['ci_lag_s'], 'after', 'before')} the onset"
            + (f": {ci}" if ci else "")
        )
    if seen:
        say("detection", "; ".join(seen) + ".")
    return story


def _what(text: str | None) -> str:
    """A series name with its log text as code: ``kube-proxy errors: `Failed ...```."""
    text = text or "?"
    head, sep, signature = text.partition(": ")
    return f"{head}: {words.code(signature)}" if sep else text


def _change_phrase(c: dict) -> str:
    """``upgrade of daemonset/kube-system/kube-proxy (v1 → v2) at 03-14 17:40``."""
    kind = "change" if c["change_type"] == "other" else c["change_type"]
    text = f"{kind} of {c['target']}"
    if c["versions"]:
        text += f" ({c['versions']})"
    return text + f" at {c['time'][5:10]} {c['time'][11:16]}"


def _grouped(picked: list[dict]) -> str:
    """Changes of one role said briefly: the first in full, the rest by kind and time."""
    first = picked[0]
    text = f"{_change_phrase(first)} ({first['headline']})"
    rest = picked[1:]
    if not rest:
        return text
    if len(rest) == 1:
        return f"{text}, and the {_change_phrase(rest[0])}"
    kinds: dict[str, int] = {}
    for c in rest:
        kinds[c["change_type"]] = kinds.get(c["change_type"], 0) + 1
    said = ", ".join(
        words.plural(n, "other change" if kind == "other" else kind) for kind, n in kinds.items()
    )
    until = rest[-1]["time"]
    return f"{text}, then {said} until {until[5:10]} {until[11:16]}"


def _top_incident(incidents: list[dict]) -> str | None:
    """The incident a review is about: the longest one."""
    if not incidents:
        return None
    return max(incidents, key=lambda i: (i["duration_s"] or 0, -i["number"]))["id"]


def _numbers(incidents: list[dict]) -> str:
    """``incident 2`` or ``incidents 1 and 3``."""
    numbers = [str(i["number"]) for i in incidents]
    if len(numbers) == 1:
        return f"incident {numbers[0]}"
    return f"incidents {', '.join(numbers[:-1])} and {numbers[-1]}"


def _overview(incidents: list[dict]) -> list[str]:
    if not incidents:
        return [
            "No incident was found: no error, warning or CI delay series departed from its "
            "own baseline by enough to count."
        ]
    first = min(i["times"]["onset"] for i in incidents)
    last = max(i["times"]["recovery"] or i["times"]["logs_end"] for i in incidents)
    going = [i for i in incidents if i["ongoing"]]
    still = (
        f", when the logs end with {_numbers(going)} not recovered"
        if going and max(i["times"]["logs_end"] for i in going) == last
        else ""
    )
    return [
        f"{words.plural(len(incidents), 'incident')} between {first[:16].replace('T', ' ')} and "
        f"{last[:16].replace('T', ' ')} UTC{still}."
    ] + [
        f"Incident {i['number']}, {i['story'][1]['text']} {i['story'][0]['text']}"
        for i in incidents
    ]


# --- spikes, changes, signatures, loading ---------------------------------------------------


def _spike(row: dict, root: str, *, bucket: str) -> dict[str, Any]:
    return {
        "id": spike_ref(row["spike_id"]),
        "incident": incident_ref(row.get("incident_id")),
        "series": row["series"],
        "source": row["source"],
        "signature": row.get("signature"),
        "metric": row.get("metric"),
        "level": row.get("level"),
        "start": words.iso(row["start"]),
        "peak": words.iso(row["peak"]),
        "end": words.iso(row["end"]),
        "peak_value": row.get("peak_value"),
        "baseline": row.get("baseline"),
        "count": row.get("count"),
        "measure": words.spike_measure(row, bucket=bucket),
        "rows": row.get("count"),
        "hosts": list(row.get("hosts") or []),
        "new_signature": bool(row.get("new_signature")),
        "examples": [words.location(loc, root) for loc in row.get("examples") or []],
    }


def _change(row: dict, root: str) -> dict[str, Any]:
    return {
        "id": change_ref(row["change_id"]),
        "time": words.iso(row["ts"]),
        "change_type": row["change_type"],
        "target": row["target"],
        "from": row.get("from"),
        "to": row.get("to"),
        "actor": row.get("actor"),
        "inferred": bool(row["inferred"]),
        "hosts": list(row.get("hosts") or []),
        "description": row.get("description"),
        "note": row.get("note"),
        "examples": [words.location(loc, root) for loc in row.get("examples") or []],
        "helm": row.get("helm"),
        "parts": [
            {**part, "example": words.location(part["example"], root)}
            for part in row.get("parts") or []
        ],
    }


def _sample_keys(locations: list[str]) -> list[tuple[str, int]]:
    """The ``(file, line)`` of a contributor's first example locations."""
    keys = []
    for loc in locations[:SAMPLE_LINES]:
        file, _, line = loc.rpartition(":")
        if file and line.isdigit():
            keys.append((file, int(line)))
    return keys


def _sample_messages(
    events: pl.LazyFrame, examples: list[list[str] | None]
) -> dict[tuple[str, int], str | None]:
    """The message of every row the contributors quote, fetched from the event store
    (which holds every row's whole message) in one query for the whole report."""
    wanted = sorted({key for locations in examples for key in _sample_keys(locations or [])})
    if not wanted:
        return {}
    keys = pl.DataFrame(wanted, schema={"file": pl.String, "line": pl.UInt32}, orient="row")
    near = pl.col("file").is_in(keys["file"].unique().implode()) & pl.col("line").is_in(
        keys["line"].unique().implode()
    )  # lets the store skip the row groups that cannot hold them
    rows = (
        events.filter(near)
        .select("file", "line", "message")
        .collect()
        .join(keys, on=["file", "line"], how="semi")
        .sort("file", "line", "message", nulls_last=True)
        .unique(["file", "line"], keep="first", maintain_order=True)
    )
    return {(f, n): m for f, n, m in rows.iter_rows()}


def _samples(
    messages: dict[tuple[str, int], str | None], locations: list[str], root: str
) -> list[dict[str, Any]]:
    """The raw rows behind ``file:line`` references, so a reader can check a number."""
    return [
        {"file": words.relative_path(file, root), "line": line, "message": messages[file, line]}
        for file, line in sorted(set(_sample_keys(locations)))
        if (file, line) in messages
    ]


def _signatures(events: pl.DataFrame, root: str) -> list[dict[str, Any]]:
    """The commonest warning and error signatures per source, with first and last seen."""
    problems = events.filter(
        (pl.col("kind") == "log") & pl.col("level").is_in(["warning", "error", "critical"])
    )
    table = (
        problems.sort("ts", "file", "line", nulls_last=True)
        .group_by("source", "template")
        .agg(
            count=pl.len(),
            first_seen=pl.col("ts").min(),
            last_seen=pl.col("ts").max(),
            file=pl.col("file").first(),
            line=pl.col("line").first(),
        )
        .sort(["source", "count", "template"], descending=[False, True, False])
    )
    out = []
    for (source,), part in table.group_by("source", maintain_order=True):
        out.append(
            {
                "source": source,
                "rows": [
                    {
                        "template": r["template"],
                        "count": r["count"],
                        "first_seen": words.iso(r["first_seen"]),
                        "last_seen": words.iso(r["last_seen"]),
                        "example": f"{words.relative_path(r['file'], root)}:{r['line']}",
                    }
                    for r in part.head(TOP_SIGNATURES).iter_rows(named=True)
                ],
            }
        )
    return out


def _loading(loaded: Loaded, root: str) -> dict[str, Any]:
    files = loaded.summary.files
    assumptions = loaded.summary.assumptions
    read_rows = int(files["rows"].sum())
    total = loaded.scan().select(pl.len()).collect().item()
    return {
        "rows": total,
        "rows_read": read_rows,
        "rows_inferred": total - read_rows,
        "lines": int(files["lines"].sum()),
        "unparsed_lines": loaded.summary.unparsed_lines,
        "duplicate_lines": int(files["duplicate_lines"].sum()),
        "files": [
            {
                "file": words.relative_path(row["file"], root),
                "format": row["format"],
                "prefix": row.get("prefix"),
                "lines": row["lines"],
                "rows": row["rows"],
                "continuation_lines": row["continuation_lines"],
                "unparsed_lines": row["unparsed_lines"],
                "duplicate_lines": row["duplicate_lines"],
                "duplicate_rows": row["duplicate_rows"],
                "duplicate_of": [words.relative_path(f, root) for f in row["duplicate_of"]],
                "first_unparsed": list(row["first_unparsed"] or []),
                "problem": row["problem"],
            }
            for row in files.iter_rows(named=True)
        ],
        "formats": files.group_by("format", maintain_order=True)
        .agg(
            files=pl.len(),
            lines=pl.col("lines").sum(),
            rows=pl.col("rows").sum(),
            unparsed_lines=pl.col("unparsed_lines").sum(),
        )
        .sort(["lines", "format"], descending=[True, False], nulls_last=True)
        .to_dicts(),
        "assumption_groups": loaded.summary.assumption_groups(
            lambda path: words.relative_path(path, root)
        ),
        "assumptions": [
            {**a, "file": words.relative_path(a["file"], root)} for a in assumptions.to_dicts()
        ],
        "unparsed": [
            {**w, "file": words.relative_path(w["file"], root)}
            for w in loaded.summary.warnings.filter(pl.col("unparsed"))
            .head(LISTED_UNPARSED)
            .select("file", "line", "reason", "text")
            .to_dicts()
        ],
        "line_notes": [
            {**w, "file": words.relative_path(w["file"], root)}
            for w in loaded.summary.warnings.filter(
                ~pl.col("unparsed") & pl.col("line").is_not_null()
            )
            .head(LISTED_UNPARSED)
            .select("file", "line", "reason", "text")
            .to_dicts()
        ],
    }
