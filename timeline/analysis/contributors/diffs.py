"""The signatures that appeared, vanished, rose or fell around each change."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from timeline.analysis.contributors.changes import _TS, _host_key, host_key, names_match, node_local
from timeline.analysis.contributors.measures import WindowCounter
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
    rows or more). Unchanged signatures are left out. A change's counts take two binary
    searches per group of rows in its scope (:class:`WindowCounter`), not a pass over
    the rows of its window: changes made during an error storm share its rows.

    Returns
    -------
    pl.DataFrame
        ``DIFF_SCHEMA``: ``change_id``, ``source``, ``template``, ``before``, ``after``,
        ``status``, ``first_seen_at``.
    """
    window_us = to_timedelta(window) // timedelta(microseconds=1)
    rows = (
        problem_rows(frame)
        .select("ts", "source", "component", "template", hk=host_key(pl.col("host")))
        .collect()
    )
    if rows.height == 0 or changes.height == 0:
        return pl.DataFrame(schema=DIFF_SCHEMA)
    first_seen = rows.group_by("source", "template").agg(first_seen_at=pl.col("ts").min())
    counter = WindowCounter(rows, ["source", "template", "component", "hk"])
    scopes = _Scopes(counter.groups)
    chosen = [scopes.of(change) for change in changes.iter_rows(named=True)]
    group = np.concatenate(chosen).astype(np.int64)
    which = np.repeat(np.arange(len(chosen)), [len(c) for c in chosen])
    t0 = changes["ts"].dt.epoch("us").to_numpy()[which]
    counted = (
        pl.DataFrame(
            {
                "_change": which,
                "group": group,
                "before": counter.count(group, t0 - window_us, t0),
                "after": counter.count(group, t0, t0 + window_us),
            }
        )
        .filter((pl.col("before") + pl.col("after")) > 0)
        .join(counter.groups.select("group", "source", "template"), on="group")
        .group_by("_change", "source", "template")
        .agg(pl.col("before").sum().cast(pl.UInt32), pl.col("after").sum().cast(pl.UInt32))
        .join(
            changes.select(
                _change=pl.int_range(pl.len(), dtype=pl.Int64),
                change_id=pl.col("change_id").cast(pl.UInt32),
                _t0=pl.col("ts").cast(_TS),
            ),
            on="_change",
        )
    )
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
        counted.join(first_seen, on=["source", "template"], how="left")
        .with_columns(status=status)
        .filter(pl.col("status").is_not_null())
        .sort(
            "change_id",
            "status",
            "after",
            "source",
            "template",
            descending=[False, False, True, False, False],
            nulls_last=True,
        )
        .select(list(DIFF_SCHEMA))
        .cast(DIFF_SCHEMA)
    )


class _Scopes:
    """The row groups (:class:`WindowCounter`) in each change's scope: on the hosts a
    node-local change names (and its node), else of the programs its name names, else
    every group."""

    def __init__(self, groups: pl.DataFrame):
        self.by_host = {
            hk: np.asarray(numbers)
            for hk, numbers in groups.group_by("hk").agg("group").iter_rows()
            if hk is not None
        }
        self.programs = groups.group_by("source", "component", maintain_order=True).agg("group")
        self.everything = groups["group"].to_numpy()
        self.named_by: dict[str | None, np.ndarray] = {}

    def of(self, change: dict) -> np.ndarray:
        explicit = set()
        if node_local(change):
            explicit = {_host_key(h) for h in change["hosts"] or ()}
        if change["node"]:
            explicit.add(_host_key(change["node"]))
        if explicit:
            return _joined([self.by_host[hk] for hk in explicit if hk in self.by_host])
        name = change["name"]
        if name not in self.named_by:
            named = [
                np.asarray(numbers)
                for source, component, numbers in self.programs.iter_rows()
                if names_match(name, source) or names_match(name, component)
            ]
            self.named_by[name] = _joined(named) if named else self.everything
        return self.named_by[name]


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)
