"""What the CI parsers share: finding job records in JSON, and turning them into job rows.

CI APIs answer with JSON *documents* (a page of jobs, pretty-printed or on one line, an
array, a single job) or, once saved, JSON *lines*. :func:`json_items` finds every item in
either shape and gives it a ``[line, end_line]`` span, so that every input line belongs to
an item or to an unparsed row that says why. :func:`job_records` turns a frame of job
fields (times as ISO-8601 text, a normalised status) into event records of ``kind = job``
with one message and one set of attrs for every CI source.

This module registers no parser; ``parsers/__init__.py`` leaves it out of the formats.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence

import polars as pl

from parsers.common import json_object, records, without_lone_surrogates
from parsers.registry import Parser, Sample, Score

#: The statuses every CI source is brought to.
STATUSES = ("success", "failed", "cancelled", "running", "queued", "other")

#: ISO-8601 text for times in ``attrs``: UTC, milliseconds, ``Z``.
ISO_UTC = "%Y-%m-%dT%H:%M:%S%.3fZ"

_LEVEL_OF_STATUS = {"failed": "error", "cancelled": "warning"}
_DECODER = json.JSONDecoder()
_BLANK = re.compile(r"[ \t\n\r\ufeff]*")


# --- times --------------------------------------------------------------------------------


#: Keys only GitLab CI's jobs and pipelines write: the other CIs' sniffers count them
#: against themselves (GitLab shares ``web_url``, ``pipeline`` and ``started_at``).
GITLAB_KEYS = (
    '"queued_duration"',
    '"runner_manager"',
    '"failure_reason"',
    '"tag_list"',
    '"allow_failure"',
    '"finished_at"',
    '"iid"',
)

#: Keys only Buildkite's jobs and builds write: the other CIs' sniffers count them against
#: themselves (Buildkite shares ``state``, ``web_url``, ``started_at`` and ``finished_at``).
BUILDKITE_KEYS = (
    '"agent_query_rules"',
    '"runnable_at"',
    '"step_key"',
    '"retried_in_job_id"',
    '"raw_log_url"',
    '"soft_failed"',
    '"rebuilt_from"',
)

#: What :func:`sniff_keys` needs in a sample: a job's ``status`` (or ``state``) key.
SNIFF_LITERALS = ('"status"', '"state"')


def sniff_keys(
    sample: list[str], *, own: Sequence[str], others: Sequence[str], per_key: float, label: str
) -> Score:
    """Score JSON by the keys it names: each of this CI's ``own`` keys adds ``per_key``
    (to 0.95), two or more of another CI's keys take 0.5 away."""
    text = "\n".join(sample)
    has_status = any(literal in text for literal in SNIFF_LITERALS)
    if not text.lstrip("\ufeff \t\r\n").startswith(("{", "[")) or not has_status:
        return Score(0.0, "not JSON with a status")
    hits = [key for key in own if key in text]
    foreign = sum(key in text for key in others)
    score = min(0.95, per_key * len(hits)) - (0.5 if foreign >= 2 else 0.0)
    return Score(max(score, 0.0), f"{label} keys: {', '.join(hits) or 'none'}")


def api_parser(
    name: str,
    description: str,
    *,
    sniff: Callable[[list[str]], Score],
    parse: Callable[[pl.LazyFrame], pl.LazyFrame],
    samples: tuple[Sample, ...],
    literals: tuple[str, ...] = SNIFF_LITERALS,
) -> Parser:
    """A CI's saved API answers as a format: its sniffer is asked only of a sample that
    holds one of ``literals`` (by default, one that names a status), and small files
    whose lines are JSON values each are read together, as each alone."""
    return Parser(
        name=name,
        description=description,
        sniff=sniff,
        parse=parse,
        samples=samples,
        literals=literals,
        files_together=True,
        whole_line=json_value_line,
    )


#: What git writes before its own messages on a job's stderr: ``fatal:`` where it gives
#: up (a clone or fetch that failed), ``error:`` and ``warning:``. A job log's script
#: output has no level of its own; these lines are the ones an SRE reads as one.
GIT_WORD = r"^(fatal|error|warning): "
GIT_LEVEL = {"fatal": "error", "error": "error", "warning": "warning"}


def git_level(body: pl.Expr) -> pl.Expr:
    """The level git's own prefix gives a line of a job's output; null for other lines.

    >>> import polars as pl
    >>> lines = pl.Series(["fatal: could not read Username", "warning: redirecting", "ok"])
    >>> pl.select(git_level(pl.lit(lines))).to_series().to_list()
    ['error', 'warning', None]
    """
    return body.str.extract(GIT_WORD, 1).replace_strict(
        GIT_LEVEL, default=None, return_dtype=pl.String
    )


