"""Prefixes that container runtimes and kubectl put before a program's own line.

They are found per file from a sample, stripped with whole-column expressions, and what
they say (time, stream, pod, container) is kept as line columns for the program's parser
and the loader. Partial lines (CRI ``P``, Docker lines without a trailing newline) are
joined to the line that completes them.

=====================  ====================================================================
``cri``                ``2023-03-14T18:00:01.123456789Z stderr F msg`` (containerd, CRI-O)
``docker-json``        ``{"log":"msg\\n","stream":"stderr","time":"2023-03-14T18:00:01.1Z"}``
``kubectl-timestamps`` ``2023-03-14T18:00:01.123456789Z msg`` (``kubectl logs --timestamps``)
``kubectl-prefix``     ``[pod/kube-proxy-x7k2p/kube-proxy] msg`` (``kubectl logs --prefix``),
                       optionally followed by a ``--timestamps`` time
=====================  ====================================================================
"""

from __future__ import annotations

import re

import polars as pl

from parsers import registry
from parsers.common import only, per_file, stacked_samples
from parsers.registry import shares_of

#: An RFC 3339 time as runtimes write it (a lower-case ``z`` too).
RFC3339 = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_JSON_STRING = r'(?:[^"\\]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*'

#: The tag is ``F`` or ``P``, optionally followed by more tags (``P:TAG1:TAG2``); the
#: first CRI releases wrote no tag at all.
CRI = (
    rf"^(?P<prefix_ts>{RFC3339}) (?P<stream>stdout|stderr)"
    r"(?: (?P<tag>[FP](?::[^ ]*)?))?(?: (?P<text>.*))?$"
)
_ATTRS = r'(?:"attrs" *: *\{[^}]*\} *, *)?'
#: What dockerd's json-file driver writes; spaces after the separators (as other writers
#: and hand-made copies have) and an ``attrs`` object (``--log-opt labels=...``) are allowed.
DOCKER_JSON = (
    rf'^\{{ *"log" *: *"(?P<log>{_JSON_STRING})" *, *"stream" *: *"(?P<stream>stdout|stderr)"'
    rf' *, *{_ATTRS}"time" *: *"(?P<prefix_ts>{RFC3339})" *(?:, *"attrs" *: *\{{[^}}]*\}} *)?\}}$'
)
KUBECTL_TIMESTAMPS = rf"^(?P<prefix_ts>{RFC3339}) (?P<text>.*)$"
_POD_CONTAINER = r"^\[pod/(?P<host>[^/\]]+)/(?P<container>[^\]]+)\] "
KUBECTL_PREFIX = rf"{_POD_CONTAINER}(?:(?P<prefix_ts>{RFC3339}) )?(?P<text>.*)$"
#: A ``kubectl logs --prefix`` line whose time is followed by a run of spaces: a padded
#: level follows it (Spring Boot's ``%5p`` writes ``  INFO``), so the time is the
#: program's own; ``--timestamps`` puts one space after its time on every line.
_PADDED_AFTER_POD = rf"^\[pod/[^/\]]+/[^\]]+\] {RFC3339}  "

#: The CRI time as polars reads it (RFC 3339, up to nanoseconds, ``Z`` or an offset).
CRI_TIME = "%Y-%m-%dT%H:%M:%S%.f%#z"
#: The shape containerd and CRI-O write it in: UTC, up to nine fractional digits.
_USUAL_CRI_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z$"

#: Prefix name and its pattern, most specific first.
PREFIXES = {
    "cri": CRI,
    "docker-json": DOCKER_JSON,
    "kubectl-prefix": KUBECTL_PREFIX,
    "kubectl-timestamps": KUBECTL_TIMESTAMPS,
}

