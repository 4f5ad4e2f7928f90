"""Score: the parts of the evidence combined into one number per incident and change, each
part kept in its own column, and the role and rank that follow from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from timeline.analysis.contributors.changes import _TS, _host_key, names_match, node_local
from timeline.analysis.contributors.measures import RowCounter
from timeline.analysis.contributors.targets import Signature, Target, host_population
from timeline.analysis.contributors.words import _diff_summaries, _evidence
from timeline.analysis.rates import to_timedelta

WEIGHTS = {
    "relation": 1.0,
    "onset": 2.0,
    "effect": 2.0,
    "cohort": 3.0,
    "new": 0.5,
    "precursor": 1.5,
}
#: A rate change of this many bits (a factor of 2**FULL_BITS) scores full marks.
FULL_BITS = 3.0
#: Errors have stopped on a change's hosts when their rate after it is at most this share
#: of the rate before it.
STOPPED = 1 / 8


def _contributor_schema(id_name: str) -> dict[str, pl.DataType]:
    return {
        id_name: pl.UInt32(),
        "change_id": pl.UInt32(),
        "ts": _TS,
        "change_type": pl.String(),
        "target": pl.String(),
        "description": pl.String(),
        "inferred": pl.Boolean(),
        "lead_s": pl.Float64(),
        "when": pl.String(),
        "relation": pl.Float64(),
        "name_match": pl.Boolean(),
        "scope": pl.String(),
        "touched_hosts": pl.UInt32(),
        "shared_hosts": pl.List(pl.String),
        "host_share": pl.Float64(),
        "affected": pl.List(pl.String),
        "before": pl.Int64(),
        "after": pl.Int64(),
        "rate_bits": pl.Float64(),
        "untouched_hosts": pl.UInt32(),
        "untouched_before": pl.Int64(),
        "untouched_after": pl.Int64(),
        "cohort_bits": pl.Float64(),
        "new_signatures": pl.List(pl.String),
        "precursor_signature": pl.String(),
        "precursor_start": _TS,
        "precursor_rows": pl.UInt32(),
        "precursor_hosts": pl.List(pl.String),
        "part_relation": pl.Float64(),
        "part_onset": pl.Float64(),
        "part_effect": pl.Float64(),
        "part_cohort": pl.Float64(),
        "part_new": pl.Float64(),
        "part_precursor": pl.Float64(),
        "score": pl.Float64(),
        "score_parts": pl.String(),
        "role": pl.String(),
        "examples": pl.List(pl.String),
        "evidence": pl.List(pl.String),
    }


def _empty_contributors(id_name: str) -> pl.DataFrame:
    schema = _contributor_schema(id_name)
    return pl.DataFrame(schema={id_name: schema.pop(id_name), "rank": pl.UInt32, **schema})


# --- ranking ------------------------------------------------------------------------------


@dataclass
class _Pair:
    target: Target
    change: dict
    affected: list[Signature]
    name_match: bool
    matched_name: str | None
    named: dict[str, datetime]
    explicit: dict[str, datetime]
    shared: list[str]
    host_share: float | None
    relation: float
    untouched: frozenset[str] = frozenset()
    counts: dict[str, int] = field(default_factory=dict)


def rank_changes(
    targets: list[Target],
    changes: pl.DataFrame,
    frame: pl.DataFrame,
    *,
    lookback: str | timedelta = "48h",
    window: str | timedelta = "1h",
    before_window: str | timedelta = "15m",
    precursor_window: str | timedelta = "6h",
    tau: str | timedelta = "1h",
    min_rows: int = 10,
    keep: int | None = None,
    id_name: str = "incident_id",
    diffs: pl.DataFrame | None = None,
    population: dict[str, frozenset[str]] | None = None,
    counter: RowCounter | None = None,
) -> pl.DataFrame:
    """Rank the changes made before and during each target, with the evidence for each.

    Parameters
    ----------
    targets
        Incidents (:func:`incident_targets`) or spikes (:func:`spike_targets`).
    changes
        :func:`change_events` of ``frame``.
    frame
        The event frame, for counting rows.
    lookback
        How long before a target's onset a change is still a candidate.
    window
        The span after a change whose rate is compared with the rate before it.
    before_window
        The span before a change whose rate is the comparison. It is short, so that a
        change made while errors were already climbing is compared with where they
        stood when it was made, not an hour earlier.
    precursor_window
        How soon after a change a precursor trickle must begin to be credited to it.
    tau
        The time scale of the ``onset`` part: a change ``tau`` before the onset keeps
        ``1/e`` of it.
    min_rows
        Fewer rows than this behind a comparison shrink its part.
    keep
        Keep only the best ``keep`` changes per target (all if None).
    id_name
        The name of the target id column (``incident_id`` or ``spike_id``).
    diffs
        :func:`signature_diffs` of the changes, summarised in the evidence if given.
    population, counter
        :func:`host_population` of ``frame`` and a :class:`RowCounter` over it, to share
        between calls (made here if not given).

    Returns
    -------
    pl.DataFrame
        One row per target and candidate change: ``rank`` puts the changes that
        contributed first (highest score first), then the mitigations (lowest score
        first), then the rest (unrelated at 0, then those the evidence clears);
        the change (``change_id``, ``ts``, ``change_type``, ``target``,
        ``description``, ``inferred``), ``lead_s`` (onset minus change time, negative
        during the incident), ``when``, the relation (``name_match``, ``scope``,
        ``touched_hosts``, ``shared_hosts``, ``host_share``, ``affected``), the counts
        (``before``, ``after``, ``rate_bits``, ``untouched_hosts``, ``untouched_before``,
        ``untouched_after``, ``cohort_bits``), ``new_signatures``, the precursor
        (``precursor_signature``, ``precursor_start``, ``precursor_rows``,
        ``precursor_hosts``), the parts (``part_*``), ``score``, ``score_parts`` (the sum
        written out), ``role`` (``trigger``, ``precursor``, ``made worse``,
        ``mitigation``, ``no clear effect``, ``unrelated``), ``evidence`` (sentences) and
        ``examples`` (``file:line`` of the change's rows).
    """
    lookback_td, window_td = to_timedelta(lookback), to_timedelta(window)
    before_td = to_timedelta(before_window)
    precursor_td, tau_td = to_timedelta(precursor_window), to_timedelta(tau)
    change_rows = changes.sort("ts").to_dicts()
    population = population if population is not None else host_population(frame)
    pairs = [
        _pair(target, change, population)
        for target in targets
        for change in change_rows
        if target.onset - lookback_td <= change["ts"] <= target.end
    ]
    if not pairs:
        return _empty_contributors(id_name)
    wanted = {(s.source, s.template) for p in pairs for s in p.affected}
    if counter is None:
        counter = RowCounter(frame, wanted)
    _count_windows(pairs, counter, before=before_td, after=window_td)
    credited = _precursor_credit(pairs, precursor_td)
    diff_text = _diff_summaries(diffs)
    data_start = frame.select(pl.col("ts").min()).item()
    scored = [
        _score(
            p,
            window=window_td,
            before_window=before_td,
            tau=tau_td,
            min_rows=min_rows,
            credited=credited.get(id(p)),
            data_start=data_start,
        )
        for p in pairs
    ]
    schema = _contributor_schema("target_id")
    schema.pop("evidence")
    table = pl.DataFrame([row for row, _ in scored], schema=schema, orient="row").with_row_index(
        "_pair"
    )
    # Changes that contributed first, best first; then the mitigations, clearest first;
    # then the rest, down to those the evidence clears.
    mitigation = pl.col("role") == "mitigation"
    group = pl.when(mitigation).then(1).when(pl.col("score") > 0).then(0).otherwise(2)
    strength = pl.when(mitigation).then(-pl.col("score")).otherwise(pl.col("score"))
    table = (
        table.sort(
            [pl.col("target_id"), group, strength, "ts"],
            descending=[False, False, True, False],
            maintain_order=True,
        )
        .with_columns(rank=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).over("target_id"))
        .rename({"target_id": id_name})
    )
    if keep is not None:
        table = table.filter(pl.col("rank") <= keep)
    # the sentences, for the rows kept only
    evidence = []
    for i in table["_pair"].to_list():
        row, new = scored[i]
        p = pairs[i]
        evidence.append(
            _evidence(
                row,
                p,
                window=window_td,
                before_window=before_td,
                diff_text=diff_text.get(p.change["change_id"]),
                new=new,
            )
        )
    table = table.with_columns(evidence=pl.Series(evidence, dtype=pl.List(pl.String))).drop("_pair")
    return table.select(id_name, "rank", *[c for c in table.columns if c not in (id_name, "rank")])


def _pair(target: Target, change: dict, population: dict[str, frozenset[str]]) -> _Pair:
    node = _host_key(change["node"])
    names = [] if node else (change["names"] or [change["name"]])
    matched, matched_name = [], None
    for sig in target.signatures:
        for n in names:
            if names_match(n, sig.source) or any(names_match(n, c) for c in sig.components):
                matched.append(sig)
                matched_name = matched_name or n
                break
    named = {_host_key(ht["host"]): ht["ts"] for ht in change["host_times"] or () if ht["host"]}
    if node and not named:
        named = {node: change["ts"]}
    shared = sorted(set(named) & target.hosts)
    host_share = len(shared) / len(named) if named else None
    explicit = named if node_local(change) else {}
    relation = max(1.0 if matched else 0.0, host_share or 0.0)
    affected = matched or list(target.signatures)
    untouched: frozenset[str] = frozenset()
    if explicit:
        everyone = frozenset().union(*(population.get(s.source, frozenset()) for s in affected))
        untouched = everyone - set(explicit)
    return _Pair(
        target=target,
        change=change,
        affected=affected,
        name_match=bool(matched),
        matched_name=matched_name,
        named=named,
        explicit=explicit,
        shared=shared,
        host_share=host_share,
        relation=relation,
        untouched=untouched,
    )


def _count_windows(
    pairs: list[_Pair], counter: RowCounter, *, before: timedelta, after: timedelta
) -> None:
    """Fill each pair's ``counts``: rows of its affected signatures in the ``before``
    and ``after`` windows, on the hosts it touched (``t_``, each at its own time), in all
    (``all_``) and on its hosts at its first time (``s_``), so that untouched = all - s."""
    q, meta, records = 0, [], []

    def ask(i: int, role: str, sig: Signature, hk: str | None, lo: datetime, hi: datetime):
        nonlocal q
        records.append((q, sig.source, sig.template, hk, lo, hi))
        meta.append((q, i, role))
        q += 1

    for i, p in enumerate(pairs):
        t0 = p.change["ts"]
        for sig in p.affected:
            if p.explicit:
                for hk, th in p.explicit.items():
                    ask(i, "t_before", sig, hk, th - before, th)
                    ask(i, "t_after", sig, hk, th, th + after)
                if p.untouched:
                    for hk in p.explicit:
                        ask(i, "s_before", sig, hk, t0 - before, t0)
                        ask(i, "s_after", sig, hk, t0, t0 + after)
            if not p.explicit or p.untouched:
                ask(i, "all_before", sig, None, t0 - before, t0)
                ask(i, "all_after", sig, None, t0, t0 + after)
    if not records:
        return
    queries = pl.DataFrame(
        records,
        schema={
            "q": pl.Int64,
            "source": pl.String,
            "template": pl.String,
            "hk": pl.String,
            "lo": _TS,
            "hi": _TS,
        },
        orient="row",
    )
    counted = counter.count(queries)
    roles = pl.DataFrame(
        meta, schema={"q": pl.Int64, "i": pl.Int64, "role": pl.String}, orient="row"
    )
    totals = roles.join(counted, on="q", how="left").group_by("i", "role").agg(pl.col("n").sum())
    for i, role, n in totals.iter_rows():
        pairs[i].counts[role] = int(n or 0)


def _precursor_credit(pairs: list[_Pair], precursor_window: timedelta) -> dict[int, list]:
    """For each precursor trickle of a target, the nearest related change made before it
    (within ``precursor_window``) gets the credit."""
    best: dict[tuple[int, str, str], _Pair] = {}
    for p in pairs:
        if p.relation <= 0 or p.change["ts"] >= p.target.onset:
            continue
        for sig in p.affected:
            start = sig.precursor_start
            if start is None or not (p.change["ts"] <= start <= p.change["ts"] + precursor_window):
                continue
            key = (p.target.target_id, sig.source, sig.template)
            if key not in best or p.change["ts"] > best[key].change["ts"]:
                best[key] = p
    credited: dict[int, list] = {}
    for (_tid, source, template), p in best.items():
        sig = next(s for s in p.affected if (s.source, s.template) == (source, template))
        credited.setdefault(id(p), []).append(sig)
    return credited


def _bits(before: int, after: int, scale: float) -> float:
    """The change in rate in bits; ``scale`` is the after window over the before window,
    and one row per after window smooths both sides."""
    return math.log2((after + 1) / (before * scale + 1))


def _part(bits: float, rows: int, min_rows: int) -> float:
    return max(-1.0, min(1.0, bits / FULL_BITS)) * min(1.0, rows / (2 * min_rows))


def _score(
    p: _Pair,
    *,
    window: timedelta,
    before_window: timedelta,
    tau: timedelta,
    min_rows: int,
    credited: list[Signature] | None,
    data_start: datetime,
) -> tuple[dict, list[Signature]]:
    """The row of numbers for one target and change, and the signatures new after it."""
    change, target = p.change, p.target
    t0 = change["ts"]
    c = p.counts
    if p.explicit:
        before, after = c.get("t_before", 0), c.get("t_after", 0)
    else:
        before, after = c.get("all_before", 0), c.get("all_after", 0)
    scale = window / before_window
    rate_bits = _bits(before, after, scale)
    effect = _part(rate_bits, before + after, min_rows)
    cohort = cohort_bits = untouched_before = untouched_after = None
    if p.explicit and p.untouched:
        untouched_before = c.get("all_before", 0) - c.get("s_before", 0)
        untouched_after = c.get("all_after", 0) - c.get("s_after", 0)
        cohort_bits = rate_bits - _bits(untouched_before, untouched_after, scale)
        cohort = _part(cohort_bits, before + after + untouched_before + untouched_after, min_rows)
        if cohort > 0 and rate_bits <= 0:
            # Its hosts did not get worse; the others only got better faster.
            cohort = 0.0
    lead = target.onset - t0
    before_onset = t0 < target.onset
    far = before_onset and lead >= window
    if far:
        # The window after it ends before the incident began: what it did then belongs
        # to the precursor (credited below), not to this incident.
        effect = 0.0
        cohort = None if cohort is None else 0.0
    primary = cohort if cohort is not None else effect
    closeness = math.exp(-lead / tau) if before_onset else 0.0
    onset_part = closeness * max(primary, 0.0)
    new = [
        s
        for s in p.affected
        if s.first_seen_at is not None
        and s.first_seen_at > data_start
        and t0 <= s.first_seen_at < t0 + window
    ]
    new_part = 1.0 if new and not far else 0.0
    precursor = credited or []
    precursor_part = 1.0 if precursor else 0.0
    parts = {
        "onset": onset_part,
        "effect": None if cohort is not None else effect,
        "cohort": cohort,
        "new": new_part,
        "precursor": precursor_part,
    }
    score = WEIGHTS["relation"] * p.relation + p.relation * sum(
        WEIGHTS[k] * v for k, v in parts.items() if v is not None
    )
    role = _role(
        p,
        before_onset=before_onset,
        onset_part=onset_part,
        effect=effect,
        primary=primary,
        cohort_bits=cohort_bits,
        precursor_part=precursor_part,
        before=before * scale,
        after=after,
        min_rows=min_rows,
    )
    pre = min(precursor, key=lambda sig: sig.precursor_start) if precursor else None
    row = {
        "target_id": target.target_id,
        "change_id": change["change_id"],
        "ts": t0,
        "change_type": change["change_type"],
        "target": change["target"],
        "description": change["description"],
        "inferred": change["inferred"],
        "lead_s": lead.total_seconds(),
        "when": "before onset" if before_onset else "during",
        "relation": p.relation,
        "name_match": p.name_match,
        "scope": _scope(p),
        "touched_hosts": len(p.named),
        "shared_hosts": p.shared,
        "host_share": p.host_share,
        "affected": [s.template for s in p.affected],
        "before": before,
        "after": after,
        "rate_bits": rate_bits,
        "untouched_hosts": len(p.untouched) if p.explicit and p.untouched else None,
        "untouched_before": untouched_before,
        "untouched_after": untouched_after,
        "cohort_bits": cohort_bits,
        "new_signatures": [s.template for s in new],
        "precursor_signature": pre.template if pre else None,
        "precursor_start": pre.precursor_start if pre else None,
        "precursor_rows": pre.precursor_rows if pre else None,
        "precursor_hosts": list(pre.precursor_hosts) if pre else [],
        "part_relation": p.relation,
        "part_onset": onset_part,
        "part_effect": parts["effect"],
        "part_cohort": cohort,
        "part_new": new_part,
        "part_precursor": precursor_part,
        "score": score,
        "score_parts": _score_text(p.relation, parts, score),
        "role": role,
        "examples": list(change["examples"] or []),
    }
    return row, new


def _role(
    p: _Pair,
    *,
    before_onset: bool,
    onset_part: float,
    effect: float,
    primary: float,
    cohort_bits: float | None,
    precursor_part: float,
    before: float,
    after: int,
    min_rows: int,
) -> str:
    """The label of a change. ``before`` is scaled to the after window. A mitigation is
    a change after which the errors on its own hosts stopped (``STOPPED``); made worse
    needs the rise to hold against the untouched hosts too, when there are any."""
    if p.relation <= 0:
        return "unrelated"
    if before_onset:
        if precursor_part:
            return "precursor"
        if onset_part >= 0.25:
            return "trigger"
        return "no clear effect"
    if primary >= 1 / 3 and after - before >= min_rows:
        return "made worse"
    if before >= min_rows and after <= before * STOPPED:
        return "mitigation"
    return "no clear effect"


def _scope(p: _Pair) -> str:
    if p.change["node"] and len(p.explicit) == 1:
        return "node"
    if p.explicit:
        return "hosts"
    if p.name_match:
        return "component"
    return "none"


def _score_text(relation: float, parts: dict[str, float | None], score: float) -> str:
    terms = [f"{WEIGHTS['relation']:g}x{relation:.2f} relation"]
    inner = [f"{WEIGHTS[k]:g}x{v:+.2f} {k}" for k, v in parts.items() if v is not None and v]
    if inner:
        terms.append(f"{relation:.2f}x({' '.join(inner)})")
    return f"{' + '.join(terms)} = {score:.2f}"