def utc_time(text: pl.Expr) -> pl.Expr:
    """An ISO-8601 time (``Z`` or an offset, 0 to 9 fractional digits; no zone is read as
    UTC) as a UTC datetime; null when it is missing or not a time.

    >>> import polars as pl
    >>> pl.select(utc_time(pl.lit("2023-03-14T20:02:11.5+02:00"))).item().isoformat()
    '2023-03-14T18:02:11.500000+00:00'
    """
    zoned = text.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%#z", time_unit="us", time_zone="UTC", strict=False
    )
    naive = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False)
    return zoned.fill_null(naive.dt.replace_time_zone("UTC"))


def utc_offset_s(text: pl.Expr) -> pl.Expr:
    """The zone offset an ISO-8601 time states, in seconds (``Z`` is 0); null when none.

    >>> import polars as pl
    >>> pl.select(utc_offset_s(pl.lit("2023-03-14T13:02:11-05:00"))).item()
    -18000
    """
    tail = text.str.slice(-6).str.replace(":", "", literal=True).str.slice(-5)
    stated = tail.str.contains(r"^[+-][0-9]{4}$")
    minutes = tail.str.slice(1, 2).cast(pl.Int32, strict=False) * 60 + tail.str.slice(3, 2).cast(
        pl.Int32, strict=False
    )
    signed = pl.when(tail.str.starts_with("-")).then(-minutes).otherwise(minutes)
    return (
        pl.when(text.str.ends_with("Z") | text.str.ends_with("z"))
        .then(pl.lit(0, pl.Int32))
        .when(stated)
        .then(signed * 60)
        .cast(pl.Int32)
    )


def seconds_between(start: pl.Expr, stop: pl.Expr) -> pl.Expr:
    """``stop - start`` in float seconds; null when either is missing."""
    return (stop - start).dt.total_microseconds().cast(pl.Float64) / 1e6


def iso_utc(time: pl.Expr) -> pl.Expr:
    """A UTC datetime as ``2023-03-14T18:02:11.412Z`` text."""
    return time.dt.strftime(ISO_UTC)


# --- statuses and executors -----------------------------------------------------------


def normalised_status(raw: pl.Expr, table: Mapping[str, str]) -> pl.Expr:
    """``raw`` mapped through ``table`` (case-insensitive) onto :data:`STATUSES`; a status
    the table does not know is ``other`` (see :func:`status_note`).

    >>> import polars as pl
    >>> pl.select(normalised_status(pl.lit("Canceled"), {"canceled": "cancelled"})).item()
    'cancelled'
    """
    return (
        raw.str.to_lowercase()
        .replace_strict(dict(table), default="other", return_dtype=pl.String)
        .fill_null("other")
    )


def status_note(raw: pl.Expr, table: Mapping[str, str], source: str) -> pl.Expr:
    """A note for a status ``table`` does not know, so a new CI status is seen, not lost."""
    unknown = raw.is_not_null() & ~raw.str.to_lowercase().is_in(list(table))
    return pl.when(unknown).then(
        pl.format(
            "unknown {} status '{}': status set to other, raw_status kept", pl.lit(source), raw
        )
    )


def executor_from_labels(labels: pl.Expr) -> pl.Expr:
    """The executor a list of runner labels asks for: ``windows``, ``macos``, ``machine``
    (a Linux VM) or, for a self-hosted runner, its most specific label.

    >>> import polars as pl
    >>> pl.select(executor_from_labels(pl.lit(["self-hosted", "linux", "x64", "gpu"]))).item()
    'gpu'
    """
    generic = ["self-hosted", "linux", "windows", "macos", "x64", "x86", "arm64", "arm"]
    lower = labels.list.eval(pl.element().str.to_lowercase())
    specific = labels.list.filter(~pl.element().str.to_lowercase().is_in(generic)).list.first()
    return (
        pl.when(lower.list.contains("self-hosted"))
        .then(pl.coalesce(specific, pl.lit("self-hosted")))
        .when(lower.list.eval(pl.element().str.starts_with("windows")).list.any())
        .then(pl.lit("windows"))
        .when(lower.list.eval(pl.element().str.starts_with("macos")).list.any())
        .then(pl.lit("macos"))
        .when(
            lower.list.eval(
                pl.element().str.starts_with("ubuntu") | (pl.element() == "linux")
            ).list.any()
        )
        .then(pl.lit("machine"))
        .otherwise(labels.list.first())
    )


# --- job rows -----------------------------------------------------------------------------

_TIME_FIELDS = ("queued_at", "created_at", "started_at", "stopped_at")