_DATE_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
_TIME = rf"{_DATE_TIME}(?:\.[0-9]+)?"
#: What recognises a prefix in a sample where that differs from what strips it: ``kubectl
#: logs --timestamps`` writes the runtime's time and one space, then the program's line,
#: which may begin with a tab (a klog ``err=<`` block's lines) or be a block's closing
#: `` >``. A time followed by a run of spaces (and a level: zap's console encoder, its tabs
#: pasted as spaces) is the program's own.
DETECTED_BY = {"kubectl-timestamps": rf"^{_TIME}[Zz] (?:[^ ]|$| >$)"}
#: The same with an offset (CRI-O writes local times), to the nanosecond as runtimes write
#: it (RabbitMQ's ``rfc3339_T`` writes microseconds and its own offset), where the line is
#: not a journal's: ``journalctl -o short-iso`` writes ``TIME HOST UNIT[PID]: `` (a host has
#: no bracket, a unit is not digits alone: not ``[INFO] plugin/reload:``, nor the ``I0314
#: 18:`` of klog).
_OFFSET_TIMESTAMPS = rf"^{_DATE_TIME}\.[0-9]{{7,9}}[+-][0-9]{{2}}:[0-9]{{2}} (?:[^ ]|$| >$)"
_JOURNAL_ISO = (
    rf"^{_TIME}[+-][0-9]{{2}}:?[0-9]{{2}} [^ \[\]]+ [^ \[\]:]*[^ \[\]:0-9][^ \[\]:]*"
    r"(?:\[[0-9]+\])?: "
)

#: ``logcli query``'s lines: a time, then the stream's labels (a wrapper of its own).
_LOKI_LABELS = rf'^{_TIME}(?:[Zz]|[+-][0-9]{{2}}:[0-9]{{2}}) \{{(?:\}}|[A-Za-z_][A-Za-z0-9_]*=")'

#: Literals a line with the prefix holds; a sample with none of them is not matched
#: against the prefix's pattern at all (``kubectl-timestamps`` has no such literal).
PREFIX_LITERALS = {
    "cri": (" stdout ", " stderr "),
    "docker-json": ('{"log":',),
    "kubectl-prefix": ("[pod/",),
    "kubectl-timestamps": (),
}

#: Share of sample lines that must carry a prefix for the file to be read as prefixed.
MIN_SHARE = 0.6


def detect(sample: list[str]) -> tuple[str | None, float]:
    """The runtime prefix most lines of ``sample`` carry, and the share that do.

    >>> detect(["2023-03-14T18:00:01.123456789Z stderr F [INFO] plugin/reload: Reloading"])
    ('cri', 1.0)
    """
    return _best(_shares(sample, _candidates(sample)))


def detect_each(samples: list[list[str]]) -> list[tuple[str | None, float]]:
    """:func:`detect` of each of several files' samples, in one query for them all (the
    fixed cost of a query, not the lines, is what a small file's sample costs). A line
    without a prefix's literals never matches its pattern, so every pattern is asked.

    >>> detect_each([["2023-03-14T18:00:01.1Z stderr F x"], ["plain"], []])
    [('cri', 1.0), (None, 0.0), (None, 0.0)]
    """
    shares = {name: _carries(name).mean() for name in PREFIXES}
    found = per_file(stacked_samples(samples), len(samples), **shares)
    return [_best(each or {}) for each in found]


def _candidates(sample: list[str]) -> list[str]:
    """The prefixes ``sample`` may carry: those whose literals it holds (or that have none)."""
    text = "\n".join(sample)
    return [
        name
        for name in PREFIXES
        if not PREFIX_LITERALS[name] or any(literal in text for literal in PREFIX_LITERALS[name])
    ]


def _best(shares: dict[str, float]) -> tuple[str | None, float]:
    """The prefix of the highest share, or None below :data:`MIN_SHARE`."""
    best, best_share = None, 0.0
    for name, share in shares.items():
        if share > best_share:
            best, best_share = name, share
    if best_share < MIN_SHARE:
        return None, best_share
    return best, best_share


