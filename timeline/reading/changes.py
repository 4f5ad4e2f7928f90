"""Changes inferred from the logs themselves, and their merging with recorded changes.

Change records (audit log, Kubernetes events, a change log) say what someone changed. The
logs often say it too, and sometimes they are the only witness:

- a program that starts is a ``restart``; one that starts with another version than it
  last started with on the same host is an ``upgrade`` or a ``rollback`` (versions are
  compared as numbers, ``v1.24.10`` above ``v1.24.9``, build suffixes aside);
- a DNS server reloading its configuration is a ``config`` change;
- a node whose kubelet starts is a ``reboot`` (an ``upgrade`` or ``rollback`` when the
  kubelet's version moved);
- a host whose every file stops for much longer than it ever pauses, while the other
  hosts keep logging, and that then comes back, fell ``silence`` (a node that died:
  :func:`timeline.reading.silences.host_silences`), from its last line to its next;
- a program whose messages start to come from other source lines (klog's ``caller``,
  ``file:line``) runs another build. With a version line near, the version says upgrade
  or rollback and the callers are a second witness. Without one, a return to source
  lines the same host showed before is read as a ``rollback`` (the build that replaced
  them was undone); new source lines with no version to compare are ``other``, marked
  ``binary_changed``, because the direction cannot be known. Source lines that the
  lines after some start with a version all belong to name that version, so a host whose
  logs begin before its first start still gets a ``from`` (``from_by_callers``).

The witnesses are the lines listed in :data:`WITNESSES` (kube-proxy, kubelet, CoreDNS,
node-local-dns, RabbitMQ start-up, reload and stop lines). Witness lines on one host and
program within ``episode_gap`` of each other are one start. An inferred change row keeps
the witness's ``file`` and ``line`` (its first line), lists every witness line in
``attrs.witnesses`` and says ``attrs.inferred = true``.

:func:`with_inferred_changes` adds the inferred rows to an event frame, dropping each one
that a recorded change already tells (same program or node, compatible type and
versions, within ``window``): the record stays, marked ``seen_in_logs`` with the
witnesses' ``file:line``, so no change is counted twice.

Detection runs as whole-column expressions; only the witness lines (a handful per start)
and the change rows are walked in Python.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

import polars as pl

from parsers.changes_common import change_attrs, compare_versions, dumps, image_tag, version_key
from timeline.reading.silences import NOT_LOGS, host_silences
from timeline.schema import EVENT_SCHEMA, validate

__all__ = [
    "WITNESSES",
    "Witness",
    "caller_switches",
    "infer_changes",
    "silence_rows",
    "with_inferred_changes",
]


@dataclass(frozen=True)
class Witness:
    """A kind of log line that shows a program starting, stopping or reloading.

    ``program`` is who writes the line (empty: any klog program, named by the row's
    component). ``pattern`` and ``version`` are Rust regexes on the message (``version``
    with one group, the version); ``version_attr`` names the ``attrs`` key a parser may
    have put the version in instead. Versions compare only within one ``scheme`` (node-local-dns
    writes its own image version and the CoreDNS version it embeds). ``where``, if set,
    must match the row's source or component.
    """

    name: str
    program: str
    event: str
    pattern: str
    version: str | None = None
    version_attr: str | None = None
    scheme: str | None = None
    where: str | None = None


_DNS = r"(?i)dns|node-?cache"

#: Witness lines, most telling first (a start's version comes from the first that has one).
WITNESSES: tuple[Witness, ...] = (
    Witness(
        "kubelet version",
        "kubelet",
        "start",
        r'^"?Kubelet version"?',
        version=r'kubeletVersion="?(v?[0-9][^" ]*)',
        version_attr="kubeletVersion",
        scheme="kubernetes",
    ),
    Witness("kubelet start", "kubelet", "start", r'^"?Start(?:ing|ed) kubelet'),
    Witness(
        "version info",
        "",
        "start",
        r'^"?Version info"?(?: |$)',
        version=r'version="?(v?[0-9][^" ]*)',
        version_attr="version",
        scheme="kubernetes",
    ),
    Witness(
        "version line",
        "",
        "start",
        r"^Version: v?[0-9]",
        version=r"^Version: (v?[0-9][^ ]*)",
        scheme="kubernetes",
    ),
    Witness(
        "proxier",
        "kube-proxy",
        "start",
        r'^"?Using (?:iptables|ipvs|nftables|userspace|kernelspace) [Pp]roxier',
    ),
    Witness(
        "node-cache image",
        "node-local-dns",
        "start",
        r"Starting node-cache image: ",
        version=r"Starting node-cache image: (v?[0-9][^ ]*)",
        version_attr="node_cache_version",
        scheme="node-cache",
    ),
    Witness(
        "coredns banner",
        "coredns",
        "start",
        r"^CoreDNS-[0-9]",
        version=r"^CoreDNS-([0-9][0-9.]*)",
        scheme="coredns",
    ),
    Witness(
        "rabbitmq starting",
        "rabbitmq",
        "start",
        r"Starting RabbitMQ [0-9][^ ]* on Erlang",
        version=r"Starting RabbitMQ ([0-9][^ ]*) on Erlang",
        scheme="rabbitmq",
    ),
    Witness("rabbitmq started", "rabbitmq", "start", r"^ ?Server startup complete"),
    Witness(
        "rabbitmq stop",
        "rabbitmq",
        "stop",
        r"RabbitMQ is asked to stop|^ ?Stopping RabbitMQ applications|"
        r"^ ?Successfully stopped RabbitMQ",
    ),
    Witness("dns reload", "coredns", "reload", r"(?:^|\] )Reloading$", where=_DNS),
    Witness("dns stop", "coredns", "stop", r"SIGTERM: Shutting down servers", where=_DNS),
)

#: Sources whose rows are records or CI output, never witnesses (a CI job can print any
#: program's log lines).
NOT_WITNESSES = NOT_LOGS

_COMPATIBLE_WITH_VERSIONS = {"upgrade", "rollback", "deploy", "restart", "other"}


# --- inference --------------------------------------------------------------------------


def infer_changes(
    events: pl.DataFrame | pl.LazyFrame,
    *,
    episode_gap: timedelta = timedelta(minutes=2),
    window: timedelta = timedelta(minutes=10),
) -> pl.DataFrame:
    """Change rows inferred from the log rows of ``events``, in the event frame schema.

    Parameters
    ----------
    events
        An event frame.
    episode_gap
        Witness lines of one program on one host this close together are one start.
    window
        How close a source line switch must be to stand alone (see
        :func:`caller_switches`), and how long a stop waits for its start.

    Returns
    -------
    pl.DataFrame
        ``kind = change`` rows with ``attrs.inferred = true``, sorted by time.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> import timeline.schema as schema
    >>> logs = pl.DataFrame({
    ...     "ts": [datetime(2023, 3, 13, 16, 41, tzinfo=UTC)], "source": ["klog"],
    ...     "host": ["ip-10-0-1-5"], "component": ["kube-proxy"], "level": ["info"],
    ...     "kind": ["log"], "message": ['"Version info" version="v1.23.6"'],
    ...     "template": ["Version info"], "attrs": ["{}"], "file": ["kp.log"], "line": [7],
    ... }, schema=schema.EVENT_SCHEMA)
    >>> infer_changes(logs)["message"].item()
    'kube-proxy restarted on ip-10-0-1-5 (v1.23.6)'
    """
    witnesses = _witness_rows(events)
    episodes = _episodes(witnesses, episode_gap=episode_gap, window=window)
    starts = _version_starts(episodes)
    callers = _caller_rows(events, starts=starts)
    switches = _switches(callers, window=window)
    rows = silence_rows(host_silences(events))
    if witnesses.height or switches.height:
        learned = _caller_versions(callers, starts)
        orphans = _attach_switches(episodes, switches, episode_gap=episode_gap, learned=learned)
        rows.extend(episode.row() for episode in episodes)
        rows.extend(_binary_change_rows(orphans, window=window, learned=learned))
    if not rows:
        return pl.DataFrame(schema=EVENT_SCHEMA)
    frame = pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row")
    return validate(frame.sort("ts", "file", "line", nulls_last=True))


def _witness_rows(events: pl.DataFrame) -> pl.DataFrame:
    """The log rows that are witnesses, with the witness's name and any version."""
    said = pl.concat_str(["source", "component"], separator=" ", ignore_nulls=True).fill_null("")
    message = pl.col("message").fill_null("")
    name = pl.lit(None, pl.String)
    for w in reversed(WITNESSES):
        match = message.str.contains(w.pattern)
        if w.where:
            match = match & said.str.contains(w.where)
        name = pl.when(match).then(pl.lit(w.name)).otherwise(name)
    found = (
        events.lazy()
        .filter(
            (pl.col("kind") == "log")
            & pl.col("ts").is_not_null()
            & ~pl.col("source").fill_null("").is_in(NOT_WITNESSES)
            & message.str.contains(_ANY_WITNESS)
        )
        .with_columns(witness=name)
        .filter(pl.col("witness").is_not_null())
    )
    version = pl.lit(None, pl.String)
    for w in WITNESSES:
        if w.version is None:
            continue
        from_message = message.str.extract(w.version, 1)
        if w.version_attr:
            from_attrs = pl.col("attrs").str.json_path_match(f"$.{w.version_attr}")
            from_message = pl.coalesce(from_message, from_attrs)
        version = pl.when(pl.col("witness") == w.name).then(from_message).otherwise(version)
    return found.with_columns(version=version).collect(engine="streaming")


