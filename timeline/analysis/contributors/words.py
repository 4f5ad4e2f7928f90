"""Words: the sentences that explain each change's figures, one per kind of evidence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl

from timeline.analysis.contributors.changes import _kind
from timeline.analysis.contributors.targets import Signature, Target
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


def _evidence(
    row: dict,
    p: Any,
    *,
    window: timedelta,
    before_window: timedelta,
    diff_text: str | None,
    new: list[Signature],
) -> list[str]:
    target, change = p.target, p.change
    w = duration_text(window.total_seconds())
    wb = duration_text(before_window.total_seconds())
    scale = window / before_window
    lead = row["lead_s"]
    said = []
    if row["when"] == "before onset":
        said.append(f"made {duration_text(lead)} before the onset ({target.onset:%m-%d %H:%M})")
    else:
        said.append(f"made during the incident, {duration_text(-lead)} after the onset")
    name = change["node"] or change["name"]
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
    if p.name_match:
        said.append(
            f"its target '{p.matched_name}' is the source or component of {_names(row['affected'])}"
        )
    if p.named:
        hosts = ", ".join(p.shared[:3]) + (" ..." if len(p.shared) > 3 else "")
        said.append(
            f"it touched {len(p.named)} host(s), {len(p.shared)} of them with the errors"
            + (f" ({hosts})" if p.shared else "")
            + (
                ""
                if p.explicit
                else f"; a {_kind(change)} reaches every host, so all hosts are compared"
            )
        )
    where = "on the hosts it touched" if p.explicit else "on all hosts"
    said.append(
        f"{where}, {_names(row['affected'], 2)}: {row['before']:,} rows in the {wb} before, "
        f"{row['after']:,} in the {w} after ({_factor(row['before'], row['after'], scale)})"
    )
    if row["cohort_bits"] is not None:
        ub, ua = row["untouched_before"], row["untouched_after"]
        bits = row["cohort_bits"]
        verdict = (
            "the touched hosts got worse than the others"
            if bits >= 1
            else "the touched hosts got better than the others"
            if bits <= -1
            else "touched and untouched hosts moved alike, so the change does not explain it"
        )
        said.append(
            f"cohort: {row['before']:,} -> {row['after']:,} rows on the {len(p.explicit)} "
            f"touched host(s) ({_factor(row['before'], row['after'], scale)}) against "
            f"{ub:,} -> {ua:,} on the {row['untouched_hosts']} untouched "
            f"({_factor(ub, ua, scale)}): {verdict} ({bits:+.1f} bits)"
        )
    for sig in new:
        said.append(
            f"'{_short(sig.template)}' was seen for the first time "
            f"{duration_text((sig.first_seen_at - change['ts']).total_seconds())} after it"
        )
    if row["precursor_start"] is not None:
        hosts = row["precursor_hosts"]
        said.append(
            f"precursor: a trickle of '{_short(row['precursor_signature'])}' began "
            f"{duration_text((row['precursor_start'] - change['ts']).total_seconds())} after it "
            f"({row['precursor_start']:%m-%d %H:%M}) on {len(hosts)} host(s), "
            f"{duration_text((target.onset - row['precursor_start']).total_seconds())} before the "
            f"onset; {row['precursor_rows']:,} rows before the spike"
        )
    said.append(_role_sentence(row, target))
    if diff_text:
        said.append(diff_text)
    return said


def _role_sentence(row: dict, target: Target) -> str:
    role = row["role"]
    if role == "trigger":
        return (
            f"likely trigger: the incident began {duration_text(row['lead_s'])} after it, "
            "and its errors rose right after it"
        )
    if role == "precursor":
        return "precursor: the trickle that grew into the incident started after it"
    if role == "made worse":
        return "made it worse: the errors rose after it"
    if role == "mitigation":
        return "mitigation: the errors on its hosts stopped after it"
    return "no clear effect on the incident's errors"


def _diff_summaries(diffs: pl.DataFrame | None) -> dict[int, str]:
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