def prefix_share(sample: list[str], name: str) -> float:
    """The share of ``sample``'s lines that carry the runtime prefix ``name``, as
    :func:`detect` judges it: none where a prefix before it in :data:`PREFIXES` carries
    as many (a CRI line also begins with the time ``kubectl logs --timestamps`` writes)."""
    before = list(PREFIXES)[: list(PREFIXES).index(name) + 1]
    candidates = [n for n in _candidates(sample) if n in before]
    if name not in candidates:
        return 0.0
    best, share = _best(_shares(sample, candidates))
    return share if best == name else 0.0


def _shares(sample: list[str], names: list[str]) -> dict[str, float]:
    """For each prefix of ``names``, the share of ``sample``'s non-blank lines that carry
    it (:func:`_carries`), in one query."""
    return shares_of(sample, {name: _carries(name) for name in names})


def _carries(name: str) -> pl.Expr:
    """Whether each sample line (``line``) carries the prefix ``name``, recognised by
    :data:`DETECTED_BY` where that differs from its pattern. A line a format's
    ``distinct_start`` claims whole is the program's own, its time the program's, though
    a time and a space begin it (a Spring Boot ``ERROR``, whose level is not padded)."""
    line = pl.col("line")
    carries = line.str.contains(DETECTED_BY.get(name, PREFIXES[name]))
    if name == "kubectl-timestamps":
        offset = line.str.contains(_OFFSET_TIMESTAMPS) & ~line.str.contains(_JOURNAL_ISO)
        carries = (carries | offset) & ~line.str.contains(_LOKI_LABELS)
        claimed = _claimed_by_a_format()
        if claimed:
            carries = carries & ~line.str.contains(claimed)
    return carries


def _claimed_by_a_format() -> str | None:
    """One pattern of every registered format's ``distinct_start``: lines that could be
    no other format's."""
    starts = [p.distinct_start for p in registry.all_parsers() if p.distinct_start]
    return "|".join(f"(?:{start})" for start in starts) or None


#: Why a line of a ``docker-json`` file that is no record of it is unparsed.
BROKEN_DOCKER_JSON = "a docker json-file record cut short or broken (not one JSON object)"


def broken_records(layers: tuple[str, ...]) -> pl.Expr | None:
    """Which stripped lines are a runtime's own records, broken: in a ``docker-json``
    file, a line the prefix did not match that opens or closes a JSON object (a record
    cut short by a full disk or a copy, and the half of one that follows). dockerd writes
    every line as a record and the program's lines only inside ``log``, so such a line is
    no line of the program's to continue the record above with. None for other layers.

    >>> lines = pl.DataFrame({"text": ['{"log":"E0314 18:', '0:01Z"}', "goroutine 1"],
    ...                       "stream": [None, None, None]})
    >>> lines.select(broken_records(("docker-json",))).to_series().to_list()
    [True, True, False]
    """
    if "docker-json" not in layers:
        return None
    text = pl.col("text")
    json_like = text.str.contains(r"^\s*\{") | text.str.contains(r"\}\s*$")
    return (pl.col("stream").is_null() & json_like).fill_null(False)


