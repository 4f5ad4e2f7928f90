"""The same record read from two files is one row.

Some rows are records of one logical object rather than lines a program wrote: a
Kubernetes event, a CI job. A reviewer often has the same ones from two places: the
events as ``kubectl get events -o json`` and as the table pasted in the incident
channel; a run's jobs from the API and a job's log download. Read as they come, each
copy is a row, and the story counts it twice: a change inferred twice, a failed job
counted twice. :func:`deduplicated` keeps one row of each record:

- **Kubernetes events** are the same event when they are about the same object (kind
  and name, and the namespace where both copies state one), with the same reason, type
  and message, and they name the same event object: the same ``metadata.uid``, else the
  same event name (a table shows it with ``-o wide``). A copy that names none (a pasted
  table) is the event whose times agree with its own: its first occurrence no later than
  the other's last, and their last occurrences no further apart than an event object
  lives (:data:`EVENT_TTL`: an occurrence after that is a new event object), give or
  take :data:`EVENT_SLACK`, since a table's ages are cut to their unit and counted back
  from a time that may be a little off. A change row that came from an event goes with
  its event.
- **CI jobs** are the same job when they share a source, a record type and a job id
  (and project, and attempt, where both copies state them); where one copy has no id (a
  job read from its log), when they started within :data:`JOB_SLACK` of each other,
  named alike or on the same runner, and on no two runners.

Only these rows are compared, and only rows of different files: a log repeats its lines
by nature (the same error every second is many errors), and a file that lists an event
twice (the updates of a ``-w`` stream) is taken as it says.

Of the copies of a record the richest stays: an event object's JSON before a table that
names the event before one that does not, a job from the API before one read from its
log; then the copy with the higher count (the later look at the same event), then the
one with more fields. It keeps its own fields and lists the others as ``file:line`` in
``attrs.also_in``. An event's count only grows, and a copy with a higher count saw more
of it: the row keeps the highest count any copy gives, never their sum, since the
later count includes the occurrences the earlier one saw; its times stay those of the
richest copy, the ones written as times. The rows left out come back with the copy
they repeat, for the loader to count their lines as duplicate lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from parsers.jobs import utc_time
from parsers.kubectl_tables import age_seconds, age_unit_seconds
from timeline.schema import EVENT_SCHEMA

__all__ = [
    "DUPLICATE_SCHEMA",
    "EVENT_SLACK",
    "EVENT_TTL",
    "JOB_SLACK",
    "Deduplicated",
    "deduplicated",
    "event_copies",
    "job_copies",
]

#: How far apart two copies' times of one event may be beyond what their precision
#: allows: ages counted back from a ``--now`` or a file time a few minutes off.
EVENT_SLACK = timedelta(minutes=5)
#: How long an event object lives after its last occurrence (the API server's
#: ``--event-ttl``): a later occurrence is a new object, not the same one seen later.
EVENT_TTL = timedelta(hours=1)
#: How far apart two copies of one CI job may say it started: the API's whole seconds
#: against the runner's own clock.
JOB_SLACK = timedelta(minutes=1)

#: The rows :func:`deduplicated` leaves out, each with the row that stays in its place.
DUPLICATE_SCHEMA = {
    "file": pl.String,
    "line": pl.UInt32,
    "end_line": pl.UInt32,
    "kind": EVENT_SCHEMA["kind"],
    "message": pl.String,
    "record": pl.String,
    "of_file": pl.String,
    "of_line": pl.UInt32,
}

#: What each kind of record is called where a left-out row is reported.
RECORDS = {"event": "Kubernetes event", "job": "CI job"}

_EVENT_FIELDS = pl.Struct(
    {
        name: pl.String
        for name in (
            "object",
            "reason",
            "type",
            "event_uid",
            "event_name",
            "count",
            "first_seen",
            "last_seen",
            "time_from",
        )
    }
)
_JOB_FIELDS = pl.Struct(
    {
        name: pl.String
        for name in (
            "job_id",
            "name",
            "started_at",
            "record_type",
            "runner_name",
            "project",
            "run_id",
            "run_attempt",
            "derived_from",
        )
    }
)
#: The columns a copy is described by (:func:`event_copies`, :func:`job_copies`).
_PAIR = {"_row": pl.UInt32, "_of": pl.UInt32, "_exact": pl.Boolean, "_gap": pl.Int64}


@dataclass(frozen=True)
class Deduplicated:
    """``rows`` with one row per record (the copies kept marked ``also_in``), and the
    rows left out as :data:`DUPLICATE_SCHEMA`."""

    rows: pl.DataFrame
    duplicates: pl.DataFrame


def deduplicated(rows: pl.DataFrame) -> Deduplicated:
    """One row per record of ``rows`` (event frame columns): copies of a Kubernetes event
    or a CI job from another file are left out, the richest copy kept (see the module).

    Rows of any other kind pass through untouched; so does a frame with no copies.

    >>> import polars as pl
    >>> from timeline.schema import empty
    >>> deduplicated(empty()).duplicates.height
    0
    """
    indexed = rows.with_row_index("_i")
    events, jobs = event_keys(indexed), job_keys(indexed)
    pairs = pl.concat([event_copies(events), job_copies(jobs)])
    if pairs.height == 0:
        return Deduplicated(rows, pl.DataFrame(schema=DUPLICATE_SCHEMA))
    keys = pl.concat(
        [
            events.select("_i", "file", record=pl.lit("event")),
            jobs.select("_i", "file", record=pl.lit("job")),
        ]
    )
    repeating = _roots(_chosen(pairs, keys)).join(
        keys.select(_row="_i", record="record"), on="_row"
    )
    left_out = _with_change_rows(indexed, repeating)
    kept = (
        indexed.join(left_out.select("_i"), on="_i", how="anti", maintain_order="left")
        .join(_marks(indexed, left_out), on="_i", how="left", maintain_order="left")
        .with_columns(attrs=pl.coalesce("_attrs", "attrs"))
        .select(rows.columns)
    )
    return Deduplicated(kept, _reported(indexed, left_out))


# --- what makes two rows one record ---------------------------------------------------


def event_keys(rows: pl.DataFrame) -> pl.DataFrame:
    """The Kubernetes event rows of ``rows`` (indexed ``_i``) with what tells their
    event: the object's ``_kind``, ``_name`` and ``_ns``, ``_reason``, ``_type``,
    ``_text`` (the message, spaces as one), ``_uid`` and ``_ename`` (the event object's
    uid and name), ``_count``, and when the event began and was last seen, as the
    bounds ``_first_lo`` to ``_first_hi`` and ``_last_lo`` to ``_last_hi`` (a bound not
    known is null). A table row is timed by an age cut to its unit, so its time may
    stand up to a unit after the event's; without a FIRST SEEN age it is timed by when
    the event was last seen, and its first occurrence is only known to lie before."""
    field = pl.col("_e").struct.field
    parts = field("object").str.split("/")
    first_age, last_age = age_seconds(field("first_seen")), age_seconds(field("last_seen"))
    aged = first_age.is_not_null() | last_age.is_not_null()
    by_first_age = aged & first_age.is_not_null()
    ts = pl.col("ts")
    written_last = utc_time(field("last_seen"))
    # an object's time is its first occurrence unless it came from another field
    first_exact = ~aged & field("time_from").is_null()
    last_from_first = ts + pl.duration(seconds=first_age - last_age)
    return (
        rows.filter((pl.col("source") == "k8s-event") & (pl.col("kind") == "log"))
        .with_columns(_e=pl.col("attrs").str.json_decode(_EVENT_FIELDS))
        .select(
            "_i",
            "file",
            "line",
            _kind=parts.list.first().str.to_lowercase(),
            _name=parts.list.last(),
            _ns=pl.when(parts.list.len() == 3).then(parts.list.get(1, null_on_oob=True)),
            _reason=field("reason").fill_null(""),
            _type=field("type").fill_null(""),
            _text=pl.col("message").str.replace_all(r"\s+", " ").str.strip_chars().fill_null(""),
            _uid=field("event_uid"),
            _ename=field("event_name"),
            _count=field("count").cast(pl.Int64, strict=False),
            _first_lo=pl.when(first_exact)
            .then(ts)
            .when(by_first_age)
            .then(ts - pl.duration(seconds=age_unit_seconds(field("first_seen")))),
            _first_hi=ts,
            _last_lo=pl.when(by_first_age)
            .then(last_from_first - pl.duration(seconds=age_unit_seconds(field("last_seen"))))
            .when(aged)
            .then(ts - pl.duration(seconds=age_unit_seconds(field("last_seen"))))
            .otherwise(pl.coalesce(written_last, ts)),
            _last_hi=pl.when(by_first_age)
            .then(last_from_first)
            .when(aged)
            .then(ts)
            .otherwise(pl.coalesce(written_last, ts)),
            _rank=pl.when(field("event_uid").is_not_null())
            .then(3)
            .when(field("event_name").is_not_null())
            .then(2)
            .otherwise(1),
            _size=pl.col("attrs").str.len_bytes(),
        )
        .filter(pl.col("_name").is_not_null() & (pl.col("_name") != ""))
    )


def event_copies(events: pl.DataFrame) -> pl.DataFrame:
    """Pairs of rows of :func:`event_keys` that are one event: ``_row`` and the better
    copy ``_of`` it repeats, ``_exact`` when an event object's uid or name says so (else
    their times do), and ``_gap``, microseconds between when each last saw it."""
    ordered = _ordered(events)
    pairs = ordered.join(
        _theirs(ordered),
        left_on=["_kind", "_name", "_reason", "_type", "_text"],
        right_on=["_kind_o", "_name_o", "_reason_o", "_type_o", "_text_o"],
    ).filter((pl.col("file") != pl.col("file_o")) & (pl.col("_order_o") < pl.col("_order")))
    both = pl.col("_uid").is_not_null() & pl.col("_uid_o").is_not_null()
    named = pl.col("_ename").is_not_null() & pl.col("_ename_o").is_not_null()
    slack, ttl = EVENT_SLACK, EVENT_TTL + EVENT_SLACK
    # a bound not known agrees with anything
    times_agree = (
        pl.col("_first_hi").is_not_null()
        & pl.col("_first_hi_o").is_not_null()
        & (pl.col("_first_lo") - slack <= pl.col("_first_hi_o")).fill_null(True)
        & (pl.col("_first_lo_o") - slack <= pl.col("_first_hi")).fill_null(True)
        & (pl.col("_last_lo") - ttl <= pl.col("_last_hi_o")).fill_null(True)
        & (pl.col("_last_lo_o") - ttl <= pl.col("_last_hi")).fill_null(True)
    )
    same = (
        pl.when(both)
        .then(pl.col("_uid") == pl.col("_uid_o"))
        .when(named)
        .then(pl.col("_ename") == pl.col("_ename_o"))
        .otherwise(times_agree)
    )
    namespaces = (
        pl.col("_ns").is_null() | pl.col("_ns_o").is_null() | (pl.col("_ns") == pl.col("_ns_o"))
    )
    gap = (pl.col("_last_hi") - pl.col("_last_hi_o")).dt.total_microseconds().abs()
    return _oriented(pairs.filter(same & namespaces), exact=both | named, gap=gap.fill_null(0))


def job_keys(rows: pl.DataFrame) -> pl.DataFrame:
    """The CI job rows of ``rows`` (indexed ``_i``) with what tells their job: the
    source and ``_type`` (job, workflow run, pipeline), ``_id``, ``_project`` (without
    its VCS prefix, which API v1.1 leaves out), ``_attempt``, ``_run``, ``_job``
    (the name, lower case), ``_runner`` and ``_started``."""
    field = pl.col("_j").struct.field
    return (
        rows.filter(pl.col("kind") == "job")
        .with_columns(_j=pl.col("attrs").str.json_decode(_JOB_FIELDS))
        .select(
            "_i",
            "file",
            "line",
            "source",
            _type=field("record_type").fill_null("job"),
            _id=field("job_id"),
            _project=field("project")
            .str.to_lowercase()
            .str.replace(r"^(?:gh|github|bb|bitbucket|circleci)/", ""),
            _attempt=field("run_attempt"),
            _run=field("run_id"),
            _job=field("name").str.strip_chars().str.to_lowercase(),
            _runner=field("runner_name"),
            _started=utc_time(field("started_at")),
            _count=pl.lit(None, pl.Int64),
            _rank=pl.when(field("derived_from") == "log").then(1).otherwise(2),
            _size=pl.col("attrs").str.len_bytes(),
        )
    )


def job_copies(jobs: pl.DataFrame) -> pl.DataFrame:
    """Pairs of rows of :func:`job_keys` that are one job: ``_row`` and the better copy
    ``_of`` it repeats, ``_exact`` when their job ids say so (else their start, runner
    and name do), and ``_gap``, microseconds between their starts.

    Only rows that may be one job meet: those of one id, and a row without an id with
    those that started in its minute or the next or last (:data:`JOB_SLACK`), so that
    thousands of jobs are not each set beside every other."""
    ordered = _ordered(jobs)
    other = _theirs(ordered)
    by_id = ordered.join(
        other, left_on=["source", "_type", "_id"], right_on=["source_o", "_type_o", "_id_o"]
    ).with_columns(_id_o="_id")
    minute = pl.col("_started").dt.truncate(JOB_SLACK)
    loose = (
        ordered.filter(pl.col("_id").is_null() & pl.col("_started").is_not_null())
        .with_columns(_minute=pl.concat_list(minute - JOB_SLACK, minute, minute + JOB_SLACK))
        .explode("_minute")
    )
    near = loose.join(
        other.filter(pl.col("_started_o").is_not_null()).with_columns(
            _minute_o=pl.col("_started_o").dt.truncate(JOB_SLACK)
        ),
        left_on=["source", "_type", "_minute"],
        right_on=["source_o", "_type_o", "_minute_o"],
    ).drop("_minute")
    pairs = pl.concat([by_id, near], how="diagonal_relaxed").filter(
        pl.col("file") != pl.col("file_o")
    )

    def agree(column: str) -> pl.Expr:
        mine, theirs = pl.col(column), pl.col(f"{column}_o")
        return mine.is_null() | theirs.is_null() | (mine == theirs)

    both_ids = pl.col("_id").is_not_null() & pl.col("_id_o").is_not_null()
    same_runner = (pl.col("_runner") == pl.col("_runner_o")).fill_null(False)
    gap = (pl.col("_started") - pl.col("_started_o")).dt.total_microseconds().abs()
    started_together = (gap <= JOB_SLACK // timedelta(microseconds=1)).fill_null(False)
    alike = (
        started_together
        & agree("_runner")
        & agree("_run")
        & agree("_attempt")
        & ((pl.col("_job") == pl.col("_job_o")).fill_null(False) | same_runner)
    )
    same = (
        pl.when(both_ids)
        .then((pl.col("_id") == pl.col("_id_o")) & agree("_project") & agree("_attempt"))
        .otherwise(alike)
    )
    return _oriented(pairs.filter(same), exact=both_ids, gap=gap.fill_null(0))


def _theirs(keys: pl.DataFrame) -> pl.DataFrame:
    """``keys`` under other names (``_x_o``, ``file_o``...), to set beside themselves."""
    return keys.rename({c: f"{c}_o" for c in keys.columns if c != "_i"} | {"_i": "_i_o"})


def _oriented(pairs: pl.DataFrame, *, exact: pl.Expr, gap: pl.Expr) -> pl.DataFrame:
    """Pairs of rows (``_i``, ``_i_o``) that are one record, each once, as the row
    (``_row``) and the better copy it repeats (``_of``)."""
    mine_worse = pl.col("_order") > pl.col("_order_o")
    return (
        pairs.select(
            _row=pl.when(mine_worse).then("_i").otherwise("_i_o"),
            _of=pl.when(mine_worse).then("_i_o").otherwise("_i"),
            _exact=exact,
            _gap=gap,
        )
        .unique(["_row", "_of"], keep="first")
        .cast(_PAIR)
    )


def _ordered(keys: pl.DataFrame) -> pl.DataFrame:
    """``keys`` with ``_order``: 0 for the copy that stays before any other (richest,
    highest count, most fields, then first by file and line)."""
    return keys.sort(
        ["_rank", "_count", "_size", "file", "line"],
        descending=[True, True, True, False, False],
        nulls_last=True,
    ).with_columns(_order=pl.int_range(pl.len(), dtype=pl.UInt32))


# --- which copy stays -----------------------------------------------------------------


def _chosen(pairs: pl.DataFrame, files: pl.DataFrame) -> pl.DataFrame:
    """For each row that repeats another, the one copy it repeats (``_row``, ``_of``):
    a copy an id names before one the times match, then the nearest in time. A file
    lists an event or a job once, so of a file's rows that only their times match to
    one copy, the nearest is that copy's and the others are records of their own."""
    best = pairs.sort("_row", pl.col("_exact").not_(), "_gap", "_of").unique(
        "_row", keep="first", maintain_order=True
    )
    by_time = (
        best.filter(~pl.col("_exact"))
        .join(files.rename({"_i": "_row"}), on="_row")
        .sort("_gap", "_row")
        .unique(["_of", "file"], keep="first", maintain_order=True)
    )
    return pl.concat([best.filter("_exact"), by_time.select(best.columns)]).select("_row", "_of")


