"""Hosts that fell silent while their peers kept logging: a node that died (a kernel
panic, a hypervisor fault, a network cut) writes no line of its own death, and its pods go
with it. What the logs show is an absence: every file of one host stops for much longer
than that host ever pauses, while the other hosts go on writing (often their errors
about the missing one), and then the host comes back.

A silence is a pause between two lines of one host (its name's first DNS label, so
``ip-10-0-1-5`` and ``ip-10-0-1-5.ec2.internal`` are one host) that is

- at least :data:`MIN_SILENCE` long, and at least :data:`PAUSE_FACTOR` times the longest
  pause the host made in the :data:`USUAL` before it: a host that usually pauses five
  minutes may pause ten, one that writes every few seconds may not;
- improbable for the host: at the lower of the rates of :data:`SLOT` slots with lines
  it showed in that hour and in the hour after it came back (a host whose errors just
  stopped is back to its quieter self, not silent), it would have written in at least
  :data:`MIN_EXPECTED` slots of the pause
  (a chance of about ``exp(-MIN_EXPECTED)`` to write in none, were it still up: rare
  enough not to happen by chance anywhere in days of many hosts' logs). A host of a few
  lines (a job's pod, a program that logs only when something happens, a broker quiet at
  night) is not expected to write, so its quiet says nothing. Slots, not lines, are
  counted, so that a burst of lines does not promise more;
- filled by the others: the lines of every other host and file (those that name no host
  too) pause at most :data:`PEER_PAUSE` of it. The end of the data, a night when the
  whole cluster is quiet, or a gap in what was collected is no one host's silence.

A host that stops and never comes back is not a silence: a pod deleted, a node removed
or logs collected early look the same. A file that starts late or ends early leaves no
pause of its own host as long as the host's other files go on.

Memory follows the hosts and time slots, not the lines: the pauses are found on the count
of lines per host and :data:`SLOT` (one streaming pass over the events), and only the few
candidates' edges are looked up again to name the last line before and the first line
after, as ``file:line``.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from timeline.reading.pods import host_key

__all__ = [
    "MIN_EXPECTED",
    "MIN_SILENCE",
    "PAUSE_FACTOR",
    "PEER_PAUSE",
    "SILENCE_SCHEMA",
    "USUAL",
    "host_silences",
]

#: No pause shorter than this is a silence: a node rebooting on purpose, a program
#: restarting, a log rotating or a quiet quarter of an hour all fit under it.
MIN_SILENCE = timedelta(minutes=10)
#: A silence is this many times the host's longest pause in the hour before it: three
#: times what it has just shown it may do is out of its own character.
PAUSE_FACTOR = 3
#: The span before a pause that says how the host usually writes.
USUAL = timedelta(hours=1)
#: At the host's rate in :data:`USUAL` before a pause, it would have written in this many
#: slots of the pause: writing in none had a chance of about ``exp(-20)``, 2 in a billion.
#: (At ``exp(-10)`` a broker that writes a few connections a minute, over three days,
#: shows one such pause by chance.) A host writing every 30 seconds qualifies after 10
#: minutes, one writing every 2 minutes after 40.
MIN_EXPECTED = 20
#: The other hosts' longest pause within a silence is at most this share of it: they
#: kept logging through it, so it is this host's silence and not everyone's.
PEER_PAUSE = 0.25
#: Sources whose rows are records or CI output rather than a host's own log lines.
NOT_LOGS = (
    "k8s-event",
    "k8s-audit",
    "changelog",
    "circleci",
    "github-actions",
    "gitlab-ci",
    "jobs",
)

#: The time resolution of the search: lines are counted per host and slot, so a slot
#: with lines is one event of the host's rhythm whether it holds one line or a burst.
SLOT = timedelta(seconds=10)

SILENCE_SCHEMA: dict[str, pl.DataType] = {
    "host": pl.String(),
    "source": pl.String(),
    "start": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "last_file": pl.String(),
    "last_line": pl.UInt32(),
    "next_file": pl.String(),
    "next_line": pl.UInt32(),
    "usual_pause_s": pl.Float64(),
    "expected": pl.Float64(),
    "peer_pause_s": pl.Float64(),
}


def _host_numbers(hosts: pl.Series) -> dict[str, int]:
    """A number for each host name, the same for the names of one host
    (:func:`~timeline.reading.pods.host_key`): each name is read once, and the hosts are
    grouped and sorted by numbers, not text."""
    names = hosts.drop_nulls().unique().sort()
    keys = pl.select(host_key(pl.lit(names))).to_series()
    number = {key: i for i, key in enumerate(keys.unique(maintain_order=True))}
    return {name: number[key] for name, key in zip(names, keys, strict=True)}


def _numbered(host: pl.Expr, keys: dict[str, int]) -> pl.Expr:
    return host.replace_strict(keys, default=None, return_dtype=pl.UInt32)


def host_silences(
    events: pl.DataFrame | pl.LazyFrame,
    *,
    min_silence: timedelta = MIN_SILENCE,
    factor: float = PAUSE_FACTOR,
    usual: timedelta = USUAL,
    min_expected: float = MIN_EXPECTED,
    peer_pause: float = PEER_PAUSE,
) -> pl.DataFrame:
    """The silences of the hosts of ``events`` (see the module's docstring).

    Parameters
    ----------
    events
        An event frame, or a lazy scan of an event store.
    min_silence, factor, usual, min_expected, peer_pause
        The thresholds (:data:`MIN_SILENCE`, :data:`PAUSE_FACTOR`, :data:`USUAL`,
        :data:`MIN_EXPECTED`, :data:`PEER_PAUSE`).

    Returns
    -------
    pl.DataFrame
        :data:`SILENCE_SCHEMA`, one row per silence by time: the ``host`` as its rows
        name it, the ``source`` of its last line, ``start`` and ``end`` (the last line
        before and the first after), their ``file`` and ``line``, the host's longest pause
        in the hour before (``usual_pause_s``) and the others' longest pause within it
        (``peer_pause_s``), and how many slots with lines its rate promised in the
        pause (``expected``).

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> t0 = datetime(2025, 3, 4, 1, 0, tzinfo=UTC)
    >>> def lines(host, minutes):
    ...     return [(t0 + timedelta(minutes=m), host, "log", "kube-proxy", f"{host}.log", i + 1)
    ...             for i, m in enumerate(minutes)]
    >>> quiet = [m for m in range(180) if not 70 <= m < 95]
    >>> rows = lines("node-a", range(180)) + lines("node-b", quiet)
    >>> events = pl.DataFrame(
    ...     rows, schema=["ts", "host", "kind", "source", "file", "line"], orient="row"
    ... )
    >>> found = host_silences(events)
    >>> found["host"].to_list(), found["last_line"].to_list(), found["next_line"].to_list()
    (['node-b'], [70], [71])
    >>> found["end"].item() - found["start"].item()
    datetime.timedelta(seconds=1560)
    """
    logs = events.lazy().filter(
        (pl.col("kind") == "log")
        & pl.col("ts").is_not_null()
        & ~pl.col("source").fill_null("").is_in(NOT_LOGS)
    )
    slots = (
        logs.group_by("host", slot=pl.col("ts").dt.truncate(SLOT))
        .agg(n=pl.len())
        .collect(engine="streaming")
    )
    keys = _host_numbers(slots["host"])
    slots = slots.with_columns(_key=_numbered(pl.col("host"), keys))
    hosts = slots.filter(pl.col("_key").is_not_null()).select("_key", "slot", "n")
    if len(set(keys.values())) < len(keys):  # a host under two names
        hosts = hosts.group_by("_key", "slot").agg(pl.col("n").sum())
    # by host, then time, as one number: sorting by two columns takes five times as long
    hosts = hosts.sort(pl.col("_key").cast(pl.Int64) * (1 << 40) + pl.col("slot").dt.epoch("s"))
    if hosts.height == 0:
        return pl.DataFrame(schema=SILENCE_SCHEMA)
    candidates = _long_pauses(
        hosts, min_silence=min_silence, factor=factor, usual=usual, min_expected=min_expected
    )
    if candidates.height == 0:
        return pl.DataFrame(schema=SILENCE_SCHEMA)
    candidates = _steady_after(candidates, hosts, usual=usual, min_expected=min_expected)
    if candidates.height == 0:
        return pl.DataFrame(schema=SILENCE_SCHEMA)
    candidates = _filled_by_others(candidates, slots.select("slot"), peer_pause=peer_pause)
    if candidates.height == 0:
        return pl.DataFrame(schema=SILENCE_SCHEMA)
    names = slots.filter(pl.col("_key").is_in(candidates["_key"].implode()))["host"].unique()
    edges = _edges(logs.filter(pl.col("host").is_in(names.implode())), candidates, keys)
    gap = (pl.col("end") - pl.col("start")).dt.total_seconds(fractional=True)
    return (
        edges.filter(
            (gap >= min_silence.total_seconds()) & (gap >= factor * pl.col("usual_pause_s"))
        )
        .sort("start", "host")
        .select(list(SILENCE_SCHEMA))
        .cast(SILENCE_SCHEMA)
    )


def _long_pauses(
    hosts: pl.DataFrame,
    *,
    min_silence: timedelta,
    factor: float,
    usual: timedelta,
    min_expected: float,
) -> pl.DataFrame:
    """The pauses between a host's slots with lines (``hosts``: ``_key``, ``slot``, ``n``,
    sorted) that are long for that host, as ``_key``, ``start`` and ``end`` (the slots
    either side), with the host's longest pause in the ``usual`` span before it
    (``usual_pause_s``) and how many slots with lines its rate then promised in the pause
    (``expected``). Slots are coarse by at most one slot either side; the lines
    themselves are checked after (:func:`_edges`). Only the pauses of at least
    ``min_silence`` are looked at closely: a host's rhythm is read before those few."""
    pauses = hosts.select(
        "_key",
        "slot",
        start=pl.col("slot").shift(1).over("_key"),
        pause=pl.col("slot").diff().over("_key"),
    )
    long = pauses.filter(pl.col("pause") >= min_silence - SLOT)
    if long.height == 0:
        return long.select("_key", "start", end="slot", expected=pl.lit(0.0), usual_pause_s=0.0)
    # the host's slots with lines in the span before the pause, the slot it began in too
    rhythm = (
        long.select("_key", "start", end="slot", long_pause="pause")
        .join(pauses.select("_key", "slot", "pause"), on="_key")
        .filter(pl.col("slot").is_between(pl.col("start") - usual, pl.col("start")))
        .group_by("_key", "start", "end", "long_pause")
        .agg(usual_pause=pl.col("pause").max(), active_slots=pl.len())
    )
    usual_pause = pl.col("usual_pause").fill_null(SLOT)
    return (
        rhythm.with_columns(
            # the pause less the slot it ends in, at the rate of slots with lines
            expected=pl.col("active_slots")
            * (pl.col("long_pause") - SLOT).dt.total_seconds(fractional=True)
            / usual.total_seconds()
        )
        .filter(
            (pl.col("expected") >= min_expected)
            & (pl.col("long_pause") >= factor * usual_pause - SLOT)
        )
        .sort("_key", "start")
        .select(
            "_key",
            "start",
            "expected",
            "end",
            usual_pause_s=usual_pause.dt.total_seconds(fractional=True),
        )
    )