def strip(lines: pl.LazyFrame, prefix: str | None) -> pl.LazyFrame:
    """Remove ``prefix`` from the ``text`` of every line, keeping its time, stream and names.

    Takes ``line``, ``end_line``, ``text`` and ``path``; adds ``prefix_ts``, ``stream``,
    ``host`` and ``container`` (null where the prefix does not say). A line without the
    prefix keeps its text whole, so the program's parser still sees it.
    """
    if prefix is None:
        return lines.with_columns(
            prefix_ts=pl.lit(None, pl.Datetime("us", "UTC")),
            stream=pl.lit(None, pl.String),
            host=pl.lit(None, pl.String),
            container=pl.lit(None, pl.String),
        )
    pattern = PREFIXES[prefix]
    groups = re.findall(r"\?P<(\w+)>", pattern)
    parsed = lines.rename({"text": "_raw"})
    if prefix == "cri":
        parsed = _split_cri(parsed)
    else:
        parsed = parsed.with_columns(_f=pl.col("_raw").str.extract_groups(pattern)).unnest("_f")
    if prefix == "kubectl-prefix":
        parsed = _program_times_kept(parsed)
    for missing in {"host", "container", "tag", "log", "text", "stream"} - set(groups):
        parsed = parsed.with_columns(pl.lit(None, pl.String).alias(missing))
    # a CRI line is the prefix's when its stream is (its time may be no date)
    matched = pl.col("stream" if prefix == "cri" else groups[0]).is_not_null()
    if prefix == "docker-json":
        # row by row: one value polars refuses (a lone surrogate) must not fail the rest;
        # such a line keeps its text as written
        quoted = pl.lit('"') + pl.col("log") + pl.lit('"')
        text = pl.coalesce(quoted.str.json_path_match("$"), pl.col("log"))
        partial = matched & ~pl.col("log").str.ends_with("\\n")
        text = text.str.strip_suffix("\n")
    else:
        text = pl.col("text")
        partial = pl.col("tag") == "P"
    parsed = parsed.with_columns(
        text=pl.when(matched).then(text.fill_null("")).otherwise(pl.col("_raw")),
        partial=partial.fill_null(False),
        prefix_ts=pl.col("prefix_ts")
        if prefix == "cri"
        else pl.col("prefix_ts")
        .str.to_uppercase()
        .str.to_datetime(CRI_TIME, time_unit="us", time_zone="UTC", strict=False),
    )
    parsed = parsed.select(
        "line", "end_line", "text", "path", "prefix_ts", "stream", "host", "container", "partial"
    )
    if prefix in ("cri", "docker-json"):
        # read here, once: a file holds a partial line rarely, and joining none costs a
        # third of the strip
        parsed = parsed.collect(engine="in-memory")
        if parsed["partial"].any():
            parsed = join_partials(parsed.lazy()).collect(engine="in-memory")
        parsed = parsed.lazy()
    return parsed.drop("partial")


def _program_times_kept(parsed: pl.LazyFrame) -> pl.LazyFrame:
    """In a file of ``kubectl logs --prefix`` where some line's time is followed by a run
    of spaces (:data:`_PADDED_AFTER_POD`), the times after the prefix are the program's:
    kubectl wrote none, and they stay at the start of the text for its parser, on the
    lines whose level is not padded too (``ERROR``)."""
    own = pl.col("_raw").str.contains(_PADDED_AFTER_POD).any().over("path")
    after_pod = pl.col("_raw").str.replace(_POD_CONTAINER, "")
    return parsed.with_columns(
        text=pl.when(own & pl.col("prefix_ts").is_not_null())
        .then(after_pod)
        .otherwise(pl.col("text")),
        prefix_ts=pl.when(~own).then(pl.col("prefix_ts")),
    )


def _split_cri(lines: pl.LazyFrame) -> pl.LazyFrame:
    """The CRI fields by splitting on the first three spaces: the same result as the
    ``CRI`` pattern (a line whose time, stream or tag is not right gets null fields), at a
    fraction of the cost of a regex over every line."""
    fields = ["_stamp", "_stream", "_tag", "_text"]
    split = lines.with_columns(
        _parts=pl.col("_raw").str.splitn(" ", 4).struct.rename_fields(fields)
    ).unnest("_parts")
    stream, third, rest = pl.col("_stream"), pl.col("_tag"), pl.col("_text")
    timed = split.with_columns(prefix_ts=rfc3339_time(pl.col("_stamp")))
    # a time of the right shape that is no date (2023-02-29) still makes a prefix, as in
    # the pattern, with no time: its line is not taken for the line above's continuation
    shaped = pl.col("prefix_ts").is_not_null() | only(
        pl.col("prefix_ts").is_null(), pl.col("_stamp")
    ).str.contains(f"^{RFC3339}$").fill_null(False)
    good = shaped & stream.is_in(["stdout", "stderr"])
    simple = third.is_in(["F", "P"])
    # the rare shapes (``P:TAG1:TAG2``, no tag) are looked at on their own rows only
    odd = pl.when(~simple).then(third)
    more_tags = odd.str.contains("^[FP]:").fill_null(False)
    untagged = pl.when(~simple & ~more_tags).then(third)
    return timed.with_columns(
        prefix_ts=pl.when(good).then("prefix_ts"),
        stream=pl.when(good).then(stream),
        tag=pl.when(good & simple)
        .then(third)
        .when(good & more_tags)
        .then(odd.str.head(1))
        .when(good)
        .then(pl.lit("F")),
        text=pl.when(good & (simple | more_tags))
        .then(rest.fill_null(""))
        .when(good)
        .then(pl.coalesce(pl.concat_str(untagged, rest, separator=" "), untagged, pl.lit(""))),
    ).drop(fields)