def time_problem() -> pl.Expr:
    """What is wrong with a job's times, or null: a time written that cannot be read
    (``2023-02-30``, ``+25:00``, ``not-a-date``), or a negative wait or run time.
    Reads ``queue_delay_s`` and ``duration_s`` as computed, before they are cleared.

    >>> import polars as pl
    >>> jobs = pl.DataFrame(
    ...     {"queued_at": ["2023-02-30T10:00:00Z"], "queue_delay_s": [-3.0]}
    ... ).with_columns(
    ...     created_at=pl.lit(None, pl.String), started_at=pl.lit(None, pl.String),
    ...     stopped_at=pl.lit(None, pl.String), duration_s=pl.lit(None, pl.Float64),
    ... )
    >>> jobs.select(time_problem()).item()
    "impossible time '2023-02-30T10:00:00Z' in queued_at; started 3.0s before it was queued"
    """
    parts = [
        pl.when(pl.col(c).is_not_null() & (pl.col(c) != "") & utc_time(pl.col(c)).is_null()).then(
            pl.format(f"impossible time '{{}}' in {c}", pl.col(c))
        )
        for c in _TIME_FIELDS
    ]
    parts.append(
        pl.when(pl.col("queue_delay_s") < 0).then(
            pl.format("started {}s before it was queued", -pl.col("queue_delay_s").round(3))
        )
    )
    parts.append(
        pl.when(pl.col("duration_s") < 0).then(
            pl.format("stopped {}s before it started", -pl.col("duration_s").round(3))
        )
    )
    joined = pl.concat_str(parts, separator="; ", ignore_nulls=True)
    return pl.when(joined != "").then(joined)


def log_file_job(path: str | None) -> str | None:
    """The job a CI job's log file is of, by its name: the name without its folder,
    ``.gz`` and ``.txt`` or ``.log``.

    >>> log_file_job("ci/logs/deploy.log.gz"), log_file_job("unit-tests.txt")
    ('deploy', 'unit-tests')
    """
    if not path:
        return None
    name = re.split(r"[/\\]", path)[-1].removesuffix(".gz")
    return re.sub(r"\.(?:txt|log)$", "", name)


def told_by_its_log(facts: pl.LazyFrame, **fields: pl.Expr) -> pl.LazyFrame:
    """The fields :func:`job_records` reads, for a job that only its own log tells of
    (``facts``: one row with ``line`` and ``name``): a log states no id, number, raw
    status, note, creation time, duration or link, which only a CI's API gives; ``fields``
    adds the times and what else the log says."""
    unknown = ("job_id", "number", "raw_status", "note", "created_at", "url")
    return facts.with_columns(
        end_line="line",
        noun=pl.lit("job"),
        component="name",
        duration_s=pl.lit(None, pl.Float64),
        **{name: pl.lit(None, pl.String) for name in unknown},
        **fields,
    )


def log_line_records(
    parsed: pl.LazyFrame,
    *,
    source: str,
    component: pl.Expr,
    message: pl.Expr | str,
    attrs: pl.Expr,
    unparsed: pl.Expr | None = None,
) -> pl.LazyFrame:
    """The log rows of a CI job's log, whose lines have a UTC ``_time`` (or none) and a
    ``level``: each line at its time, of the job's ``component``; ``unparsed`` says why
    a line could not be read, where one could not."""
    return records(
        parsed,
        ts=pl.col("_time").dt.replace_time_zone(None),
        utc_offset_s=pl.when(pl.col("_time").is_not_null()).then(pl.lit(0)),
        source=pl.lit(source),
        component=component,
        level="level",
        message=message,
        attrs=attrs,
        unparsed=unparsed,
    )