def _steady_after(
    candidates: pl.DataFrame, hosts: pl.DataFrame, *, usual: timedelta, min_expected: float
) -> pl.DataFrame:
    """The candidates whose pause is also improbable at the host's rate in the ``usual``
    span after it (its slots with lines there, over the whole span: a host whose data
    ends soon after is judged by the little it wrote), ``expected`` being the lower of
    the two."""
    counted = hosts.select("_key", "slot", _i=pl.int_range(pl.len(), dtype=pl.Int64).over("_key"))
    at_end = candidates.join(
        counted.rename({"slot": "end", "_i": "_from"}), on=["_key", "end"], how="left"
    )
    probe = at_end.with_columns(_probe=pl.col("end") + usual - SLOT).sort("_probe")
    found = probe.join_asof(
        counted.rename({"_i": "_to"}).sort("slot"),
        left_on="_probe",
        right_on="slot",
        by="_key",
        strategy="backward",
        # both sides are sorted by time, so within each host too
        check_sortedness=False,
    )
    pause = (pl.col("end") - pl.col("start") - SLOT).dt.total_seconds(fractional=True)
    after = (pl.col("_to") - pl.col("_from") + 1) * pause / usual.total_seconds()
    return (
        found.with_columns(expected=pl.min_horizontal("expected", after))
        .filter(pl.col("expected") >= min_expected)
        .select(list(candidates.columns))
    )


