"""Measures: counts of the affected signatures' rows around each change, per host or in
all, and the tests that say whether they moved beyond chance.

The rows counted are the warnings and errors of the log (their ``template`` the
signature) and, for CI, one row per minute that a job queued then waited, when it waited
longer than ``min_delay_s``, and one per failed job (their signature ``<executor>
jobs``, their host the executor), so that a change can be weighed against a CI delay as
against an error. Hosts that are pods are read as the node that ran them where the
cluster said so (:func:`timeline.reading.pods.pod_nodes`).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from timeline.analysis.contributors.changes import host_key
from timeline.analysis.rates import job_signature, problem_rows
from timeline.reading.pods import node_of_host, pod_nodes

#: A class of changes with at least this many occurrences is judged by all of them.
CLASS_SIZE = 4
#: Columns of the rows the counter keeps, for quoting them.
QUOTE_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    "host": pl.String(),
    "file": pl.String(),
    "line": pl.UInt32(),
    "message": pl.String(),
}


#: The host key a query names to count the rows whose host no record, wrapper or path
#: names (no host is called this: a host key has no control characters).
NO_HOST = "\x00no host"

#: The most minutes of waiting one CI job counts for.
MAX_WAIT_MINUTES = 24 * 60


def evidence_rows(
    frame: pl.DataFrame, *, min_delay_s: float = 60.0, pods: pl.DataFrame | None = None
) -> pl.LazyFrame:
    """The rows a change is weighed against: warning and error log rows, one row per
    minute a CI job waited in its queue (at the time it was queued) when it waited over
    ``min_delay_s``, and one per failed job (signature ``<executor> jobs``, host the
    executor); ``hk`` is the :func:`host_key` of the row's node (a pod's node where
    ``pods`` knows it).

    Returns
    -------
    pl.LazyFrame
        ``ts``, ``source``, ``template``, ``hk``, ``host``, ``file``, ``line``, ``message``.
    """
    pods = pods if pods is not None else pod_nodes(frame)
    logs = problem_rows(frame).select("ts", "source", "template", "host", "file", "line", "message")
    attrs = pl.col("attrs").fill_null("{}")
    executor = attrs.str.json_path_match("$.executor").fill_null("unknown")
    delay = attrs.str.json_path_match("$.queue_delay_s").cast(pl.Float64, strict=False)
    status = attrs.str.json_path_match("$.status")
    job_rows = frame.filter((pl.col("kind") == "job") & pl.col("ts").is_not_null())
    # a job counted once per minute it waited, up to a day: a clock gone wrong (a job
    # "queued" years before it started) must not weigh more than a day's wait
    minutes = (delay.fill_null(0.0) / 60).ceil().clip(upper_bound=MAX_WAIT_MINUTES).cast(pl.Int64)
    jobs = (
        job_rows.lazy()
        .filter((delay > min_delay_s) | (status == "failed"))
        .select(
            # a delayed job counts once per minute it waited, at the time it was queued
            _n=pl.int_ranges(0, pl.when(delay > min_delay_s).then(minutes).otherwise(1)),
            ts="ts",
            source="source",
            template=job_signature(executor),
            host=executor,
            file="file",
            line="line",
            message="message",
        )
        .explode("_n")
        .drop("_n")
    )
    both = pl.concat([logs, jobs], how="vertical_relaxed")
    return both.with_columns(hk=host_key(node_of_host(pl.col("host"), pods)))


# --- counting rows in windows -------------------------------------------------------------


class RowCounter:
    """Counts warning and error rows of given signatures in time windows, per host or in
    all (a :class:`WindowCounter` each), and quotes a few of them; ``jobs`` counts CI jobs
    and their failures (:class:`JobCounter`)."""

    def __init__(
        self,
        frame: pl.DataFrame,
        signatures: set[tuple[str, str]],
        *,
        min_delay_s: float = 60.0,
        pods: pl.DataFrame | None = None,
    ):
        keys = pl.DataFrame(
            list(signatures), schema={"source": pl.String, "template": pl.String}, orient="row"
        )
        rows = (
            evidence_rows(frame, min_delay_s=min_delay_s, pods=pods)
            .join(keys.lazy(), on=["source", "template"], how="semi")
            .sort("source", "template", "ts", "file", "line")
            .collect(engine="in-memory")  # the streaming engine panics on this plan at times
        )
        #: each signature's rows in time order (what a quote shows), their times in
        #: microseconds and their hosts as numbers, for quoting a few around a time: slices
        #: of one frame and two arrays, which hold every row once
        self.host_numbers = {h: k for k, h in enumerate(rows["hk"].drop_nulls().unique().sort())}
        micros = rows["ts"].dt.epoch("us").to_numpy()
        hosts = rows["hk"].replace_strict(self.host_numbers, default=-1, return_dtype=pl.Int64)
        hosts = hosts.to_numpy()
        quoted = rows.select(list(QUOTE_SCHEMA))
        self.rows_of, self.micros_of, self.hosts_of = {}, {}, {}
        self._made: dict[tuple, dict] = {}
        self._words: dict[tuple, frozenset[str]] = {}
        spans = rows.with_row_index("_at").group_by("source", "template", maintain_order=True)
        for source, template, at, n in spans.agg(pl.col("_at").first(), pl.len()).iter_rows():
            self.rows_of[(source, template)] = quoted.slice(at, n)
            self.micros_of[(source, template)] = micros[at : at + n]
            self.hosts_of[(source, template)] = hosts[at : at + n]
        # the counters see the keys and times only: a copy of the messages per counter
        # would hold every row twice more
        counted = rows.select("source", "template", pl.col("hk").fill_null(NO_HOST), "ts")
        self.tables = [
            WindowCounter(counted, ["source", "template", "hk"]),
            WindowCounter(counted.drop("hk"), ["source", "template"]),
        ]
        self.jobs = JobCounter(frame)

    def count(self, queries: pl.DataFrame) -> pl.DataFrame:
        """``queries`` has ``q``, ``source``, ``template``, ``hk`` (null: all hosts;
        :data:`NO_HOST`: the rows whose host is unknown), ``lo`` and ``hi``; returns
        ``q`` and ``n``, the rows with ``lo <= ts < hi`` (a query of a signature or host
        without rows is left out: it counts none)."""
        parts = [pl.DataFrame(schema={"q": pl.Int64, "n": pl.Int64})]
        for counter, has_host in zip(self.tables, (True, False), strict=True):
            chosen = queries.filter(pl.col("hk").is_not_null() == has_host).join(
                counter.groups, on=counter.key_columns, how="inner"
            )
            if chosen.height == 0:
                continue
            lo, hi = (chosen[at].dt.epoch("us").to_numpy() for at in ("lo", "hi"))
            n = counter.count(chosen["group"].to_numpy(), lo, hi)
            parts.append(pl.DataFrame({"q": chosen["q"], "n": n}))
        return pl.concat(parts, how="vertical_relaxed").cast({"n": pl.Int64})

    def quote(
        self,
        signatures: list[tuple[str, str]],
        hosts: list[str] | None,
        *,
        at: datetime,
        before: timedelta,
        after: timedelta,
        n: int = 3,
    ) -> tuple[list[dict], list[dict]]:
        """The last ``n`` rows of ``signatures`` in the ``before`` window before ``at`` and
        the first ``n`` in the ``after`` window from it, on ``hosts`` (host keys; all
        hosts when None), each as ``QUOTE_SCHEMA`` fields."""
        lo_us, at_us, hi_us = (_micros(t) for t in (at - before, at, at + after))
        wanted = None
        if hosts is not None:
            # a row's host number (-1: none) picks True or False, the last entry for -1
            wanted = np.zeros(len(self.host_numbers) + 1, dtype=bool)
            wanted[[self.host_numbers[h] for h in hosts if h in self.host_numbers]] = True
        before_rows, after_rows = [], []
        for key in dict.fromkeys(signatures):
            if key not in self.rows_of:
                continue
            lo, mid, hi = self.micros_of[key].searchsorted([lo_us, at_us, hi_us])
            before_rows += self._rows(key, lo, mid, wanted, last=n)
            after_rows += self._rows(key, mid, hi, wanted, first=n)
        return (_in_order(before_rows)[-n:] if n else []), _in_order(after_rows)[:n]

    def _rows(
        self, key: tuple, lo: int, hi: int, hosts: np.ndarray | None, *, first=0, last=0
    ) -> list[dict]:
        """The first or last few of a signature's rows ``lo`` to ``hi`` (on the hosts
        whose numbers ``hosts`` marks True, when given) as ``QUOTE_SCHEMA`` fields."""
        picked = range(lo, hi)
        if hosts is not None:
            picked = (lo + np.flatnonzero(hosts[self.hosts_of[key][lo:hi]])).tolist()
        picked = picked[:first] if first else picked[max(len(picked) - last, 0) :]
        return [self._row(key, i) for i in picked]

    def _row(self, key: tuple, i: int) -> dict:
        """Row ``i`` of a signature's rows as ``QUOTE_SCHEMA`` fields, made once: the
        incidents' and the spikes' rankings quote many of the same rows."""
        made = self._made.get((key, i))
        if made is None:
            made = self._made[(key, i)] = self.rows_of[key].row(i, named=True)
        return made

    def words(self, key: tuple[str, str]) -> frozenset[str]:
        """:func:`variable_words` of a signature's rows (none for a signature without),
        worked out once."""
        if key not in self._words:
            rows = self.rows_of.get(key)
            self._words[key] = (
                frozenset() if rows is None else variable_words(rows["message"], key[1])
            )
        return self._words[key]


#: A word of the errors' values names something only when at least this share of a
#: signature's rows hold it...
NAMED_SHARE = 0.5
#: ...of at most this many rows, taken evenly over its time.
NAMED_SAMPLE = 500
_WORD = r"[a-z0-9][a-z0-9_-]*"


def variable_words(messages: pl.Series, template: str) -> frozenset[str]:
    """The words (lower case) that most of a signature's ``messages`` hold and its
    ``template`` does not: the values its masks hide in most of its lines, which name what
    the errors are about (``orders`` of ``user: 'orders'`` and ``queue
    'orders.created'``; ``checkout`` of ``checkout.shop.svc.cluster.local.``). A word is a
    run of letters, digits, ``_`` and ``-``: dots and slashes split a name into its parts.

    >>> hosts = ["orders.shop.svc", "orders.eu", "orders.us"]
    >>> variable_words(pl.Series([f"no route to {h}" for h in hosts]), "no route to <NAME>")
    frozenset({'orders'})
    """
    taken = messages.drop_nulls()
    taken = taken.gather_every(max(1, taken.len() // NAMED_SAMPLE))
    if taken.len() == 0:
        return frozenset()
    counts = (
        taken.str.to_lowercase()
        .str.extract_all(_WORD)
        .list.unique()
        .explode()
        .drop_nulls()
        .value_counts(name="rows")
    )
    common = counts.filter(pl.col("rows") >= NAMED_SHARE * taken.len()).get_column(
        counts.columns[0]
    )
    fixed = set(re.findall(_WORD, template.lower()))
    return frozenset(w for w in common.to_list() if w not in fixed)


class WindowCounter:
    """Counts the rows of each group (rows equal on ``key_columns``) in time windows, with
    two binary searches per window instead of a scan per window.

    Each group gets a number (``groups``), and each row the key ``group * (times + 1) +
    rank of its time among all the rows' times``: sorted, a group's rows lie together in
    time order, so the rows of a group before a moment are one binary search away
    (:func:`numpy.searchsorted`)."""

    def __init__(self, rows: pl.DataFrame, key_columns: list[str]):
        self.key_columns = key_columns
        self.groups = rows.select(key_columns).unique(maintain_order=True).with_row_index("group")
        numbered = rows.join(self.groups, on=key_columns, nulls_equal=True)
        micros = numbered["ts"].dt.epoch("us")
        # polars sorts and finds distinct values of millions many times faster than NumPy 2
        self.times = micros.unique().sort(nulls_last=True).to_numpy()
        keys = self._key(numbered["group"].to_numpy(), micros.to_numpy())
        self.keys = pl.Series(keys).sort().to_numpy()

    def _key(self, group: np.ndarray, micros: np.ndarray) -> np.ndarray:
        """The key of each (group, time): times in between rows' times rank as the next."""
        rank = searched(self.times, micros)
        return group.astype(np.int64) * (len(self.times) + 1) + rank

    def count(self, group: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Rows of each ``group`` with ``lo <= ts < hi`` (microseconds since the epoch)."""
        return searched(self.keys, self._key(group, hi)) - searched(self.keys, self._key(group, lo))


class JobCounter:
    """Counts the CI jobs of some executors queued in a time window, and how many of them
    failed: a failing CI series is judged by its share of failed jobs, which a steady
    trickle of jobs makes telling long before the failures are many."""

    def __init__(self, frame: pl.DataFrame):
        attrs = pl.col("attrs").fill_null("{}")
        jobs = (
            frame.lazy()
            .filter((pl.col("kind") == "job") & pl.col("ts").is_not_null())
            .select(
                executor=attrs.str.json_path_match("$.executor").fill_null("unknown"),
                micros=pl.col("ts").dt.epoch("us"),
                failed=(attrs.str.json_path_match("$.status") == "failed").fill_null(False),
            )
            .sort("executor", "micros")
            .collect()
        )
        #: per executor, its jobs' times in order and how many failed up to each
        self._times: dict[str, np.ndarray] = {}
        self._failed: dict[str, np.ndarray] = {}
        for (executor,), part in jobs.partition_by("executor", as_dict=True).items():
            self._times[executor] = part["micros"].to_numpy()
            self._failed[executor] = np.concatenate([[0], part["failed"].cast(pl.Int64).cum_sum()])

    def count(self, executors: Iterable[str], lo: datetime, hi: datetime) -> tuple[int, int]:
        """``(jobs, failed)`` of ``executors`` queued at ``lo <= ts < hi``."""
        jobs = failed = 0
        for executor in executors:
            times = self._times.get(executor)
            if times is None:
                continue
            a, b = times.searchsorted([_micros(lo), _micros(hi)])
            jobs += int(b - a)
            failed += int(self._failed[executor][b] - self._failed[executor][a])
        return jobs, failed


def searched(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``np.searchsorted(table, values)`` of values in any order, looked up in order:
    NumPy starts each search where the last ended when the values are sorted, which on a
    table of millions of rows is several times faster than jumping about it.

    >>> searched(np.array([10, 20, 30]), np.array([25, 5, 30])).tolist()
    [2, 0, 2]
    """
    order = np.argsort(values, kind="stable")
    found = np.empty(len(values), dtype=np.intp)
    found[order] = np.searchsorted(table, values[order])
    return found


def _in_order(rows: list[dict]) -> list[dict]:
    """Rows in the order of their time, file and line (a missing file first, as polars
    sorts)."""
    return sorted(rows, key=lambda r: (r["ts"], r["file"] is not None, r["file"] or "", r["line"]))


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- tests that suit counts ---------------------------------------------------------------


@functools.lru_cache(maxsize=1 << 16)
def binomial_tail(k: int, n: int, p: float, *, upper: bool = True) -> float:
    """``P(X >= k)`` (``upper``) or ``P(X <= k)`` for ``X ~ Binomial(n, p)``: exact up to
    a few thousand trials, a normal approximation (with continuity correction) above.
    Remembered: the rankings of incidents and of spikes ask for most tails more than once.

    >>> round(binomial_tail(10, 10, 0.5), 6)
    0.000977
    >>> binomial_tail(0, 10, 0.5), binomial_tail(0, 0, 0.3)
    (1.0, 1.0)
    """
    if n <= 0:
        return 1.0
    p = min(max(p, 1e-12), 1 - 1e-12)
    if not upper:
        return binomial_tail(n - k, n, 1 - p)
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if n > 3000:
        mean, sd = n * p, math.sqrt(n * p * (1 - p))
        return 0.5 * math.erfc((k - 0.5 - mean) / (sd * math.sqrt(2)))
    log_p, log_q = math.log(p), math.log1p(-p)
    lg = math.lgamma
    total = 0.0
    for i in range(k, n + 1):
        term = lg(n + 1) - lg(i + 1) - lg(n - i + 1) + i * log_p + (n - i) * log_q
        total += math.exp(term)
        if i > n * p and term < -50:
            break
    return min(1.0, total)


def rate_test(before: int, after: int, *, share_after: float) -> tuple[float, float]:
    """Whether the rate moved between two windows, for Poisson counts: given the
    ``before + after`` rows, ``after`` is binomial with ``share_after`` (the after
    window's share of the time, or of the expected rows). Returns the p-values that it
    rose and that it fell.

    >>> up, down = rate_test(2, 40, share_after=0.5)
    >>> up < 1e-8 < 0.99 < down
    True
    """
    n = before + after
    return (
        binomial_tail(after, n, share_after, upper=True),
        binomial_tail(after, n, share_after, upper=False),
    )


def host_count_test(a: int, n_a: int, c: int, n_c: int) -> float:
    """One-sided Fisher test: the p-value that ``a`` or more of ``n_a`` hosts moved when
    ``a + c`` of all ``n_a + n_c`` did, if which hosts moved had nothing to do with
    which were touched.

    >>> round(host_count_test(3, 3, 0, 9), 4)  # 1 / C(12, 3)
    0.0045
    >>> host_count_test(1, 1, 5, 5)
    1.0
    """
    total, moved = n_a + n_c, a + c
    if n_a == 0 or moved == 0:
        return 1.0
    denominator = math.comb(total, n_a)
    tail = sum(
        math.comb(moved, x) * math.comb(total - moved, n_a - x)
        for x in range(a, min(moved, n_a) + 1)
    )
    return min(1.0, tail / denominator)


def cohort_share(touched_before: int, untouched_before: int, n_touched: int, n_hosts: int) -> float:
    """The share of the after rows the touched hosts should have if the change did
    nothing: their share of the before rows, with one row spread over all hosts so that
    an empty before window gives the touched hosts' share of the hosts.

    >>> cohort_share(0, 0, 3, 12)
    0.25
    >>> round(cohort_share(30, 10, 3, 12), 3)
    0.738
    """
    prior = n_touched / max(n_hosts, 1)
    return (touched_before + prior) / (touched_before + untouched_before + 1)


def strength(p_value: float, *, full: float = 1e-6) -> float:
    """How far a p-value is beyond chance, from 0 (p >= 0.05) to 1 (p <= ``full``), on a
    log scale.

    >>> strength(0.5), strength(1e-9), round(strength(1e-4), 2)
    (0.0, 1.0, 0.57)
    """
    if p_value >= 0.05:
        return 0.0
    top, span = math.log10(0.05), math.log10(0.05) - math.log10(full)
    return min(1.0, (top - math.log10(max(p_value, 1e-300))) / span)