def job_records(
    jobs: pl.LazyFrame,
    *,
    source: str,
    extra: Mapping[str, pl.Expr] | None = None,
    detail: pl.Expr | None = None,
) -> pl.LazyFrame:
    """Event records of ``kind = job`` from a frame of job fields.

    ``jobs`` has ``line``, ``end_line``, ``noun`` (``job``, ``workflow run``), ``job_id``,
    ``number`` (shown as ``#n``), ``name``, ``component``, ``status`` (one of
    :data:`STATUSES`), ``raw_status``, ``note``, ``created_at``, ``queued_at``,
    ``started_at``, ``stopped_at`` (ISO-8601 text), ``duration_s`` (the source's own
    duration, or null), ``executor`` and ``url``; it may have ``runner`` (the machine or
    pod the job ran on, as the CI names it) and ``host``. ``extra`` adds fields to
    ``attrs`` where they are not null; ``detail`` is what the source says went wrong,
    shown beside the status in the message (GitLab's ``failure_reason``), so that it
    joins the signature.

    A runner is where a job ran, not a node the cluster's logs were written on: it goes
    to the message and to ``attrs.runner_name``, and the row's ``host`` is left to what
    ties the job to a node (a wrapper's or the file path's host), so that runners are
    never counted among the hosts an incident's errors fell on.

    The row's time is when the job was queued (else created, started, stopped), with the
    offset its text states; the queue delay is started minus queued, null until started.
    """
    if "runner" not in jobs.collect_schema().names():
        jobs = jobs.with_columns(runner=pl.lit(None, pl.String))
    queued, started, stopped = (
        utc_time(pl.col(c)) for c in ("queued_at", "started_at", "stopped_at")
    )
    # a time that cannot be read (2023-02-30, +25:00) is left out and said, never guessed
    first_time = pl.coalesce(
        *(pl.when(utc_time(pl.col(c)).is_not_null()).then(pl.col(c)) for c in _TIME_FIELDS)
    )
    timed = (
        jobs.with_columns(
            _queued=queued,
            _started=started,
            _stopped=stopped,
            _offset=utc_offset_s(first_time),
            _first=utc_time(first_time),
        )
        .with_columns(
            queue_delay_s=seconds_between(pl.col("_queued"), pl.col("_started")),
            duration_s=pl.coalesce(
                pl.col("duration_s").cast(pl.Float64),
                seconds_between(pl.col("_started"), pl.col("_stopped")),
            ),
        )
        .with_columns(_time_problem=time_problem())
        .with_columns(
            # a negative wait or run time is a clock gone wrong: flagged, not counted
            queue_delay_s=pl.when(pl.col("queue_delay_s") >= 0).then("queue_delay_s"),
            duration_s=pl.when(pl.col("duration_s") >= 0).then("duration_s"),
        )
    )
    required = pl.struct(
        job_id=pl.col("job_id").cast(pl.String),
        name=pl.col("name"),
        status=pl.col("status"),
        raw_status=pl.col("raw_status"),
        queued_at=iso_utc(pl.col("_queued")),
        started_at=iso_utc(pl.col("_started")),
        stopped_at=iso_utc(pl.col("_stopped")),
        queue_delay_s=pl.col("queue_delay_s").round(3),
        duration_s=pl.col("duration_s").round(3),
        executor=pl.col("executor"),
    ).struct.json_encode()
    optional = json_object(
        url=pl.col("url"),
        runner_name=pl.col("runner"),
        note=pl.col("note"),
        time_problem=pl.col("_time_problem"),
        **dict(extra or {}),
    )
    attrs = (
        pl.when(optional == "{}")
        .then(required)
        .otherwise(required.str.strip_suffix("}") + "," + optional.str.strip_prefix("{"))
    )
    wall_clock = pl.col("_first").dt.replace_time_zone(None) + pl.duration(
        seconds=pl.col("_offset").fill_null(0)
    )
    return records(
        timed,
        ts=wall_clock,
        utc_offset_s=pl.when(pl.col("_first").is_not_null()).then(pl.col("_offset").fill_null(0)),
        prefix_ts=pl.lit(None),
        source=pl.lit(source),
        kind=pl.lit("job"),
        level=pl.col("status").replace_strict(_LEVEL_OF_STATUS, default="info"),
        message=job_message(detail),
        attrs=attrs,
        unparsed=pl.lit(None, pl.String),
    )


def json_job_records(
    lines: pl.LazyFrame,
    *,
    source: str,
    list_keys: Collection[str],
    dtype: pl.Struct,
    is_job: pl.Expr,
    job_fields: Callable[[pl.LazyFrame], pl.LazyFrame],
    unwrap: Callable[[pl.Expr], pl.Expr] | None = None,
    expand: Callable[[pl.LazyFrame], pl.LazyFrame] | None = None,
    not_job: pl.Expr | None = None,
    extra: Mapping[str, pl.Expr] | None = None,
    detail: pl.Expr | None = None,
) -> pl.LazyFrame:
    """Job records from the JSON in ``lines``, and an unparsed row for every line that
    holds no job: a break in the JSON, or an item that ``is_job`` says is something else.

    Each item is decoded once into ``dtype`` (see :func:`decode`), as the struct column
    ``_job`` that :func:`field` reads; ``unwrap`` may then swap it for a struct it holds
    (a webhook's job), and ``expand`` turns an item that holds several jobs (a Buildkite
    build in a list of builds) into a row for each, every one with the item's span.
    ``is_job`` and ``job_fields`` read ``_job``: ``job_fields`` adds the columns
    :func:`job_records` reads, and ``extra`` and ``detail`` are as there. ``not_job`` says
    what an item that is no job is, in its unparsed rows, where the source can tell.
    """
    found = json_items(lines, list_keys, dtype)
    decoded = found.lazy().filter(pl.col("reason").is_null())
    if unwrap is not None:
        decoded = decoded.with_columns(_job=unwrap(pl.col("_job")))
    if expand is not None:
        decoded = expand(decoded)
    flagged = decoded.with_columns(_is_job=is_job.fill_null(False))
    jobs = job_fields(flagged.filter("_is_job").drop("_is_job", "reason"))
    good = job_records(jobs, source=source, extra=extra, detail=detail)
    generic = pl.lit(f"a JSON object that is not a {source} job record")
    said = generic if not_job is None else pl.coalesce(not_job, generic)
    not_jobs = flagged.filter(~pl.col("_is_job")).select("line", "end_line", reason=said)
    broken = (
        found.lazy().filter(pl.col("reason").is_not_null()).select("line", "end_line", "reason")
    )
    bad = pl.concat([not_jobs, broken], how="vertical")
    return pl.concat([good, unparsed_records(bad, lines, source=source)], how="vertical")