def rfc3339_time(stamp: pl.Expr) -> pl.Expr:
    """A CRI time as UTC. The usual shape, ``2023-03-14T18:00:01.123456789Z`` (containerd
    drops trailing zeros of the fraction), is read by position: the whole seconds with
    polars' cache of repeated strings (lines of one second share them), the fraction
    added after; any other RFC 3339 time is parsed whole.

    >>> pl.select(rfc3339_time(pl.lit("2023-03-14T18:00:01.1234567Z"))).item()
    datetime.datetime(2023, 3, 14, 18, 0, 1, 123456, tzinfo=zoneinfo.ZoneInfo(key='UTC'))
    >>> pl.select(rfc3339_time(pl.lit("2023-03-14T19:00:01.5+01:00"))).item().isoformat()
    '2023-03-14T18:00:01.500000+00:00'
    """
    usual = stamp.str.contains(_USUAL_CRI_TIME)
    seconds = (
        pl.when(usual)
        .then(stamp.str.head(19))
        .str.to_datetime(
            "%Y-%m-%dT%H:%M:%S", time_unit="us", time_zone="UTC", strict=False, cache=True
        )
    )
    fraction = stamp.str.slice(20, 6).str.strip_suffix("Z").str.pad_end(6, "0")
    micros = fraction.cast(pl.Int64, strict=False)
    other = (
        pl.when(~usual)
        .then(stamp)
        .str.to_datetime(CRI_TIME, time_unit="us", time_zone="UTC", strict=False)
    )
    return pl.coalesce(seconds + pl.duration(microseconds=micros), other)


def join_partials(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Join runs of partial lines to the line that completes them, on the same stream of
    the same file: a line from the other stream starts an entry of its own.

    Only the lines of such runs are grouped; each run's text and last line are put on
    its first line, and the lines that stand alone (nearly all) keep their place."""
    partial = pl.col("partial")
    same_stream = (
        (pl.col("stream") == pl.col("stream").shift(1))
        & (pl.col("path") == pl.col("path").shift(1))
        # a collector's export holds many pods' lines
        & pl.col("host").eq_missing(pl.col("host").shift(1))
        & pl.col("container").eq_missing(pl.col("container").shift(1))
    ).fill_null(False)
    starts = ~(partial.shift(1, fill_value=False) & same_stream)
    flagged = lines.with_columns(_logical=starts.cast(pl.UInt32).cum_sum(), _starts=starts)
    names = lines.collect_schema().names()
    runs = (
        flagged.filter(~(starts & ~partial))
        .group_by("_logical")
        .agg(
            _least_line=pl.col("line").min(),
            _end_line=pl.col("end_line").max(),
            _text=pl.col("text"),
        )
        .with_columns(pl.col("_text").list.join(""))
    )
    return (
        flagged.filter("_starts")
        .join(runs, on="_logical", how="left", maintain_order="left")
        .with_columns(
            line=pl.min_horizontal("line", "_least_line"),
            end_line=pl.max_horizontal("end_line", "_end_line"),
            text=pl.coalesce("_text", "text"),
        )
        .select(names)
    )
