"""Measures: counts of the affected signatures' rows around each change, per host or in
all, and the tests that say whether they moved beyond chance.
"""

from __future__ import annotations

import polars as pl

from timeline.analysis.contributors.changes import host_key
from timeline.analysis.rates import problem_rows

# --- counting rows in windows -------------------------------------------------------------


class RowCounter:
    """Counts warning and error rows of given signatures in time windows, per host or in
    all, with two as-of lookups per window instead of a scan per window."""

    def __init__(self, frame: pl.DataFrame, signatures: set[tuple[str, str]]):
        keys = pl.DataFrame(
            list(signatures), schema={"source": pl.String, "template": pl.String}, orient="row"
        )
        rows = (
            problem_rows(frame)
            .join(keys.lazy(), on=["source", "template"], how="semi")
            .select("ts", "source", "template", hk=host_key(pl.col("host")))
            .sort("ts")
            .collect()
        )
        self.by_signature = rows.with_columns(
            idx=pl.int_range(pl.len(), dtype=pl.Int64).over("source", "template")
        ).drop("hk")
        self.by_host = rows.filter(pl.col("hk").is_not_null()).with_columns(
            idx=pl.int_range(pl.len(), dtype=pl.Int64).over("source", "template", "hk")
        )

    def count(self, queries: pl.DataFrame) -> pl.DataFrame:
        """``queries`` has ``q``, ``source``, ``template``, ``hk`` (null: all hosts),
        ``lo`` and ``hi``; returns ``q`` and ``n``, the rows with ``lo <= ts < hi``."""
        parts = []
        for has_host, table, keys in (
            (True, self.by_host, ["source", "template", "hk"]),
            (False, self.by_signature, ["source", "template"]),
        ):
            chosen = queries.filter(pl.col("hk").is_not_null() == has_host)
            if chosen.height == 0:
                continue
            upper = self._before(table, chosen, keys, "hi")
            lower = self._before(table, chosen, keys, "lo")
            parts.append(
                upper.join(lower, on="q", suffix="_lo").select("q", n=pl.col("n") - pl.col("n_lo"))
            )
        if not parts:
            return pl.DataFrame(schema={"q": pl.Int64, "n": pl.Int64})
        return pl.concat(parts)

    @staticmethod
    def _before(table: pl.DataFrame, queries: pl.DataFrame, keys: list[str], at: str):
        left = queries.select("q", *keys, at=pl.col(at)).sort("at")
        if table.height == 0:
            return left.select("q", n=pl.lit(0, pl.Int64))
        joined = left.join_asof(
            table.select("ts", *keys, "idx"),
            left_on="at",
            right_on="ts",
            by=keys,
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        return joined.select("q", n=(pl.col("idx") + 1).fill_null(0))
