"""Words: the sentences that explain each change's figures, one per kind of evidence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl

from timeline.analysis.contributors.changes import _kind
from timeline.analysis.contributors.measures import CLASS_SIZE
from timeline.analysis.contributors.targets import Signature
from timeline.analysis.incidents import duration_text


def _factor(before: int, after: int, scale: float) -> str:
    """How the rate moved, in words: ``rate x165``, ``rate /4.0``, ``from none``."""
    if before == 0 and after == 0:
        return "none either side"
    if before == 0:
        return "from none"
    if after == 0:
        return "to none"
    ratio = after / (before * scale)
    if 0.8 <= ratio <= 1.25:
        return "rate about the same"
    return f"rate x{ratio:.1f}" if ratio >= 1 else f"rate /{1 / ratio:.1f}"


def _names(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(f"'{_short(i)}'" for i in items[:limit])
    more = len(items) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _short(text: str, limit: int = 60) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _share(part: int, whole: int) -> str:
    """A share in words: ``7%``, ``92%``."""
    return f"{100 * part / whole:.0f}%" if whole else "?"


def _p(value: float | None) -> str:
    """A p-value in words: ``p < 1e-6``, ``p = 0.003``."""
    if value is None:
        return "p = ?"
    if value < 1e-6:
        return "p < 1e-6"
    return f"p = {value:.2g}"


def _hosts_word(n: int, executors: bool = False) -> str:
    noun = "executor" if executors else "host"
    return f"{n} {noun}{'s' if n != 1 else ''}"


def timing_doubts(row: dict) -> list[str]:
    """Why a change whose errors rose after it is still no trigger: they began only after
    a later change, or with other programs' errors well after it, or its hosts carried
    them already, from an earlier change."""
    said = []
    if row.get("errors_began_after"):
        said.append(
            "no row of its errors came before a later change, which began them: "
            f"{row['errors_began_after']}"
        )
    if row.get("began_with_others"):
        said.append(
            "its errors began only well after it, with the errors of programs it did not "
            f"change: {row['began_with_others']}"
        )
    if row.get("hosts_explained_by"):
        said.append(
            "its hosts with the errors already had a trickle of them, begun by an earlier "
            f"change on those hosts: {row['hosts_explained_by']}"
        )
    return said


def evidence_sentences(
    row: dict,
    p: Any,
    *,
    window: timedelta,
    diff_text: str | None,
    new: list[Signature],
    lines: tuple[list[dict], list[dict]] = ([], []),
) -> list[str]:
    """One sentence per kind of evidence for one change against one target, in plain
    words with the counts behind them, then one per score part that counted."""
    target, change = p.target, p.change
    w = duration_text(window.total_seconds())
    wb = duration_text(p.before_window.total_seconds())
    scale = window / p.before_window
    lead = row["lead_s"]
    said = []
    if row["when"] == "before onset":
        said.append(f"made {duration_text(lead)} before the onset ({target.onset:%m-%d %H:%M})")
    else:
        said.append(f"made during the incident, {duration_text(-lead)} after the onset")
    name = change["node"] or change["name"]
    if row["role"] == "target not found":
        said.append(
            f"target not found in the logs: '{_short(change['note'] or name)}' names no host, "
            "program or CI executor that the logs show"
        )
        return said
    if p.relation <= 0:
        why = f"unrelated: '{name}' is not a source or component of the errors"
        if p.named:
            why += f", and none of the {len(p.named)} host(s) it touched show them"
        else:
            why += ", and it names no host"
        said.append(why)
        if diff_text:
            said.append(diff_text)
        return said
    if p.named_by_errors:
        said.append(
            f"the errors name its target: '{p.matched_name}' is in most lines of "
            f"{_names(row['affected'])}"
        )
    elif p.ci_side:
        said.append(
            f"a CI-side change (its words name CI: '{_short(p.ci_side)}'), so it reaches the "
            f"jobs of {_names(row['affected'])}"
        )
    elif p.name_match:
        said.append(
            f"its target '{p.matched_name}' is the source or component of {_names(row['affected'])}"
        )
    elif p.namespace:
        said.append(
            f"it acts on every pod of namespace {p.namespace}, where {_names(row['affected'])} ran"
        )
    if p.silence:
        said.append(
            f"{change['note']}: the errors began on the others while it was silent, so they "
            "are counted on all hosts"
        )
    elif p.named:
        hosts = ", ".join(p.shared[:3]) + (" ..." if len(p.shared) > 3 else "")
        said.append(
            f"it touched {_hosts_word(len(p.named), _on_executors(p))}, {len(p.shared)} of "
            "them with the errors"
            + (f" ({hosts})" if p.shared else "")
            + (
                ""
                if p.explicit
                else f"; a {_kind(change)} reaches every host, so all hosts are compared"
            )
        )
    if p.called_out:
        said.append(
            f"the errors name {_names(list(p.called_out))}, which it touched: the other "
            "hosts' errors are its reach, not a comparison"
        )
    said.extend(_measure_sentences(row, p, w=w, wb=wb, scale=scale))
    said.extend(timing_doubts(row))
    for sig in new:
        said.append(
            f"new: '{_short(sig.template)}' was seen for the first time "
            f"{duration_text((sig.first_seen_at - change['ts']).total_seconds())} after it"
        )
    if row["precursor_start"] is not None:
        hosts = row["precursor_hosts"]
        said.append(
            f"precursor: a trickle of '{_short(row['precursor_signature'])}' began "
            f"{duration_text((row['precursor_start'] - change['ts']).total_seconds())} after it "
            f"({row['precursor_start']:%m-%d %H:%M}) on {len(hosts)} host(s)"
            + (", all of them hosts it touched" if p.explicit and _within(hosts, p) else "")
            + f", {duration_text((target.onset - row['precursor_start']).total_seconds())} "
            f"before the onset; {row['precursor_rows']:,} rows before the spike"
        )
    if row["routine"]:
        said.append(
            f"base rate: {row['class_size']} changes like it ({row['change_class']}) were "
            "made around this incident; "
            + (
                f"{row['class_like']} of the others were followed by as much"
                if row["class_like"] * 4 >= row["class_size"] - 1
                else "one of them always sits near an onset, and only timing ties this one "
                "to the errors"
            )
            + ", so it is judged by all of them and its rise counts for nothing"
        )
    elif row["class_size"] and row["class_size"] >= CLASS_SIZE:
        said.append(
            f"base rate: of {row['class_size']} changes like it ({row['change_class']}), what "
            f"followed this one stands out; its p-values count {row['class_size']} times over"
        )
    said.extend(_quote_sentences(lines))
    said.append(_role_sentence(row))
    if diff_text:
        said.append(diff_text)
    return said


def _within(hosts: list[str], p: Any) -> bool:
    return bool(hosts) and all(h.lower().split(".")[0] in p.explicit for h in hosts)


def _on_executors(p: Any) -> bool:
    """Whether what a change touched are CI executors rather than hosts."""
    executors = {e.lower() for e in p.change.get("executors") or ()}
    return bool(p.named) and set(p.named) <= executors


def _measure_sentences(row: dict, p: Any, *, w: str, wb: str, scale: float) -> list[str]:
    said = []
    executors = _on_executors(p)
    n = len(p.explicit) or len(p.named)
    where = f"on the {_hosts_word(n, executors)} it touched" if p.explicit else "on all hosts"
    before, after = row["before"], row["after"]
    unit = "minutes that delayed jobs waited (and failed jobs)" if executors else "rows"
    measured = (
        f"{before:,} {unit} in the {wb} before, {after:,} in the {w} after "
        f"({_factor(before, after, scale)}, {_p(row['effect_p'])})"
    )
    if row.get("failed_after") is not None:
        measured = (
            f"{row['failed_before']:,} of {row['jobs_before']:,} jobs failed in the "
            f"{duration_text(row['jobs_before_s'])} before, "
            f"{row['failed_after']:,} of {row['jobs_after']:,} in the {w} after "
            f"(share {_share(row['failed_before'], row['jobs_before'])} -> "
            f"{_share(row['failed_after'], row['jobs_after'])}, {_p(row['effect_p'])})"
        )
    said.append(
        f"effect: {_names(row['affected'], 2)} {where}: {measured}"
        + (
            " (not scored: the untouched hosts moved alike)"
            if row["cohort_bits"] is not None and not row["part_effect"] and row["effect_p"] < 0.05
            else ""
        )
    )
    if row["cohort_bits"] is not None:
        ub, ua = row["untouched_before"], row["untouched_after"]
        moved = _factor(before, after, scale)
        other = "none on the others" if ub == ua == 0 else f"{_factor(ub, ua, scale)} on the others"
        verdict = (
            "the touched hosts got worse than the others"
            if row["part_cohort"] and row["part_cohort"] > 0
            else "the touched hosts got better than the others"
            if row["part_cohort"] and row["part_cohort"] < 0
            else "touched and untouched hosts moved alike, so the change does not explain it"
        )
        said.append(
            f"cohort: errors {moved} on the {_hosts_word(len(p.explicit))} it touched "
            f"({before:,} -> {after:,}), {other} ({ub:,} -> {ua:,} on "
            f"{_hosts_word(row['untouched_hosts'])}): {verdict} "
            f"({_p(row['cohort_p'])}, {row['cohort_bits']:+.1f} bits)"
        )
    if row["footprint_bits"] is not None:
        ta, ua = row["footprint_after"], row["footprint_others"]
        verdict = (
            "the incident's errors fell on the hosts it touched"
            if row["part_footprint"] and row["part_footprint"] > 0
            else "the incident's errors did not fall mostly where it acted"
        )
        said.append(
            f"footprint: in the {w} after the onset, {ta:,} rows on the "
            f"{_hosts_word(len(p.explicit))} it touched and {ua:,} on "
            f"{_hosts_word(row['untouched_hosts'] or 0)} it did not: {verdict} "
            f"({_p(row['footprint_p'])}, {row['footprint_bits']:+.1f} bits against before)"
        )
    if row["part_alignment"] is not None:
        n = len(p.explicit)
        u = row["untouched_hosts"] or 0
        if row["part_alignment"] >= 0:
            said.append(
                f"alignment: on {row['aligned_hosts']} of the {n} hosts it touched the errors "
                f"began within {w} after that host was touched"
                + (f", against {row['untouched_started']} of {u} others" if u else "")
            )
        else:
            said.append(
                f"alignment: on {row['stopped_hosts']} of the {n} hosts it touched the errors "
                f"stopped within {w} after that host was touched"
                + (f", against {row['untouched_stopped']} of {u} others" if u else "")
            )
    return said


def _quote_sentences(lines: tuple[list[dict], list[dict]]) -> list[str]:
    said = []
    for label, rows in (("last error before it", lines[0][-1:]), ("first after", lines[1][:1])):
        for r in rows:
            said.append(
                f"{label}: {r['file']}:{r['line']} ({r['host'] or '?'}) '{_short(r['message'])}'"
            )
    return said


def _role_sentence(row: dict) -> str:
    role = row["role"]
    if role == "trigger":
        return (
            f"likely trigger: the incident began {duration_text(row['lead_s'])} after it, "
            "and the evidence above says its errors rose because of it"
        )
    if role == "precursor":
        return "precursor: the errors that grew into the incident started after it, where it acted"
    if role == "latent cause":
        return (
            "latent cause: nothing rose right after it, but when the incident came its "
            "errors fell on the hosts it had touched"
        )
    if role == "made worse":
        return "made it worse: the errors rose after it, beyond chance"
    if role == "mitigation":
        return "mitigation: the errors on its hosts stopped after it"
    if role == "considered, no evidence":
        return (
            "considered, no evidence: it is among the nearest changes before the onset, but "
            "nothing in the data ties the errors to it beyond chance"
        )
    return "no clear effect on the incident's errors"


def diff_summaries(diffs: pl.DataFrame | None) -> dict[int, str]:
    if diffs is None or diffs.height == 0:
        return {}
    out = {}
    counts = diffs.group_by("change_id", "status").agg(
        n=pl.len(), first=pl.col("template").sort_by("after", descending=True).first()
    )
    for change_id, group in counts.group_by("change_id"):
        by_status = {r["status"]: r for r in group.iter_rows(named=True)}
        bits = []
        for status in ("new", "vanished", "risen", "fallen"):
            if status in by_status:
                r = by_status[status]
                bits.append(f"{r['n']} {status} (e.g. '{_short(r['first'], 40)}')")
        out[change_id[0]] = "signatures around it: " + "; ".join(bits)
    return out
