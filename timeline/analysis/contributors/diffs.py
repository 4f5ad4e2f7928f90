"""The signatures that appeared, vanished, rose or fell around each change."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from timeline.analysis.contributors.changes import _TS, _host_key, host_key, names_match, node_local
from timeline.analysis.rates import problem_rows, to_timedelta

DIFF_SCHEMA: dict[str, pl.DataType] = {
    "change_id": pl.UInt32(),
    "source": pl.String(),
    "template": pl.String(),
    "before": pl.UInt32(),
    "after": pl.UInt32(),
    "status": pl.String(),
    "first_seen_at": _TS,
}


def signature_diffs(
    frame: pl.DataFrame,
    changes: pl.DataFrame,
    *,
    window: str | timedelta = "1h",
    min_rows: int = 3,
) -> pl.DataFrame:
    """For each change, the warning and error signatures that changed around it.

    The rows counted are those in the change's scope: on the hosts it names, else from
    the sources and components its target names, else everywhere. A signature is
    ``new`` when it had never been seen before the change and appears in the ``window``
    after it, ``vanished`` when it was there in the ``window`` before and is gone after,
    ``risen`` or ``fallen`` when its count at least doubled or halved (by ``min_rows``
    rows or more). Unchanged signatures are left out.

    Returns
    -------
    pl.DataFrame
        ``DIFF_SCHEMA``: ``change_id``, ``source``, ``template``, ``before``, ``after``,
        ``status``, ``first_seen_at``.
    """
    window_td = to_timedelta(window)
    rows = (
        problem_rows(frame)
        .select("ts", "source", "component", "template", hk=host_key(pl.col("host")))
        .sort("ts")
        .collect()
    )
    if rows.height == 0 or changes.height == 0:
        return pl.DataFrame(schema=DIFF_SCHEMA)
    first_seen = rows.group_by("source", "template").agg(first_seen_at=pl.col("ts").min())
    programs = rows.select("source", "component").unique()
    micros = rows["ts"].dt.epoch("us").to_numpy()
    edges = changes.select(
        lo=(pl.col("ts") - window_td).dt.epoch("us"), hi=(pl.col("ts") + window_td).dt.epoch("us")
    )
    los, his = (np.searchsorted(micros, edges[c].to_numpy(), side="left") for c in ("lo", "hi"))
    named_by: dict[str | None, pl.DataFrame] = {}
    found = []
    for change, lo, hi in zip(changes.iter_rows(named=True), los, his, strict=True):
        t0 = change["ts"]
        part = rows.slice(int(lo), int(hi - lo))
        explicit = set()
        if node_local(change):
            explicit = {_host_key(h) for h in change["hosts"] or ()}
        if change["node"]:
            explicit.add(_host_key(change["node"]))
        if explicit:
            part = part.filter(pl.col("hk").is_in(sorted(explicit)))
        else:
            if change["name"] not in named_by:
                named_by[change["name"]] = programs.filter(
                    pl.Series(
                        [
                            names_match(change["name"], s) or names_match(change["name"], c)
                            for s, c in programs.iter_rows()
                        ],
                        dtype=pl.Boolean,
                    )
                )
            named = named_by[change["name"]]
            if named.height:
                part = part.join(named, on=["source", "component"], how="semi", nulls_equal=True)
        if part.height == 0:
            continue
        found.append(
            part.group_by("source", "template")
            .agg(
                before=(pl.col("ts") < t0).sum().cast(pl.UInt32),
                after=(pl.col("ts") >= t0).sum().cast(pl.UInt32),
            )
            .with_columns(change_id=pl.lit(change["change_id"], pl.UInt32), _t0=pl.lit(t0, _TS))
        )
    if not found:
        return pl.DataFrame(schema=DIFF_SCHEMA)
    before, after = pl.col("before").cast(pl.Int64), pl.col("after").cast(pl.Int64)
    moved = (after - before).abs() >= min_rows
    status = (
        pl.when((before == 0) & (after > 0) & (pl.col("first_seen_at") >= pl.col("_t0")))
        .then(pl.lit("new"))
        .when((before > 0) & (after == 0) & (before >= min_rows))
        .then(pl.lit("vanished"))
        .when(moved & (after >= 2 * before))
        .then(pl.lit("risen"))
        .when(moved & (2 * after <= before))
        .then(pl.lit("fallen"))
    )
    return (
        pl.concat(found)
        .join(first_seen, on=["source", "template"], how="left")
        .with_columns(status=status)
        .filter(pl.col("status").is_not_null())
        .sort("change_id", "status", "after", descending=[False, False, True])
        .select(list(DIFF_SCHEMA))
        .cast(DIFF_SCHEMA)
    )