def _roots(chosen: pl.DataFrame) -> pl.DataFrame:
    """Each repeating row with the copy that stays in the end: a copy it repeats may
    itself repeat a richer one (a table row matched to a watch stream's object that the
    list document holds too). The copies repeated are always richer, so this ends."""
    while True:
        step = chosen.join(
            chosen.select(_of="_row", _next="_of"), on="_of", how="left", maintain_order="left"
        )
        if step["_next"].null_count() == step.height:
            return chosen
        chosen = step.select("_row", _of=pl.coalesce("_next", "_of"))


def _with_change_rows(indexed: pl.DataFrame, kept: pl.DataFrame) -> pl.DataFrame:
    """The rows left out (``_i``, ``_of``, ``record``): the repeating rows, and the
    change row each repeating event gave (same file, line and event uid) with it,
    repeating the change row of the event kept."""
    event_of = pl.col("attrs").str.json_path_match("$.event_uid")
    changes = indexed.filter(
        (pl.col("source") == "k8s-event") & (pl.col("kind") == "change")
    ).select("_i", "file", "line", _uid=event_of)
    events = indexed.select("_i", "file", "line", _uid=event_of)
    left_out = kept.filter(pl.col("record") == "event").join(
        events.rename({"_i": "_row"}), on="_row"
    )
    kept_changes = (
        left_out.select("_of")
        .unique()
        .join(events.rename({"_i": "_of"}), on="_of")
        .join(changes.rename({"_i": "_of_change"}), on=["file", "line", "_uid"], nulls_equal=True)
        .select("_of", "_of_change")
    )
    their_changes = (
        left_out.join(changes, on=["file", "line", "_uid"], nulls_equal=True)
        .join(kept_changes, on="_of", how="left")
        .select("_i", _of=pl.coalesce("_of_change", "_of"), record=pl.lit("event"))
    )
    return pl.concat([kept.select(_i="_row", _of="_of", record="record"), their_changes]).cast(
        {"_i": pl.UInt32, "_of": pl.UInt32}
    )