def decode(items: pl.Series, dtype: pl.Struct) -> pl.Series:
    """Items' JSON texts as structs of ``dtype``, whose leaves are strings (a number is
    kept as its text, ``true`` as ``"true"``) so that no value's type can fail the read.

    Polars decodes the whole column at once; only when an item's shape disagrees with
    ``dtype`` (a string where an object belongs) does Python decode them one by one,
    turning each disagreeing value into null.

    >>> import polars as pl
    >>> dtype = pl.Struct({"n": pl.String, "e": pl.Struct({"type": pl.String})})
    >>> decode(pl.Series(['{"n": 7, "e": {"type": "docker"}}', '{"e": "docker"}']), dtype).to_list()
    [{'n': '7', 'e': {'type': 'docker'}}, {'n': None, 'e': None}]
    """
    try:
        return items.str.json_decode(dtype)
    except pl.exceptions.ComputeError:
        return pl.Series(items.name, [_shaped(json.loads(t), dtype) for t in items], dtype=dtype)


def _shaped(value: object, dtype: pl.DataType) -> object:
    """A decoded JSON value in the shape of ``dtype``, null where it does not fit."""
    if isinstance(dtype, pl.Struct):
        if not isinstance(value, dict):
            return None
        return {f.name: _shaped(value.get(f.name), f.dtype) for f in dtype.fields}
    if isinstance(dtype, pl.List):
        return [_shaped(v, dtype.inner) for v in value] if isinstance(value, list) else None
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field(path: str) -> pl.Expr:
    """A field of the decoded item ``_job``, nested with dots: ``field("executor.type")``."""
    expr = pl.col("_job")
    for name in path.split("."):
        expr = expr.struct.field(name)
    return expr


def unparsed_records(spans: pl.LazyFrame, lines: pl.LazyFrame, *, source: str) -> pl.LazyFrame:
    """One unparsed record for every line of every ``[line, end_line]`` span in ``spans``,
    carrying the span's ``reason`` and the line's text."""
    per_line = (
        spans.select(
            line=pl.int_ranges("line", pl.col("end_line").cast(pl.Int64) + 1), reason="reason"
        )
        .explode("line")
        .with_columns(pl.col("line").cast(pl.UInt32))
        .unique("line", keep="first", maintain_order=True)
    )
    joined = per_line.join(
        lines.select("line", "text"), on="line", how="left", maintain_order="left"
    ).sort("line")
    return records(
        joined,
        end_line=pl.col("line"),
        source=pl.lit(source),
        message=pl.col("text"),
        unparsed=pl.col("reason"),
    )


def job_message(detail: pl.Expr | None = None) -> pl.Expr:
    """One line that says what happened to a job, e.g.
    ``job build-and-test #1234 success (docker, queued 4.2s, ran 61.0s)``; the source's
    own status, where it differs, and ``detail`` go in brackets after the status
    (``job rspec #7 failed [runner_system_failure] (...)``), and the runner it ran on
    where the CI names one goes with the executor (``(gpu, runner gpu-7f9c2, queued ...)``)."""
    differs = pl.col("raw_status").is_not_null() & (
        pl.col("raw_status").str.to_lowercase() != pl.col("status")
    )
    detail = pl.lit(None, pl.String) if detail is None else detail
    said = pl.when(differs & (pl.col("status") == "other")).then(pl.col("raw_status"))
    bracket = pl.concat_str(
        [pl.when(differs & (pl.col("status") != "other")).then(pl.col("raw_status")), detail],
        separator=", ",
        ignore_nulls=True,
    )
    shown = pl.coalesce(said, pl.col("status"))
    status = pl.when(bracket != "").then(pl.format("{} [{}]", shown, bracket)).otherwise(shown)
    head = pl.concat_str(
        [
            pl.col("noun"),
            pl.coalesce(pl.col("name"), pl.lit("(unnamed)")),
            pl.lit("#") + pl.col("number").cast(pl.String),
            status,
        ],
        separator=" ",
        ignore_nulls=True,
    )
    delay = (
        pl.when(pl.col("queue_delay_s").is_not_null())
        .then(pl.format("queued {}s", pl.col("queue_delay_s").round(1)))
        .when(pl.col("status") == "queued")
        .then(pl.lit("not started"))
    )
    ran = pl.when(pl.col("duration_s").is_not_null()).then(
        pl.format("ran {}s", pl.col("duration_s").round(1))
    )
    runner = pl.lit("runner ") + pl.col("runner")
    details = pl.concat_str(
        [pl.col("executor"), runner, delay, ran], separator=", ", ignore_nulls=True
    )
    return pl.when(details != "").then(head + " (" + details + ")").otherwise(head)