_BY_NAME = {w.name: w for w in WITNESSES}
#: One pass over every message finds the few that may be witnesses.
_ANY_WITNESS = "|".join(f"(?:{w.pattern})" for w in WITNESSES)


@dataclass
class _Episode:
    """One start (or reload, or stop without a start) of one program on one host."""

    event: str
    host: str | None
    component: str
    program: str
    source: str | None
    first: dict[str, object]
    lines: list[dict[str, object]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    before: dict[str, str] = field(default_factory=dict)
    stopped_at: datetime | None = None
    switches: list[dict[str, object]] = field(default_factory=list)
    learned_before: dict[str, str] = field(default_factory=dict)

    @property
    def ts(self) -> datetime:
        return self.first["ts"]

    @property
    def last_ts(self) -> datetime:
        return self.lines[-1]["ts"]

    def add(self, row: dict[str, object]) -> None:
        self.lines.append(row)
        witness = _BY_NAME[row["witness"]]
        if row["version"] and witness.scheme and witness.scheme not in self.versions:
            self.versions[witness.scheme] = row["version"]

    def change(self) -> tuple[str, object, object, dict[str, object]]:
        """The change type, from, to and extra attrs this episode stands for."""
        extra: dict[str, object] = {}
        if self.event == "reload":
            return "config", None, None, extra
        if self.event == "stop":
            return "other", None, "stopped", extra
        old, new, direction = None, None, None
        before = {**self.learned_before, **self.before}
        known = [s for s in self.versions if s in before] or list(self.versions)
        if known:
            scheme = known[0]
            new, old = self.versions[scheme], before.get(scheme)
            direction = compare_versions(old, new) if old else None
            extra["version_scheme"] = scheme
            if scheme not in self.before and scheme in self.learned_before:
                extra["from_by_callers"] = True
        returned = [s for s in self.switches if s["returned"]]
        if self.switches:
            extra["binary_changed"] = True
            extra["callers_changed"] = _caller_summary(self.switches)
            if returned and len(returned) == len(self.switches):
                extra["returned_to_earlier_binary"] = True
        if self.stopped_at is not None:
            extra["stopped_at"] = self.stopped_at.isoformat()
        if old is not None and old == new:
            direction = "same"
        if direction in ("upgrade", "rollback"):
            return direction, old, new, extra
        if direction is None and old is not None:
            return "other", old, new, extra
        if self.program == "kubelet":
            return "reboot", None, new, extra
        if direction is None and "returned_to_earlier_binary" in extra:
            return "rollback", None, new, extra
        if self.switches:
            return "other", None, new, extra
        return "restart", None, new, extra

    def row(self) -> dict[str, object]:
        change_type, old, new, extra = self.change()
        target = f"node/{self.host}" if self.program == "kubelet" and self.host else self.component
        witnesses = [f"{r['file']}:{r['line']}" for r in self.lines]
        attrs = change_attrs(
            change_type,
            target,
            old=old,
            new=new,
            inferred=True,
            program=self.program,
            witness=str(self.first["message"])[:200],
            witnesses=witnesses,
            **extra,
        )
        return _row(
            first=self.first,
            host=self.host,
            component=self.component,
            source=self.source,
            change_type=change_type,
            message=_describe(self.program, self.component, self.host, change_type, old, new),
            attrs=attrs,
        )


def _episodes(
    witnesses: pl.DataFrame, *, episode_gap: timedelta, window: timedelta
) -> list[_Episode]:
    """Starts, reloads and lone stops per host and program, each start knowing the
    versions the same program last started with on the same host."""
    rows = witnesses.with_columns(_component=pl.coalesce("component", "source", pl.lit("?"))).sort(
        "host", "_component", "ts", "file", "line", nulls_last=True
    )
    done: list[_Episode] = []
    key, current, stop, last_versions = None, None, None, {}
    for row in rows.iter_rows(named=True):
        witness = _BY_NAME[row["witness"]]
        here = (row["host"], row["_component"])
        if here != key:
            if stop is not None:
                done.append(stop)
            key, current, stop, last_versions = here, None, None, {}
        if witness.event == "reload":
            episode = _new_episode("reload", row, witness)
            episode.add(row)
            done.append(episode)
            continue
        if witness.event == "stop":
            if stop is None or row["ts"] - stop.last_ts > episode_gap:
                if stop is not None:
                    done.append(stop)
                stop = _new_episode("stop", row, witness)
            stop.add(row)
            continue
        # a witness line seen again is another start, unless sooner than any restart
        # takes: CoreDNS writes its banner twice, as a log line and on stdout
        joins = (
            current is not None
            and row["ts"] - current.last_ts <= episode_gap
            and (
                row["witness"] not in {r["witness"] for r in current.lines}
                or row["ts"] - current.last_ts < RESTART_TAKES
            )
        )
        if not joins:
            if current is not None:
                last_versions.update(current.versions)
            current = _new_episode("start", row, witness)
            current.before = dict(last_versions)
            if stop is not None and row["ts"] - stop.last_ts <= window:
                current.stopped_at = stop.ts
                current.lines.extend(stop.lines)
                stop = None
            done.append(current)
        current.add(row)
    if stop is not None:
        done.append(stop)
    for episode in done:
        episode.lines.sort(key=lambda r: (r["ts"], r["line"]))
    return done


def _new_episode(event: str, row: dict[str, object], witness: Witness) -> _Episode:
    component = row["_component"] if row["_component"] != "?" else witness.program or "?"
    return _Episode(
        event=event,
        host=row["host"],
        component=component,
        program=witness.program or component,
        source=row["source"],
        first=row,
    )


# --- the caller witness -----------------------------------------------------------------

_CALLER = r'"caller": ?"([^"]+)"'

#: Less time than any stop of a process and start of another takes: the same template
#: from another source line sooner than this after the last from the old one is still
#: the same process.
RESTART_TAKES = timedelta(seconds=1)


def caller_switches(
    events: pl.DataFrame, *, window: timedelta = timedelta(minutes=10)
) -> pl.DataFrame:
    """Moments when a message template starts to come from another source line on a host.

    For each host, component and template, the rows are split into runs of one
    ``caller``. A switch from run A to run B at time t counts only when, within
    ``window`` of t, the template came from A alone before and from B alone after: a
    template that two call sites of one build write in turn is not a switch. Nor is one
    written from B less than :data:`RESTART_TAKES` after A's last line: a build changes
    only when its process stops and another starts, while one process writes the same
    message from two call sites within microseconds (kubelet's ``parsed scheme: ""``
    from ``remote_runtime.go`` and then ``remote_image.go`` at start-up).

    Returns
    -------
    pl.DataFrame
        One row per switch: ``host``, ``component``, ``source``, ``template``, ``ts``
        and ``file``/``line`` (the first line from the new caller), ``old_caller``,
        ``new_caller``, ``old_last_ts`` (the last line from the old one) and
        ``returned`` (the new caller was seen on this host before).
    """
    return _switches(_caller_rows(events), window=window)


#: Rows of the caller query reduced at a time (see :func:`_caller_rows`): the most rows
#: held whole at once, as strings, while their runs are found.
CALLER_CHUNK = 1 << 18

_NAMES = ["source", "template", "file", "caller", "component", "host"]
_GROUP = ["host", "component", "template"]


def _caller_rows(events: pl.DataFrame, *, starts: pl.DataFrame | None = None) -> pl.DataFrame:
    """Log rows that name their source line, with it as ``caller``, of the templates that
    come from more than one source line of one component: enough of them to give the runs
    and versions of :func:`_switches` and :func:`_caller_versions` that all of them give.

    Only those can switch, and only their lines can name a switch's version (see
    :func:`_caller_versions`): in a log of a million lines they are usually few, so the
    sorting and grouping after this see few rows. The source line is read out of the
    attrs once, in one pass over the store (the regex is most of its cost), and the rows
    of single-caller templates are dropped after it.

    The rest of a template's lines, a million from one source line in a quiet week, say
    nothing: of each stretch of one file's lines (in line order, their times never going
    back) from one caller of one host, component and template, only its first and last
    line are kept, and the first line after each of ``starts`` (the table of
    :func:`_version_starts`) of that host and component, so that each line still kept
    names each start that any of the stretch's lines follows. The query is reduced
    :data:`CALLER_CHUNK` rows at a time, so memory follows the number of stretches, not of
    lines. A stretch whose time span holds a line of another caller of its host,
    component and template (two files of one host written side by side, each from its
    own build) is read again whole (:func:`_contested`), so the runs are those of every
    line.
    """
    query = (
        events.lazy()
        .filter(
            (pl.col("kind") == "log")
            & pl.col("ts").is_not_null()
            & pl.col("template").is_not_null()
            & pl.col("attrs").str.contains('"caller"', literal=True)
        )
        .select(
            "ts",
            "source",
            "template",
            "file",
            "line",
            caller=pl.col("attrs").str.extract(_CALLER, 1),
            component=pl.coalesce("component", "source", pl.lit("?")),
            host=pl.col("host").fill_null("?"),
        )
        .filter(pl.col("caller").is_not_null())
        # a store of millions of lines may give millions of these: names as categories
        # hold them in a fraction of the memory, and sort and compare as numbers
        .with_columns(pl.col(_NAMES).cast(pl.Categorical))
    )
    epochs = None
    if starts is not None and starts.height:
        epochs = (
            starts.select("host", "component", _epoch="ts")
            .unique()
            .with_columns(pl.col("host", "component").cast(pl.Categorical))
            .sort("_epoch")
        )
    chunks = query.collect_batches(chunk_size=CALLER_CHUNK, engine="streaming")
    kept = [_stretch_ends(chunk, number, epochs) for number, chunk in enumerate(chunks)]
    if not kept:
        empty = pl.DataFrame(schema=query.collect_schema())
        kept = [empty.with_columns(_cut=pl.lit(False), _chain=pl.lit(0, pl.UInt64))]
    rows = pl.concat(kept)
    rows = rows.filter(pl.col("caller").n_unique().over("component", "template") > 1)
    again = _contested(rows)
    rows = rows.drop("_chain", "_cut")
    if again.height:
        found = (
            query.filter(pl.col("file").is_in(again.get_column("file").unique().implode()))
            .join(again.lazy(), on=["file", *_GROUP, "caller"])
            .filter(pl.col("line").is_between("_lo", "_hi"))
            .select(rows.columns)
            .collect(engine="streaming")
        )
        # a line of two stretches (two files of one name) is counted once; a line the
        # input holds twice, once: both give the same runs and versions
        rows = pl.concat([rows, found]).unique()
    if rows.height == 0:
        return rows.with_columns(pl.col(_NAMES).cast(pl.String))
    return rows


def _stretch_ends(chunk: pl.DataFrame, number: int, epochs: pl.DataFrame | None) -> pl.DataFrame:
    """The first and last row of each stretch of ``chunk``: rows of one file, host,
    component and template that follow each other in the chunk's order, from one caller,
    after one start of ``epochs``, each with a later line than the one before and a time
    no earlier. ``_chain`` names the stretch (unique across chunks), ``_cut`` says rows of
    it were dropped.

    The names are categories: a chunk is put in order of their codes and its position, so
    that a stretch's rows are next to each other and found by comparing each row with the
    one before, with no grouping."""
    key = ["file", *_GROUP]
    frame = chunk.with_row_index("_at")
    if epochs is None:
        frame = frame.with_columns(_epoch=pl.lit(None, chunk.schema["ts"]))
    else:
        # the start each row follows, as :func:`_caller_versions` joins them
        frame = frame.sort("ts").join_asof(
            epochs,
            left_on="ts",
            right_on="_epoch",
            by=["host", "component"],
            strategy="backward",
            check_sortedness=False,
        )
    # a hash that two keys share only puts their rows side by side: stretches stop there
    frame = frame.sort(pl.struct(pl.col(key).to_physical()).hash(), "_at")
    same = pl.all_horizontal(
        [pl.col(c).to_physical() == pl.col(c).to_physical().shift(1) for c in [*key, "caller"]]
    )
    follows = (
        same
        & pl.col("_epoch").eq_missing(pl.col("_epoch").shift(1))
        & (pl.col("line") > pl.col("line").shift(1))
        & (pl.col("ts") >= pl.col("ts").shift(1))
    ).fill_null(False)
    at = pl.int_range(pl.len(), dtype=pl.UInt32)
    frame = frame.with_columns(_first=~follows).with_columns(
        _chain=pl.col("_first").cum_sum(),
        _last=pl.col("_first").shift(-1, fill_value=True),
        # on a stretch's last row: whether rows lie between it and the first
        _cut=at - pl.when("_first").then(at).forward_fill() >= 2,
    )
    return frame.filter(pl.col("_first") | pl.col("_last")).select(
        *chunk.columns, "_cut", _chain=pl.col("_chain").cast(pl.UInt64) + (number << 32)
    )


def _contested(rows: pl.DataFrame) -> pl.DataFrame:
    """The stretches of :func:`_stretch_ends` with rows dropped whose time span may hold a
    line of another caller of their host, component and template: ``file``, host,
    component, template, ``caller`` and the lines ``_lo`` to ``_hi`` to read again.

    In the order of :func:`_switches` (host, component, template, time, line), a
    stretch's lines lie between its first and its last. Another caller's line lies there
    too when one of the kept rows between them is another caller's, or when the stretch
    lies inside another caller's stretch that has one (whose dropped lines may fall
    anywhere in it). Otherwise every line between its first and last is its caller's,
    and the dropped ones start or end no run."""
    if rows.height == 0:
        return pl.DataFrame(
            schema={
                **{c: rows.schema[c] for c in ["file", *_GROUP, "caller"]},
                "_lo": rows.schema["line"],
                "_hi": rows.schema["line"],
            }
        )
    new_group = pl.any_horizontal([pl.col(c) != pl.col(c).shift(1) for c in _GROUP])
    turn = (new_group | (pl.col("caller") != pl.col("caller").shift(1))).fill_null(True)
    ordered = (
        rows.sort(*_GROUP, "ts", "line")
        .with_columns(_segment=turn.cum_sum(), _at=pl.int_range(pl.len()))
        .with_columns(
            _is_first=pl.col("_at") == pl.col("_at").min().over("_chain"),
            _split=pl.col("_segment").n_unique().over("_chain") > 1,
        )
    )
    edge = (
        pl.when(pl.col("_split") & pl.col("_is_first"))
        .then(1)
        .when(pl.col("_split"))
        .then(-1)
        .otherwise(0)
    )
    # how many split stretches of another caller are open at each row
    inside = (edge.cum_sum().over(_GROUP) - edge.cum_sum().over(*_GROUP, "caller")) > 0
    return (
        ordered.with_columns(_inside=inside & pl.col("_is_first"))
        .filter(
            pl.col("_cut").any().over("_chain")
            & (pl.col("_split") | pl.col("_inside").any().over("_chain"))
        )
        .group_by("_chain")
        .agg(
            pl.col("file", *_GROUP, "caller").first(),
            _lo=pl.col("line").min(),
            _hi=pl.col("line").max(),
        )
        .drop("_chain")
    )


def _switches(rows: pl.DataFrame, *, window: timedelta) -> pl.DataFrame:
    group = ["host", "component", "template"]
    starts_run = (
        (pl.col("_group") != pl.col("_group").shift(1))
        | (pl.col("caller") != pl.col("caller").shift(1))
    ).fill_null(True)
    ends_run = starts_run.shift(-1, fill_value=True)
    # a run's rows are next to each other once sorted: its first row and its last
    # row's time are picked out by position, with no grouping
    runs = (
        rows.lazy()
        # the names are categories (:func:`_caller_rows`): their codes tell groups apart
        .with_columns(_group=pl.struct(pl.col(group).to_physical()).hash())
        .sort("_group", "ts", "line")
        .select(
            *[pl.col(c).filter(starts_run) for c in [*group, "caller", "file", "line", "source"]],
            start=pl.col("ts").filter(starts_run),
            end=pl.col("ts").filter(ends_run),
        )
        .with_row_index("_run")
        .sort(*group, "_run")
    )
    before = pl.col("end").shift(1).over(group)
    two_before = pl.col("end").shift(2).over(group)
    after = pl.col("start").shift(-1).over(group)
    first_seen = pl.col("start").min().over([*group, "caller"])
    switches = (
        runs.with_columns(
            old_caller=pl.col("caller").shift(1).over(group),
            old_last_ts=before,
            _clean_before=two_before.is_null() | (two_before < pl.col("start") - window),
            _clean_after=after.is_null() | (after > pl.col("start") + window),
            returned=first_seen < pl.col("start"),
        )
        .filter(
            pl.col("old_caller").is_not_null()
            & pl.col("_clean_before")
            & pl.col("_clean_after")
            & (pl.col("start") - pl.col("old_last_ts") >= RESTART_TAKES)
        )
        .select(
            pl.when(pl.col("host") != "?").then(pl.col("host")).alias("host"),
            "component",
            "source",
            "template",
            pl.col("start").alias("ts"),
            "file",
            "line",
            "old_caller",
            pl.col("caller").alias("new_caller"),
            "old_last_ts",
            "returned",
        )
        .with_columns(pl.col("file").cast(pl.String))
        .sort("ts", "line")
    )
    return switches.collect()


def _attach_switches(
    episodes: list[_Episode],
    switches: pl.DataFrame,
    *,
    episode_gap: timedelta,
    learned: dict[tuple[str, str, str], tuple[str, str]],
) -> list[dict[str, object]]:
    """Give each switch to the start on its host and program that lies between the old
    caller's last line and the new caller's first; return the switches with no start.

    A start whose previous version the logs never showed takes it from the old callers,
    when those are known to belong to one version (see :func:`_caller_versions`)."""
    starts: dict[tuple[object, str], list[_Episode]] = {}
    for episode in episodes:
        if episode.event == "start":
            starts.setdefault((episode.host, episode.component), []).append(episode)
    orphans = []
    for switch in switches.iter_rows(named=True):
        candidates = starts.get((switch["host"], switch["component"]), [])
        chosen = None
        for episode in candidates:
            if switch["old_last_ts"] - episode_gap <= episode.ts <= switch["ts"]:
                chosen = episode
        if chosen is None:
            orphans.append(switch)
            continue
        chosen.switches.append(switch)
        known = learned.get((switch["component"], switch["template"], switch["old_caller"]))
        if known and known[0] in chosen.versions and known[0] not in chosen.before:
            chosen.learned_before.setdefault(known[0], known[1])
    return orphans


def _version_starts(episodes: list[_Episode]) -> pl.DataFrame:
    """The starts that name their version: ``host`` (``?`` for none), ``component``,
    ``ts``, ``scheme`` and ``version`` (the first the start names), sorted by time."""
    starts = [
        {
            "host": e.host or "?",
            "component": e.component,
            "ts": e.ts,
            "scheme": next(iter(e.versions)),
            "version": next(iter(e.versions.values())),
        }
        for e in episodes
        if e.event == "start" and e.versions
    ]
    schema = {
        "host": pl.String,
        "component": pl.String,
        "ts": EVENT_SCHEMA["ts"],
        "scheme": pl.String,
        "version": pl.String,
    }
    return pl.DataFrame(starts, schema=schema).sort("ts")


def _caller_versions(
    callers: pl.DataFrame, starts: pl.DataFrame
) -> dict[tuple[str, str, str], tuple[str, str]]:
    """Which version each source line belongs to: (component, template, caller) to
    (scheme, version), from the lines logged after each start that names its version
    (``starts``, of :func:`_version_starts`), anywhere. Only lines that every such start
    agrees on are kept."""
    if starts.height == 0 or callers.height == 0:
        return {}
    table = starts.with_columns(pl.col("host", "component").cast(callers.schema["host"]))
    joined = (
        callers.select("host", "component", "template", "caller", "ts")
        .sort("ts")
        .join_asof(
            table, on="ts", by=["host", "component"], strategy="backward", check_sortedness=False
        )
        .filter(pl.col("version").is_not_null())
        .group_by("component", "template", "caller")
        .agg(pl.col("scheme").first(), pl.col("version").unique())
        .filter(pl.col("version").list.len() == 1)
    )
    return {
        (row["component"], row["template"], row["caller"]): (row["scheme"], row["version"][0])
        for row in joined.iter_rows(named=True)
    }


def _binary_change_rows(
    switches: list[dict[str, object]],
    *,
    window: timedelta,
    learned: dict[tuple[str, str, str], tuple[str, str]],
) -> list[dict[str, object]]:
    """One change per burst of switches on one host and program with no start seen; its
    versions are those the old and new source lines are known to belong to, if any."""
    rows = []
    groups: dict[tuple[object, str], list[list[dict[str, object]]]] = {}
    for switch in sorted(switches, key=lambda s: (str(s["host"]), s["component"], s["ts"])):
        bursts = groups.setdefault((switch["host"], switch["component"]), [])
        if bursts and switch["ts"] - bursts[-1][0]["ts"] <= window:
            bursts[-1].append(switch)
        else:
            bursts.append([switch])
    for (host, component), bursts in groups.items():
        for burst in bursts:
            first = burst[0]
            returned = all(s["returned"] for s in burst)
            change_type = "rollback" if returned else "other"
            old, new = _burst_versions(burst, learned)
            direction = compare_versions(old, new)
            if direction in ("upgrade", "rollback"):
                change_type = direction
            attrs = change_attrs(
                change_type,
                component,
                old=old,
                new=new,
                versions_by_callers=True if old or new else None,
                inferred=True,
                program=component,
                witness=f"{first['template']} now from {first['new_caller']}",
                witnesses=[f"{s['file']}:{s['line']}" for s in burst],
                binary_changed=True,
                returned_to_earlier_binary=True if returned else None,
                callers_changed=_caller_summary(burst),
                changed_after=min(s["old_last_ts"] for s in burst).isoformat(),
            )
            text = (
                f"{component} on {host or '?'} runs another build: {len(burst)} message(s) now "
                f"come from other source lines" + (", ones it showed before" if returned else "")
            )
            if old or new:
                text += f" ({old or '?'} -> {new or '?'})"
            rows.append(
                _row(
                    first={**first, "message": text},
                    host=host,
                    component=component,
                    source=first["source"],
                    change_type=change_type,
                    message=text,
                    attrs=attrs,
                )
            )
    return rows


def _burst_versions(
    burst: list[dict[str, object]], learned: dict[tuple[str, str, str], tuple[str, str]]
) -> tuple[str | None, str | None]:
    """The versions the old and the new source lines of a burst belong to, if agreed."""
    olds, news = set(), set()
    for s in burst:
        for caller, found in ((s["old_caller"], olds), (s["new_caller"], news)):
            known = learned.get((s["component"], s["template"], caller))
            if known:
                found.add(known)
    old = next(iter(olds))[1] if len(olds) == 1 else None
    new = next(iter(news))[1] if len(news) == 1 else None
    return old, new


def _caller_summary(switches: list[dict[str, object]]) -> list[str]:
    """A few ``template: old -> new`` lines, enough for a reviewer to check."""
    return [f"{s['template']}: {s['old_caller']} -> {s['new_caller']}" for s in switches[:5]]


# --- silences ---------------------------------------------------------------------------


def silence_rows(silences: pl.DataFrame) -> list[dict[str, object]]:
    """One change row per silence of :func:`~timeline.reading.silences.host_silences`:
    a ``silence`` of ``node/<host>`` at the host's last line before it (its ``file`` and
    ``line``), lasting ``until`` its next line, both lines among its ``witnesses``."""
    rows = []
    for s in silences.iter_rows(named=True):
        last = f"{s['last_file']}:{s['last_line']}"
        after = f"{s['next_file']}:{s['next_line']}"
        lasted = s["end"] - s["start"]
        attrs = change_attrs(
            "silence",
            f"node/{s['host']}",
            inferred=True,
            witness=f"no line from {s['host']} for {_duration(lasted)}",
            witnesses=[last, after],
            until=s["end"].isoformat(),
            silent_s=round(lasted.total_seconds(), 3),
            last_line=last,
            next_line=after,
            usual_pause_s=s["usual_pause_s"],
            peer_pause_s=s["peer_pause_s"],
        )
        text = (
            f"host {s['host']} fell silent for {_duration(lasted)} while the other hosts "
            f"kept logging (last line {last}, next line {after})"
        )
        first = {"ts": s["start"], "file": s["last_file"], "line": s["last_line"]}
        rows.append(
            _row(
                first=first,
                host=s["host"],
                component="node",
                source=s["source"],
                change_type="silence",
                message=text,
                attrs=attrs,
            )
        )
    return rows


def _duration(span: timedelta) -> str:
    """``37 min``, ``2 h 05 min``: how long a silence lasted, to the minute.

    >>> _duration(timedelta(minutes=37, seconds=20)), _duration(timedelta(minutes=125))
    ('37 min', '2 h 05 min')
    """
    minutes = round(span.total_seconds() / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


# --- rows -------------------------------------------------------------------------------


def _row(
    *,
    first: dict[str, object],
    host: object,
    component: str,
    source: object,
    change_type: str,
    message: str,
    attrs: dict[str, object],
) -> dict[str, object]:
    return {
        "ts": first["ts"],
        "source": source,
        "host": host,
        "component": component,
        "level": "info",
        "kind": "change",
        "message": message,
        "template": f"inferred {change_type} of {component}",
        "attrs": dumps(attrs),
        "file": first["file"],
        "line": first["line"],
    }


def _describe(
    program: str,
    component: str,
    host: object,
    change_type: str,
    old: object,
    new: object,
) -> str:
    """One line: ``kube-proxy on ip-10-0-1-5 rolled back v1.24.10 -> v1.23.6``."""
    where = f" on {host}" if host else ""
    if change_type == "config":
        return f"{component}{where} reloaded its configuration"
    if change_type == "reboot":
        return f"node {host or '?'} rebooted (kubelet started" + (f", {new})" if new else ")")
    if change_type == "restart":
        return f"{component} restarted{where}" + (f" ({new})" if new else "")
    if new == "stopped":
        return f"{component} stopped{where} and no start followed"
    verbs = {"upgrade": "upgraded", "rollback": "rolled back", "other": "changed build"}
    text = f"{component}{where} {verbs.get(change_type, change_type)}"
    if old or new:
        text += f" {old or '?'} -> {new or '?'}"
    if program == "kubelet":
        text += " (kubelet started)"
    return text


# --- merging with records ---------------------------------------------------------------


def with_inferred_changes(
    events: pl.DataFrame,
    *,
    window: timedelta = timedelta(minutes=10),
    episode_gap: timedelta = timedelta(minutes=2),
    sort: bool = True,
) -> pl.DataFrame:
    """``events`` with the inferred changes added, none that a record already tells
    (see :func:`reconcile`). Calling it again recomputes the inferred rows rather than
    adding them twice.

    The result is sorted by time, file and line; with ``sort=False`` the rows keep their
    order and the inferred ones come last (for a caller that sorts anyway).
    """
    has_inferred = events.select(_is_inferred().any()).item()
    base = events.filter(~_is_inferred()) if has_inferred else events
    inferred = infer_changes(base, episode_gap=episode_gap, window=window)
    if inferred.height == 0:
        return validate(base) if has_inferred else events
    is_change = (pl.col("kind") == "change") & pl.col("ts").is_not_null()
    merged = pl.concat(
        [
            base.filter(~is_change).select(list(EVENT_SCHEMA)),
            reconcile(base.filter(is_change), inferred, window=window),
        ],
        how="vertical",
    )
    if not sort:
        return validate(merged)
    return validate(merged.sort("ts", "file", "line", nulls_last=True, maintain_order=True))


def reconcile(
    recorded: pl.DataFrame, inferred: pl.DataFrame, *, window: timedelta = timedelta(minutes=10)
) -> pl.DataFrame:
    """The change rows to keep: every recorded one, and the inferred ones no record tells.

    An inferred change matches a recorded one (not a failed one) when they are within
    ``window`` of each other, name the same program or node (one name contains the
    other: ``kube-proxy`` and ``daemonset/kube-system/kube-proxy-x7k2p``), agree on the
    host where the record names one, have compatible types (an upgrade, rollback, deploy
    or restart of one program; a reboot or restart of one node; a config change) and do
    not contradict each other's target version. Every record it matches (the DaemonSet
    patch in the audit log and the pod's event on that node, say) is kept and marked
    ``seen_in_logs`` with the witnesses' ``file:line``, and a record that names no host
    with the hosts the witnesses showed it on (``witness_hosts``, each with the time it
    showed there: a DaemonSet patch reaches the nodes its pods restarted on), and a
    record that names no version (an audit log at ``Metadata`` level has no request
    body) with the ``from`` and ``to`` of its first witness that changed version (a
    restart at the same version, or a stop, says nothing of one); the inferred row is
    dropped.
    """
    recorded = recorded.select(list(EVENT_SCHEMA))
    if inferred.height == 0:
        return recorded
    indexed = recorded.with_row_index("_row").filter(pl.col("ts").is_not_null()).sort("ts")
    records = [_Record.of(row) for row in indexed.iter_rows(named=True)]
    candidates = _Candidates([r for r in records if not r.attrs.get("failed")])
    kept = []
    for row in inferred.iter_rows(named=True):
        guess = _Record.of(row)
        matches = [r for r in candidates.near(guess, window) if r.tells(guess)]
        if not matches:
            kept.append(row)
            continue
        for match in matches:
            match.seen.append(f"{row['file']}:{row['line']}")
            went = guess.attrs.get("from")
            if match.to is None and went is not None and went != guess.to and not match.learned:
                match.learned = {"from": went, "to": guess.to}
            if row["host"] and not match.host:
                match.reached.setdefault(row["host"], row["ts"])
    marked = {r.index: r.marked() for r in records if r.seen or "seen_in_logs" in r.attrs}
    if marked:
        attrs = recorded.get_column("attrs").clone()
        attrs.scatter(list(marked), pl.Series(list(marked.values()), dtype=pl.String))
        recorded = recorded.with_columns(attrs)
    return pl.concat(
        [recorded, pl.DataFrame(kept, schema=EVENT_SCHEMA, orient="row")], how="vertical"
    )


class _Candidates:
    """Records (in time order) by host (``""`` for those that name none), then by change
    type and whether a node changed. A change can only match records of its own host or
    of none, of a type that agrees with its own (see :meth:`_Record.tells`), so each
    looks at a few instead of every record of a big fleet within the window: most
    records near a change are of another type (pod events beside a restart)."""

    def __init__(self, records: list[_Record]):
        #: host, then (change type, is node): the records' times and the records
        self.groups: dict[str, dict[tuple[str, bool], tuple[list[datetime], list[_Record]]]]
        self.groups = {}
        for record in records:
            kinds = self.groups.setdefault(record.host_key, {})
            times, members = kinds.setdefault((record.change_type, record.is_node), ([], []))
            times.append(record.ts)
            members.append(record)
        self._hosts: dict[str, list[dict]] = {}
        self._agreeing: dict[tuple[str, str, bool], list[tuple[list, list]]] = {}

    def near(self, guess: _Record, window: timedelta) -> list[_Record]:
        """The records of a host and type that agree with ``guess``'s, within ``window``
        of it."""
        lo, hi = guess.ts - window, guess.ts + window
        return [
            r
            for times, members in self._agreeing_with(guess)
            for r in members[bisect.bisect_left(times, lo) : bisect.bisect_right(times, hi)]
        ]

    def _agreeing_with(self, guess: _Record) -> list[tuple[list, list]]:
        """The groups whose host and type agree with ``guess``'s: the tests hold for a
        group's every record when they hold for its first. Each host and each host and
        type is looked up once."""
        key = (guess.host_key, guess.change_type, guess.is_node)
        if key not in self._agreeing:
            if guess.host_key not in self._hosts:
                self._hosts[guess.host_key] = [
                    kinds
                    for host, kinds in self.groups.items()
                    if _hosts_agree(host, guess.host_key)
                ]
            self._agreeing[key] = [
                group
                for kinds in self._hosts[guess.host_key]
                for group in kinds.values()
                if group[1][0]._types_agree(guess)
            ]
        return self._agreeing[key]


def _hosts_agree(mine: str, theirs: str) -> bool:
    """Whether two hosts (:attr:`_Record.host_key`) may be the same: one names none, or
    one's words are a run of the other's (``ip-10-0-1-5`` and ``ip-10-0-1-5.ec2.internal``,
    ``rmq-0`` and ``rabbit@rmq-0``; not ``ip-10-0-1-5`` and ``ip-10-0-1-50``)."""
    return not mine or not theirs or mine in theirs or theirs in mine


def _is_inferred() -> pl.Expr:
    """Inferred change rows; the attrs of the other rows (nearly all) are not searched."""
    change = pl.col("kind") == "change"
    return change & pl.when(change).then(pl.col("attrs")).str.contains('"inferred": ?true')


#: What a merge writes into a record's attrs; a later merge starts from the record without it.
_MARKS = ("seen_in_logs", "witnesses", "witness_count", "witness_hosts")
#: At most this many hosts of a record's witnesses are kept on it.
MAX_WITNESS_HOSTS = 1000


def _norm(text: object) -> str:
    return re.sub(r"[^a-z0-9]+", "", str(text or "").lower())


def _version(value: object) -> object:
    text = None if value is None else str(value)
    return version_key(image_tag(text) or text) if text else None


@dataclass
class _Record:
    """The parts of a change row that matching looks at."""

    index: int
    ts: datetime
    change_type: str
    target: str
    host: str | None
    to: object
    attrs: dict[str, object]
    seen: list[str] = field(default_factory=list)
    #: the host of each witness, and when the change showed there
    reached: dict[str, datetime] = field(default_factory=dict)
    #: the versions its first witness that changed version showed (``from``, ``to``), for
    #: a record that names none: a patch logged without its request body
    learned: dict[str, object] = field(default_factory=dict)

    @classmethod
    def of(cls, row: dict[str, object]) -> _Record:
        attrs = json.loads(row["attrs"] or "{}")
        return cls(
            index=row.get("_row", -1),
            ts=row["ts"],
            change_type=str(attrs.get("change_type", "other")),
            target=str(attrs.get("target") or row["component"] or ""),
            host=row["host"],
            to=attrs.get("to"),
            attrs=attrs,
        )

    @cached_property
    def host_key(self) -> str:
        """The host's words between slashes (``/ip/10/0/1/5/ec2/internal/``), so that
        one host contains another only word by word."""
        words = re.findall(r"[a-z0-9]+", str(self.host or "").lower())
        return f"/{'/'.join(words)}/" if words else ""

    @cached_property
    def names(self) -> list[str]:
        """The target's last part, the whole target, and for an inferred change the
        program (``rabbitmq`` for ``rabbit@rmq-1``)."""
        name = self.target.rstrip("/").rsplit("/", 1)[-1]
        program = self.attrs.get("program") if self.attrs.get("inferred") else None
        return [n for n in {_norm(name), _norm(self.target), _norm(program)} if n]

    @cached_property
    def version(self) -> object:
        return _version(self.to)

    @cached_property
    def is_node(self) -> bool:
        return self.target.lower().startswith("node/")

    def tells(self, guess: _Record) -> bool:
        """Whether this record is the same change as the inferred ``guess``."""
        if not (_hosts_agree(self.host_key, guess.host_key) and self._types_agree(guess)):
            return False
        if not any(
            len(a) >= 3 and len(b) >= 3 and (a in b or b in a)
            for a in self.names
            for b in guess.names
        ):
            return False
        mine, theirs = self.version, guess.version
        return mine is None or theirs is None or mine == theirs

    def _types_agree(self, guess: _Record) -> bool:
        mine, theirs = self.change_type, guess.change_type
        if mine == theirs:
            return True
        if self.is_node or guess.is_node:
            return {mine, theirs} <= {"reboot", "restart", "upgrade", "rollback"}
        if mine == "config":
            return False
        return mine in _COMPATIBLE_WITH_VERSIONS and theirs in _COMPATIBLE_WITH_VERSIONS

    def marked(self) -> str:
        attrs = {k: v for k, v in self.attrs.items() if k not in _MARKS}
        attrs |= {k: v for k, v in self.learned.items() if v is not None and attrs.get(k) is None}
        witnesses = self.seen
        if witnesses:
            attrs["seen_in_logs"] = True
            attrs["witnesses"] = witnesses[:20]
            attrs["witness_count"] = len(witnesses)
        if self.reached:
            attrs["witness_hosts"] = [
                {"host": host, "ts": ts.isoformat()}
                for host, ts in sorted(self.reached.items(), key=lambda kv: kv[1])
            ][:MAX_WITNESS_HOSTS]
        return dumps(attrs)