def _marks(indexed: pl.DataFrame, left_out: pl.DataFrame) -> pl.DataFrame:
    """The attrs of each row that stays for others (``_i``, ``_attrs``): its own, with
    ``also_in`` (the others' ``file:line``) and, for an event, the highest count of any
    copy (an event's count only grows: the higher one saw it later)."""
    where = indexed.select("_i", _at=pl.format("{}:{}", "file", "line"))
    counts = indexed.select(
        "_i", _count=pl.col("attrs").str.json_path_match("$.count").cast(pl.Int64, strict=False)
    )
    grouped = (
        left_out.join(where, on="_i")
        .join(counts, on="_i")
        .group_by("_of")
        .agg(_also=pl.col("_at").unique().sort(), _most=pl.col("_count").max())
        .rename({"_of": "_i"})
        .join(indexed.select("_i", "kind", "attrs"), on="_i")
        .join(counts, on="_i")
    )
    higher = (
        (pl.col("kind") == "log")
        & pl.col("_most").is_not_null()
        & (pl.col("_count").is_null() | (pl.col("_most") > pl.col("_count")))
    )
    body = pl.col("attrs").str.strip_chars().str.strip_suffix("}")
    body = (
        pl.when(higher & pl.col("_count").is_not_null())
        .then(body.str.replace(r'"count":\s*"?[0-9]+"?', pl.format('"count":{}', "_most")))
        .otherwise(body)
    )
    added = (
        pl.when(higher & pl.col("_count").is_null())
        .then(pl.struct(count="_most", also_in="_also").struct.json_encode())
        .otherwise(pl.struct(also_in="_also").struct.json_encode())
        .str.strip_prefix("{")
    )
    comma = pl.when(body.str.ends_with("{")).then(pl.lit("")).otherwise(pl.lit(","))
    return grouped.select("_i", _attrs=pl.concat_str(body, comma, added))


def _reported(indexed: pl.DataFrame, left_out: pl.DataFrame) -> pl.DataFrame:
    """The rows left out as :data:`DUPLICATE_SCHEMA`, each with the row kept for it."""
    return (
        left_out.join(
            indexed.select(
                "_i",
                "file",
                "line",
                "kind",
                "message",
                end_line="end_line" if "end_line" in indexed.columns else "line",
            ),
            on="_i",
        )
        .join(indexed.select(_of="_i", of_file="file", of_line="line"), on="_of")
        .with_columns(record=pl.col("record").replace_strict(RECORDS, return_dtype=pl.String))
        .sort("file", "line", "kind")
        .select(list(DUPLICATE_SCHEMA))
        .cast(DUPLICATE_SCHEMA)
    )
