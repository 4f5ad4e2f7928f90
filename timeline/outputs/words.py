"""Findings in words a reviewer would write: plurals, sizes, times, and the evidence for a
ranked change said in counts and hosts instead of scores.

Every function here is pure and small; the CLI, the reports and the notebook all use them,
so a sentence reads the same wherever it is printed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from timeline.analysis.contributors.words import timing_doubts
from timeline.analysis.incidents import CI_METRICS, duration_text
from timeline.analysis.rates import JOB_PERIOD, to_timedelta
from timeline.paths import relative_path

#: Roles of a ranked change that the evidence does not support; they are folded under
#: "considered, no evidence" rather than listed among the ranked changes.
NO_EVIDENCE_ROLES = frozenset(
    {"unrelated", "no clear effect", "considered, no evidence", "target not found"}
)
#: What each role means, in the words of a review.
ROLE_WORDS = {
    "trigger": "likely trigger",
    "precursor": "precursor",
    "contributing": "contributed",
    "made worse": "made it worse",
    "latent cause": "latent cause",
    "mitigation": "mitigated it",
}


def code(text: str | None, limit: int = 80) -> str:
    """Log text as a code span, cut to ``limit`` characters; a backtick inside becomes a
    quote so the span holds.

    >>> code("A IN <NAME> SERVFAIL"), code("x" * 9, limit=5)
    ('`A IN <NAME> SERVFAIL`', '`xxxx…`')
    """
    text = " ".join(str(text or "").replace("`", "'").split())
    return "`" + (text if len(text) <= limit else text[: limit - 1] + "…") + "`"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and ``word`` in the right number.

    >>> plural(1, "host"), plural(12, "host"), plural(0, "match", "matches")
    ('1 host', '12 hosts', '0 matches')
    """
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def on_hosts(n: int) -> str:
    """`` on 3 hosts``, or nothing when no row names a host (pods' own logs saved one
    file each): "on 0 hosts" would say the errors were nowhere.

    >>> on_hosts(3), on_hosts(0)
    (' on 3 hosts', '')
    """
    return f" on {plural(n, 'host')}" if n else ""