# --- finding items in JSON --------------------------------------------------------------

#: Columns of :func:`json_items`.
ITEM_SCHEMA = {
    "line": pl.UInt32,
    "end_line": pl.UInt32,
    "list_key": pl.String,
    "reason": pl.String,
}


def json_items(lines: pl.LazyFrame, list_keys: Collection[str], dtype: pl.Struct) -> pl.DataFrame:
    """Every item of the JSON in ``lines``, decoded into ``dtype`` (see :func:`decode`) as
    ``_job``, with its line span; and the lines that hold none, with the reason.

    Reads JSON lines (one object per line, decoded by polars in one go) and JSON
    documents (an array, an object with a list under one of ``list_keys``, a single
    object, several documents one after another). An item is an element of such a list,
    or an object that has none. Items of a pretty-printed document span from the line
    where they start to the line before the next one; the first starts at line 1, the
    last ends on the last line; the items of a one-line document share its line.

    A document that breaks (truncated, invalid) keeps the complete items before the
    break; the lines of the item it breaks in, and every line after, come back with a
    ``reason`` naming the line where it breaks. Returns rows of :data:`ITEM_SCHEMA` plus
    ``_job``: ``list_key`` is the list an item came from; ``reason`` is set on lines that
    hold no item.
    """
    schema = {**ITEM_SCHEMA, "_job": dtype}
    frame = lines.select("line", "text").collect()
    if frame.height == 0:
        return pl.DataFrame(schema=schema)
    keys = tuple(list_keys)
    if _looks_like_json_lines(frame):
        found = _items_of_json_lines(frame, keys, dtype)
    else:
        found = _items_of_document(frame, keys, dtype)
    return _with_spans(found.select(list(schema)), frame)


def json_value_line() -> pl.Expr:
    """A line that is a JSON value on its own (a job, a page of jobs): a file of only such
    lines reads line by line, so several such files read together as each alone."""
    return pl.col("text").str.json_path_match("$").is_not_null()


def _looks_like_json_lines(frame: pl.DataFrame) -> bool:
    """Whether most non-blank lines are JSON values on their own (not a pretty document)."""
    head = frame.filter(pl.col("text").str.strip_chars() != "").head(200)
    if head.height == 0:
        return False
    valid = head.select(pl.col("text").str.json_path_match("$").is_not_null().mean()).item()
    return valid >= 0.5


def _items_of_json_lines(
    frame: pl.DataFrame, keys: tuple[str, ...], dtype: pl.Struct
) -> pl.DataFrame:
    """Lines that are one object each are decoded together; pages, arrays and broken
    lines are walked one by one (they are few)."""
    stripped = pl.col("text").str.strip_chars()
    page_hint = "|".join(re.escape(f'"{key}"') for key in keys)
    flagged = frame.filter(stripped != "").with_columns(
        single=stripped.str.starts_with("{") & stripped.str.ends_with("}"),
        hint=pl.col("text").str.contains(rf"(?:{page_hint})\s*:\s*\["),
    )
    # the hint is a cheap literal; only the few lines it finds are checked as pages
    is_page = pl.any_horizontal(
        pl.lit(False),
        *[pl.col("text").str.json_path_match(f"$.{key}").str.starts_with("[") for key in keys],
    ).fill_null(False)
    hinted = pl.col("single") & pl.col("hint")
    flagged = pl.concat(
        [
            flagged.filter(~hinted).with_columns(page=pl.lit(False)),
            flagged.filter(hinted).with_columns(single=~is_page, page=is_page),
        ]
    )
    singles = flagged.filter("single")
    try:
        singles = singles.with_columns(_job=singles["text"].str.json_decode(dtype))
        rest = flagged.filter(~pl.col("single"))
    except pl.exceptions.ComputeError:
        valid = singles["text"].str.json_path_match("$").is_not_null()
        rest = pl.concat([flagged.filter(~pl.col("single")), singles.filter(~valid)])
        singles = singles.filter(valid)
        singles = singles.with_columns(_job=decode(singles["text"], dtype))
    singles = singles.select(
        "line",
        end_line="line",
        list_key=pl.lit(None, pl.String),
        reason=pl.lit(None, pl.String),
        _job="_job",
    )
    paged, rest = _items_of_pages(rest, keys, dtype)
    walked = [
        _items_of_document(pl.DataFrame({"line": [line], "text": [body]}), keys, dtype)
        for line, body in rest.select("line", "text").iter_rows()
    ]
    schema = {**ITEM_SCHEMA, "_job": dtype}
    return pl.concat(
        [singles.cast(schema), paged.cast(schema), *(w.select(list(schema)) for w in walked)]
    )