def _filled_by_others(
    candidates: pl.DataFrame, slots: pl.DataFrame, *, peer_pause: float
) -> pl.DataFrame:
    """The candidates during which the other hosts' and files' lines paused at most
    ``peer_pause`` of the silence, with that longest pause (``peer_pause_s``). A host has
    no line within its own pause, so every slot with lines inside it is another's."""
    anyone = slots.select("slot").unique().sort("slot").with_columns(pause=pl.col("slot").diff())
    inside = (
        candidates.with_row_index("_c")
        .join_where(anyone, pl.col("slot") > pl.col("start"), pl.col("slot") <= pl.col("end"))
        .group_by("_c")
        .agg(peer=pl.col("pause").max())
    )
    return (
        candidates.with_row_index("_c")
        .join(inside, on="_c", how="left")
        .with_columns(peer=pl.col("peer").fill_null(pl.col("end") - pl.col("start")))
        .filter(pl.col("peer") <= (pl.col("end") - pl.col("start")) * peer_pause)
        .select(
            pl.exclude("_c", "peer"),
            peer_pause_s=pl.col("peer").dt.total_seconds(fractional=True),
        )
    )


def _edges(logs: pl.LazyFrame, candidates: pl.DataFrame, keys: dict[str, int]) -> pl.DataFrame:
    """Each candidate with the host's last line before it and first line after it: the
    lines of its host in its first and its last slot (``logs``: the lines of the
    candidates' hosts)."""
    slot = SLOT
    near = (
        logs.select("host", "source", "ts", "file", "line", _key=_numbered(pl.col("host"), keys))
        .join(candidates.lazy().with_row_index("_c"), on="_key")
        .filter(
            ((pl.col("ts") >= pl.col("start")) & (pl.col("ts") < pl.col("start") + slot))
            | ((pl.col("ts") >= pl.col("end")) & (pl.col("ts") < pl.col("end") + slot))
        )
        .collect(engine="streaming")
        .sort("ts", "file", "line")
    )
    before = near.filter(pl.col("ts") < pl.col("start") + slot).group_by("_c").last()
    after = near.filter(pl.col("ts") >= pl.col("end")).group_by("_c").first()
    return before.select(
        "_c",
        "host",
        "source",
        "usual_pause_s",
        "expected",
        "peer_pause_s",
        start="ts",
        last_file="file",
        last_line="line",
    ).join(after.select("_c", end="ts", next_file="file", next_line="line"), on="_c", how="inner")