def size_text(n_bytes: int) -> str:
    """A file size as people say it.

    >>> size_text(512), size_text(36_500), size_text(4_200_000)
    ('512 bytes', '36 KB', '4.2 MB')
    """
    if n_bytes < 1000:
        return plural(n_bytes, "byte")
    if n_bytes < 1_000_000:
        return f"{n_bytes / 1000:.0f} KB"
    return f"{n_bytes / 1e6:.1f} MB"


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the second, as the findings schema writes times.

    >>> from datetime import timezone
    >>> iso(datetime(2023, 3, 14, 18, 0, 0, 339725, tzinfo=timezone.utc))
    '2023-03-14T18:00:00Z'
    """
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def minute(moment: datetime | None) -> str:
    """``2023-03-14 18:00``, the way the reports print a time (always UTC)."""
    return "?" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def location(loc: str, root: str) -> str:
    """A ``file:line`` reference with the file relative to ``root``."""
    file, sep, line = loc.rpartition(":")
    return f"{relative_path(file, root)}:{line}" if sep and line.isdigit() else loc


def short_host(host: str) -> str:
    """A node name without its domain, as people say it (``ip-10-20-1-32``)."""
    return host.split(".", 1)[0] if host and not host[0].isdigit() else host


def short_change(c: dict[str, Any]) -> str:
    """``upgrade kube-proxy`` from a change's type and target, for one-line listings.

    >>> short_change({"change_type": "reboot", "target": "node/ip-10-20-3-62.ec2.internal"})
    'reboot ip-10-20-3-62'
    """
    name = (c.get("target") or "").rstrip("/").rsplit("/", 1)[-1]
    if (c.get("target") or "").startswith("node/"):
        name = short_host(name)
    return f"{c.get('change_type') or 'change'} {name}".strip()


def kinds_text(kinds: list[str]) -> str:
    """The kinds of the changes made to a host in one minute; an unnamed change (``other``)
    beside a named one is said by the named one.

    >>> kinds_text(["other", "reboot"]), kinds_text(["other"])
    ('reboot', 'other')
    """
    return "+".join([k for k in kinds if k != "other"] or kinds)


def versions(change: dict[str, Any]) -> str:
    """``v1.23.17 → v1.24.10`` when a change names versions (tags only when both are
    tags of one image), else empty.

    >>> image = "registry.k8s.io/kube-proxy:"
    >>> versions({"from": image + "v1.23.17", "to": image + "v1.24.10"})
    'v1.23.17 → v1.24.10'
    >>> versions({"from": None, "to": "1.22.13"})
    'to 1.22.13'
    """
    old, new = change.get("from"), change.get("to")
    if not (old or new):
        return ""
    if old and new and ":" in old and old.rsplit(":", 1)[0] == new.rsplit(":", 1)[0]:
        old, new = old.rsplit(":", 1)[1], new.rsplit(":", 1)[1]
    if not old:
        return f"to {new}"
    return f"{old} → {new}" if new else f"from {old}"


def relative_time(seconds: float | None, positive: str, negative: str) -> str:
    """``'10m before'`` for 600 s, ``'5s after'`` for -5 s (with ``positive='before'``).

    >>> relative_time(600, "before", "after"), relative_time(-5, "before", "after")
    ('10m before', '5s after')
    """
    if seconds is None:
        return "?"
    return f"{duration_text(abs(seconds))} {positive if seconds >= 0 else negative}"


def factor(before: float, after: float) -> str:
    """How a rate moved, as a reader says it.

    >>> factor(23, 415), factor(400, 20), factor(0, 12), factor(5, 0), factor(3, 3)
    ('×18', '÷20', 'from none', 'to none', 'unchanged')
    """
    if before == 0 and after == 0:
        return "none either side"
    if before == 0:
        return "from none"
    if after == 0:
        return "to none"
    ratio = after / before
    if 0.8 <= ratio <= 1.25:
        return "unchanged"
    value, sign = (ratio, "×") if ratio > 1 else (1 / ratio, "÷")
    return f"{sign}{value:.0f}" if value >= 10 else f"{sign}{value:.1f}"


#: How far back a CI series counts its failed and cancelled jobs at each bucket.
CI_PERIOD = to_timedelta(JOB_PERIOD)
#: What each CI metric counts, as a review says it.
CI_MEASURES = {
    "queue_delay_p95_s": "p95 queue delay",
    "failed_jobs": "failed jobs",
    "cancelled_jobs": "cancelled jobs",
}


def _amount(value: float | None) -> str:
    """A count as a review says it: ``none``, ``4``, ``2.5``."""
    if not value:
        return "none"
    return f"{value:,.1f}".removesuffix(".0")


def spike_measure(spike: dict[str, Any], *, bucket: str) -> str:
    """What a spike measured and how high it went, against its baseline: a CI delay as a
    duration, failed or cancelled jobs in the trailing period they are counted over (failed
    ones of the jobs there, against the share that usually fails), log rows in one bucket
    of ``bucket``.

    >>> spike_measure({"metric": "queue_delay_p95_s", "peak_value": 1446.4, "baseline": 35.1},
    ...               bucket="30s")
    'p95 queue delay up to 24m against 35s before'
    >>> spike_measure({"metric": "failed_jobs", "peak_value": 4.0, "baseline": 0.0}, bucket="30s")
    'failed jobs up to 4 in 15m against none before'
    >>> spike_measure({"metric": "failed_jobs", "peak_value": 5.0, "baseline": 0.0,
    ...                "peak_jobs": 6, "usual_share": 0.05}, bucket="1m")
    'failed jobs up to 5 of 6 in 15m against a usual 5% failing'
    >>> spike_measure({"metric": "errors", "peak_value": 8.0, "baseline": 1.0}, bucket="30s")
    'errors up to 8 in 30s against 1 before'
    """
    metric, peak, baseline = spike.get("metric"), spike.get("peak_value"), spike.get("baseline")
    if metric == "queue_delay_p95_s":
        return (
            f"{CI_MEASURES[metric]} up to {duration_text(peak)} against "
            f"{duration_text(baseline or 0)} before"
        )
    share = spike.get("usual_share")
    if metric == "failed_jobs" and share is not None and spike.get("peak_jobs"):
        return (
            f"failed jobs up to {_amount(peak)} of {spike['peak_jobs']} in "
            f"{duration_text(CI_PERIOD.total_seconds())} against a usual {share:.0%} failing"
        )
    if metric in CI_MEASURES:
        return (
            f"{CI_MEASURES[metric]} up to {_amount(peak)} in "
            f"{duration_text(CI_PERIOD.total_seconds())} against {_amount(baseline)} before"
        )
    return (
        f"{metric or 'rows'} up to {_amount(peak)} in {bucket} against {_amount(baseline)} before"
    )


def ci_spike_words(spikes: list[dict[str, Any]]) -> str | None:
    """The CI spikes among ``spikes`` (findings' spike entries), by executor, each with
    what spiked, how far, and a job row behind it; None when none is a CI spike.

    >>> ci_spike_words([{"source": "circleci", "signature": "machine jobs",
    ...     "metric": "queue_delay_p95_s", "measure": "p95 queue delay up to 24m",
    ...     "examples": ["jobs.json:12"]}, {"source": "circleci", "signature": "machine jobs",
    ...     "metric": "failed_jobs", "measure": "failed jobs up to 4", "examples": []}])
    'circleci `machine jobs`: p95 queue delay up to 24m (`jobs.json:12`), failed jobs up to 4'
    """
    by_executor: dict[tuple[str, str], list[str]] = {}
    for s in spikes:
        if s.get("metric") in CI_METRICS:
            seen = f" ({code(s['examples'][0])})" if s.get("examples") else ""
            key = (s["source"], s.get("signature") or "")
            by_executor.setdefault(key, []).append(s["measure"] + seen)
    said = [f"{source} {code(sig)}: {', '.join(m)}" for (source, sig), m in by_executor.items()]
    return "; ".join(said) or None


def _per_hour(count: int | None, window_s: float) -> float:
    return (count or 0) * 3600 / window_s if window_s else 0.0


def _hosts_phrase(n: int | None) -> str:
    n = int(n or 0)
    return "the host it touched" if n == 1 else f"the {n} hosts it touched"


#: Scopes whose counts were taken on the hosts a change touched; any other was counted on
#: every host, those no record names included.
HOST_SCOPES = ("node", "hosts")


def _unknown_hosts(c: dict[str, Any]) -> int:
    """How many of the rows counted after a change come from hosts no record names (only
    counts taken on every host hold any)."""
    return int(c.get("after_unknown_host") or 0)


def _failed_share_words(c: dict[str, Any], *, before_s: float, after_s: float) -> str:
    """``failed jobs 4% -> 65% of the jobs (2 of 50 in the 4h before, 11 of 17 in the 1h
    after)``: a change judged by the share of CI jobs that failed."""
    k1, n1, k2, n2 = (c[k] for k in ("failed_before", "jobs_before", "failed_after", "jobs_after"))
    return (
        f"failed jobs {100 * k1 / n1:.0f}% -> {100 * k2 / n2:.0f}% of the jobs ({k1:,} of "
        f"{n1:,} in the {duration_text(c['jobs_before_s'])} before, {k2:,} of "
        f"{n2:,} in the {duration_text(after_s)} after)"
    )


def rate_words(c: dict[str, Any], *, before_s: float, after_s: float) -> str | None:
    """``errors ×18 on the 12 hosts it touched, none on the others`` from the counts before
    and after a change (and on the hosts it did not touch, when those were compared). A
    count taken on every host says so, and how many of its rows no host can be named for.

    >>> rate_words({"before": 0, "after": 238, "touched_hosts": 1, "untouched_hosts": 2,
    ...     "untouched_before": 0, "untouched_after": 717, "scope": "hosts"},
    ...     before_s=3600, after_s=3600)
    'errors began after it on the host it touched, and began on the 2 others too'
    >>> rate_words({"before": 1, "after": 306, "touched_hosts": 1, "scope": "component",
    ...     "after_unknown_host": 212}, before_s=3600, after_s=3600)
    'errors ×306 on every host, 212 of the 306 after it from hosts no record names'
    >>> rate_words({"before": 2, "after": 11, "failed_before": 2, "jobs_before": 50,
    ...     "jobs_before_s": 14400, "failed_after": 11, "jobs_after": 17},
    ...     before_s=3600, after_s=3600)
    'failed jobs 4% -> 65% of the jobs (2 of 50 in the 4h before, 11 of 17 in the 1h after)'
    """
    if c.get("failed_after") is not None:
        return _failed_share_words(c, before_s=before_s, after_s=after_s)
    before, after = c.get("before"), c.get("after")
    if before is None or after is None or (before == 0 and after == 0):
        return None
    moved = factor(_per_hour(before, before_s), _per_hour(after, after_s))
    if c.get("scope") in HOST_SCOPES and c.get("touched_hosts"):
        where = f"on {_hosts_phrase(c.get('touched_hosts'))}"
    else:
        where = "on every host"
        unknown = _unknown_hosts(c)
        if unknown:
            where += f", {unknown:,} of the {after:,} after it from hosts no record names"
    text = {
        "from none": f"errors began after it {where}",
        "to none": f"errors stopped after it {where}",
    }.get(moved, f"errors {moved} {where}")
    untouched = c.get("untouched_hosts")
    if untouched:
        others = factor(
            _per_hour(c.get("untouched_before"), before_s),
            _per_hour(c.get("untouched_after"), after_s),
        )
        on_others = f"on the {plural(int(untouched), 'other')}"
        text += {
            "none either side": f", none {on_others}",
            "from none": f", and began {on_others} too",
            "to none": f", and stopped {on_others} too",
        }.get(others, f", {others} {on_others}")
    return text


def precursor_words(c: dict[str, Any]) -> str | None:
    """``a trickle of `X` began 55m after it, on 6 hosts (197 rows before the spike)``."""
    start = c.get("precursor_start")
    if start is None or c.get("ts") is None:
        return None
    hosts = len(c.get("precursor_hosts") or [])
    rows = c.get("precursor_rows") or 0
    return (
        f"a trickle of {code(c.get('precursor_signature'))} began "
        f"{duration_text((start - c['ts']).total_seconds())} after it{on_hosts(hosts)} "
        f"({plural(int(rows), 'row')} before the spike)"
    )


def footprint_words(c: dict[str, Any]) -> str | None:
    """``when the incident came, its errors fell on the host it touched: 59 rows there in
    the hour after the onset, none on the others``."""
    after = c.get("footprint_after")
    if not after or not (c.get("part_footprint") or c.get("role") == "latent cause"):
        return None
    others = c.get("footprint_others") or 0
    elsewhere = "none on the others" if not others else f"{others:,} on the others"
    return (
        f"when the incident came, its errors fell on {_hosts_phrase(c.get('touched_hosts'))}: "
        f"{plural(int(after), 'row')} there in the hour after the onset, {elsewhere}"
    )


def new_signature_words(c: dict[str, Any], *, said: frozenset[str] = frozenset()) -> str | None:
    """``2 signatures first seen after it: `A`, `B``` (those not in ``said`` named)."""
    new = list(c.get("new_signatures") or [])
    if not new:
        return None
    named = [s for s in new if s not in said][:2]
    shown = ": " + ", ".join(code(s) for s in named) if named else ""
    more = len(new) - len(named) if named else 0
    rest = f" and {more} more" if more > 0 else ""
    return f"{plural(len(new), 'signature')} first seen after it{shown}{rest}"


def relation_words(c: dict[str, Any]) -> str:
    """What ties a change to the incident's errors, or that nothing does."""
    parts = []
    if c.get("scope") == "silence":
        return "its host fell silent while the others logged the errors"
    if c.get("scope") == "named":
        name = (c.get("target") or "").rsplit("/", 1)[-1]
        parts.append(f"the errors name what it changed: '{name}' is in most of their lines")
    elif c.get("name_match"):
        parts.append("it changed a program that logged the errors")
    elif c.get("scope") == "namespace":
        namespace = (c.get("target") or "").split("/")[1:2] or ["?"]
        parts.append(
            f"it changed namespace {namespace[0]} as a whole, whose pods logged the errors"
        )
    touched, shared = c.get("touched_hosts"), len(c.get("shared_hosts") or [])
    # with errors from hosts no record names, the hosts it touched are those known
    known = " the logs name" if _unknown_hosts(c) else ""
    if touched:
        parts.append(
            f"it touched {plural(int(touched), 'host')}{known}, {shared} of them with the errors"
            if touched != 1
            else f"it touched 1 host{known}, {'one' if shared else 'not one'} with the errors"
        )
    called_out = c.get("called_out_hosts") or []
    if called_out:
        parts.append(
            f"the errors name {', '.join(called_out)}, so the other hosts' errors are its "
            "reach, not a comparison"
        )
    if not parts:
        return "it touches no host or program that logged the errors"
    return "; ".join(parts)


def timing_words(c: dict[str, Any]) -> str:
    """``20m before the onset`` or ``during the incident, 2h20m after the onset``."""
    lead = c.get("lead_s")
    if lead is None:
        return "time unknown"
    if lead >= 0:
        return f"{duration_text(lead)} before the onset"
    return f"during the incident, {duration_text(-lead)} after the onset"


def evidence_words(c: dict[str, Any], *, before_s: float = 900, after_s: float = 3600) -> list[str]:
    """The evidence for one ranked change, strongest first, each said once.

    ``c`` is a row of ``Analysis.contributors``; ``before_s`` and ``after_s`` are the
    windows its counts were taken over (the analysis' ``change_before`` and
    ``change_window``).
    """
    precursor = precursor_words(c)
    told = frozenset([c.get("precursor_signature")] if precursor else [])
    said = [rate_words(c, before_s=before_s, after_s=after_s), precursor]
    if c.get("role") == "precursor":
        said.reverse()
    footprint = footprint_words(c)
    if footprint:
        said.insert(0 if c.get("role") == "latent cause" else len(said), footprint)
    said.append(new_signature_words(c, said=told))
    told |= frozenset((c.get("new_signatures") or [])[:2])
    counts = c.get("before"), c.get("after")
    detail = (
        f"{c['before']:,} rows in the {duration_text(before_s)} before, "
        f"{c['after']:,} in the {duration_text(after_s)} after"
        if None not in counts and counts != (0, 0)
        else None
    )
    counted = c.get("affected") or []
    affected = [s for s in counted if s not in told]
    if detail and counted:
        # the counts are of every signature affected, those already named above too
        more = f" and {len(affected) - 3} more" if len(affected) > 3 else ""
        named = ", ".join(code(s) for s in affected[:3]) + more
        above = len(counted) - len(affected)
        parts = [f"the {plural(above, 'signature')} above"] if above else []
        detail += " (of " + " and ".join([*parts, *([named] if affected else [])]) + ")"
    lines = [s for s in (*said, detail) if s]
    lines.extend(timing_doubts(c))
    lines.append(relation_words(c))
    lines.append(timing_words(c))
    return lines


def headline(c: dict[str, Any], *, before_s: float = 900, after_s: float = 3600) -> str:
    """The strongest evidence for one ranked change, in one short phrase."""
    if c.get("role") in NO_EVIDENCE_ROLES:
        return "no evidence: " + relation_words(c).split(";")[0].removeprefix("it ")
    return evidence_words(c, before_s=before_s, after_s=after_s)[0]


def role_words(role: str | None) -> str:
    """The role of a ranked change as a review says it (``made it worse``)."""
    if role in NO_EVIDENCE_ROLES:
        return "no evidence"
    return ROLE_WORDS.get(role or "", role or "")