def _items_of_pages(
    lines: pl.DataFrame, keys: tuple[str, ...], dtype: pl.Struct
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The items of the ``page`` lines (an object with a non-empty list under exactly one
    of ``keys``: an API page saved as one line), decoded together as
    :func:`_items_of_document` decodes each alone; and the lines left for it (broken
    lines, empty pages, items that do not fit ``dtype``)."""
    schema = {**ITEM_SCHEMA, "_job": dtype}
    none = pl.DataFrame(schema=schema)
    pages = lines.filter("page")
    if pages.height == 0 or not keys:
        return none, lines
    try:
        lists = pages["text"].str.json_decode(pl.Struct({key: pl.List(dtype) for key in keys}))
    except pl.exceptions.ComputeError:
        return none, lines
    decoded = pages.select("line", _lists=lists).unnest("_lists")
    holding = [pl.col(key).list.len().fill_null(0) > 0 for key in keys]
    one = decoded.filter(pl.sum_horizontal(holding) == 1)
    items = pl.concat(
        [
            one.filter(held).select("line", list_key=pl.lit(key), _job=pl.col(key)).explode("_job")
            for key, held in zip(keys, holding, strict=True)
        ]
    ).sort("line", maintain_order=True)
    found = items.select(
        "line", end_line="line", list_key="list_key", reason=pl.lit(None, pl.String), _job="_job"
    )
    return found.cast(schema), lines.filter(~pl.col("line").is_in(one["line"].implode()))


def _items_of_document(
    frame: pl.DataFrame, keys: tuple[str, ...], dtype: pl.Struct
) -> pl.DataFrame:
    schema = {**ITEM_SCHEMA, "_job": dtype}
    numbers = frame["line"].to_list()
    texts = frame.select(without_lone_surrogates(pl.col("text")))["text"].to_list()
    body = "\n".join(texts)
    starts = [0]
    for piece in texts[:-1]:
        starts.append(starts[-1] + len(piece) + 1)

    def line_at(offset: int) -> int:
        return numbers[max(bisect.bisect_right(starts, offset) - 1, 0)]

    items, broken = walk_json(body, keys)
    found = pl.DataFrame(
        {
            "line": [line_at(start) for start, _end, _key in items],
            "list_key": [key for _start, _end, key in items],
            "item": [body[start:end] for start, end, _key in items],
        },
        schema={"line": pl.UInt32, "list_key": pl.String, "item": pl.String},
    )
    found = found.with_columns(
        end_line="line",
        reason=pl.lit(None, pl.String),
        _job=decode(found["item"], dtype),
    ).select(list(schema))
    if broken is None and not items:
        what = "document" if len(numbers) > 1 else "line"
        return _unparsed_lines(frame, numbers[0], f"the JSON {what} holds no job records", dtype)
    if broken is None:
        return found
    item_start, offset, why = broken
    at, lost_from = line_at(offset), line_at(item_start)
    reason = f"JSON breaks at line {at} ({why}); {len(items)} complete items before it were read"
    if lost_from < at:
        reason += f", the one from line {lost_from} on was lost"
    tail = _unparsed_lines(frame, lost_from if items else numbers[0], reason, dtype)
    return pl.concat([found, tail], how="vertical")


def _unparsed_lines(frame: pl.DataFrame, first: int, reason: str, dtype: pl.Struct) -> pl.DataFrame:
    return frame.filter(pl.col("line") >= first).select(
        pl.col("line").cast(pl.UInt32),
        end_line=pl.col("line").cast(pl.UInt32),
        list_key=pl.lit(None, pl.String),
        reason=pl.lit(reason),
        _job=pl.lit(None, dtype),
    )


def _with_spans(found: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """Stretch each item's span to the line before the next row, the first to line 1 and
    the last to the last line, so that blank lines and closing brackets belong somewhere."""
    last = frame["line"].max()
    ordered = found.with_row_index("_order").sort("line", "_order")
    item = pl.col("reason").is_null()
    next_line = pl.col("line").shift(-1)
    return ordered.with_columns(
        line=pl.when(item & (pl.int_range(pl.len()) == 0))
        .then(pl.lit(1, pl.UInt32))
        .otherwise("line"),
        end_line=pl.when(item)
        .then(
            pl.max_horizontal("end_line", pl.coalesce(next_line - 1, pl.lit(last)).cast(pl.UInt32))
        )
        .otherwise("end_line"),
    ).drop("_order")


class _Break(Exception):
    """Where a JSON text stops being readable, why, and where the item it was reading
    began (``start``, set by the innermost item being read)."""

    def __init__(self, offset: int, why: str) -> None:
        super().__init__(why)
        self.offset = offset
        self.why = why
        self.start: int | None = None


def walk_json(
    text: str, list_keys: Collection[str]
) -> tuple[list[tuple[int, int, str | None]], tuple[int, int, str] | None]:
    """The items in a JSON text as ``(start, end, list_key)`` character offsets, and, if
    it breaks, ``(item_start, offset, why)``: where the unfinished item began, where the
    text stops being JSON, and why. None when it does not break.

    Each top-level value in turn (several pages may follow each other) is an array of
    items, an object whose ``list_keys`` members hold the items (or hold an object that
    holds them: Elasticsearch's ``{"hits": {"hits": [...]}}``), or, with no such member,
    an item itself. Items are decoded one by one, so a break keeps the ones before it.

    >>> walk_json('{"items": [{"a": 1}, {"a": 2}], "next_page_token": null}', ["items"])
    ([(11, 19, 'items'), (21, 29, 'items')], None)
    >>> walk_json('[{"a": 1}, {"a": ', ["items"])[1]
    (11, 17, 'the text ends inside a value')
    """
    items: list[tuple[int, int, str | None]] = []
    pos = _skip_blank(text, 0)
    try:
        while pos < len(text):
            pos = _skip_blank(text, _walk_value(text, pos, items, frozenset(list_keys)))
    except _Break as broken:
        start = broken.offset if broken.start is None else broken.start
        return items, (start, broken.offset, broken.why)
    return items, None


def _skip_blank(text: str, pos: int) -> int:
    return _BLANK.match(text, pos).end()


def _decode(text: str, pos: int) -> tuple[object, int]:
    if pos >= len(text):
        raise _Break(len(text), "the text ends inside a value")
    try:
        return _DECODER.raw_decode(text, pos)
    except RecursionError:
        raise _Break(pos, "a value nested deeper than the reader follows") from None
    except json.JSONDecodeError as exc:
        open_string = exc.msg.startswith("Unterminated string") and "\n" not in text[exc.pos :]
        ends = exc.pos >= len(text) - 1 or open_string
        why = "the text ends inside a value" if ends else exc.msg
        raise _Break(exc.pos, why) from None


def _expect(text: str, pos: int, allowed: str) -> str:
    pos = _skip_blank(text, pos)
    if pos >= len(text):
        raise _Break(len(text), "the text ends inside a value")
    if text[pos] not in allowed:
        wanted = " or ".join(f"'{c}'" for c in allowed)
        raise _Break(pos, f"expected {wanted}, found {text[pos]!r}")
    return text[pos]


def _walk_value(text: str, pos: int, items: list, keys: frozenset[str]) -> int:
    head = text[pos]
    if head == "[":
        return _walk_array(text, pos, items, None)
    if head != "{":
        raise _Break(pos, f"expected a JSON object or array, found {head!r}")
    start, holds_list = pos, False
    try:
        pos = _skip_blank(text, pos + 1)
        if pos < len(text) and text[pos] == "}":
            items.append((start, pos + 1, None))
            return pos + 1
        while True:
            pos = _skip_blank(text, pos)
            key_at = pos
            key, pos = _decode(text, pos)
            if not isinstance(key, str):
                raise _Break(key_at, "expected a quoted key")
            _expect(text, pos, ":")
            pos = _skip_blank(text, _skip_blank(text, pos) + 1)
            if key in keys and pos < len(text) and text[pos] == "[":
                holds_list = True
                pos = _walk_array(text, pos, items, key)
            elif key in keys and pos < len(text) and text[pos] == "{":
                inner: list[tuple[int, int, str | None]] = []
                try:
                    pos = _walk_value(text, pos, inner, keys)
                finally:  # the items before a break are kept, as in a list
                    if any(found is not None for _s, _e, found in inner):
                        holds_list = True
                        items.extend(inner)
            else:
                _value, pos = _decode(text, pos)
            if _expect(text, pos, ",}") == "}":
                pos = _skip_blank(text, pos) + 1
                break
            pos = _skip_blank(text, pos) + 1
    except _Break as broken:
        if broken.start is None:
            broken.start = broken.offset if holds_list else start
        raise
    if not holds_list:
        items.append((start, pos, None))
    return pos


def _walk_array(text: str, pos: int, items: list, key: str | None) -> int:
    pos = _skip_blank(text, pos + 1)
    if pos < len(text) and text[pos] == "]":
        return pos + 1
    while True:
        start = pos = _skip_blank(text, pos)
        try:
            _value, pos = _decode(text, pos)
        except _Break as broken:
            broken.start = start
            raise
        items.append((start, pos, key))
        if _expect(text, pos, ",]") == "]":
            return _skip_blank(text, pos) + 1
        pos = _skip_blank(text, pos) + 1
