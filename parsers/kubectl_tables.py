"""Kubernetes events as people paste them from a terminal: ``kubectl get events`` tables
and the ``Events:`` section of ``kubectl describe``.

Three table shapes are read, each by the positions of its header's columns (kubectl
aligns its columns with at least two spaces between them; very old ``describe`` padded
with tabs, which are expanded to the terminal's 8-column stops first):

- ``kubectl get events`` since 1.14: ``[NAMESPACE] LAST SEEN  TYPE  REASON  OBJECT
  [SUBOBJECT  SOURCE]  MESSAGE  [FIRST SEEN  COUNT  NAME]`` (``-A``, ``-o wide``);
- before 1.14: ``LAST SEEN  FIRST SEEN  COUNT  NAME  KIND  SUBOBJECT  TYPE  REASON
  SOURCE  MESSAGE`` (also with ``FIRST SEEN`` first, or ``LASTSEEN``);
- ``kubectl describe``: ``Type  Reason  Age  From  Message`` (``Last`` for ``Age`` in
  1.7) with its ``----`` rule, where ``Age`` is ``2m`` or ``10s (x4 over 50s)``; and the
  old ``FirstSeen  LastSeen  Count  From  SubObjectPath  Type  Reason  Message``.

Rows pasted without their header (the lines that mattered) are read by their cells, as
are ``describe`` rows, which have no empty cell and keep their place when an edited paste
shifted them off the header's columns (or off their indentation). A message's own line
breaks are printed as they are: the lines under a row, up to a blank line or the next
row, are the rest of its message.

Every row becomes the rows ``kubectl get events -o json`` would give
(:func:`parsers.k8s_events.event_rows`): an event row of source ``k8s-event``
(``Warning`` at level warning, ``Normal`` at info; message ``Reason: message``), and a
change row for an event that reports a change (a scaled replica set, a pulled image...).
Tables write ages (``5m``, ``3h2m``, ``2d``), not times: a row is timed at its first
occurrence (``FIRST SEEN``, the ``over`` age), else its last, counted back from the time
the user gives (``--now``, ``read(now=...)``), else from the file's modification time.
A table whose columns hold times instead (``2019-07-05T15:01:04Z``, as custom columns of
``firstTimestamp`` and ``lastTimestamp`` under the same names print them) is timed by them.
``attrs.time_from`` says which age and which reference time, so the time is never
mistaken for a written one; ``attrs.last_seen`` and ``attrs.first_seen`` keep the ages
as the table writes them, for telling the event again in another file (the same event
saved with ``-o json`` too, :mod:`timeline.reading.duplicates`). The rest of a
``describe`` output (labels, containers, conditions) is not an event and is counted as
unparsed lines with that reason.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import polars as pl

from parsers import k8s_events, registry
from parsers.changes_common import record_frame
from parsers.common import local_path, reference_time
from parsers.registry import Parser, Sample, Score

NAME = "kubectl-events"
SOURCE = "k8s-event"

#: A table header of any of the three shapes.
HEADER = (
    r"^[ \t]*(?:(?:NAMESPACE\s+)?(?:LAST ?SEEN|FIRST ?SEEN)\s+(?:TYPE|FIRST ?SEEN|LAST ?SEEN)\s"
    r"|Type\s+Reason\s+(?:Age|Last)\s+From\s+Message\s*$"
    r"|FirstSeen\s+LastSeen\s+Count\s+From\s)"
)
#: Rows read by their cells rather than by the header's positions (kubectl puts two
#: spaces or more between cells): ``get events`` rows pasted without their header, and
#: ``describe`` rows, which have no empty cell, also where an edited paste shifted them.
GET_ROW = (
    r"^(?:(?P<namespace>[a-z0-9][a-z0-9.-]*)\s{2,})?"
    r"(?P<last_seen>(?:[0-9]+[smhdy])+|<unknown>|<invalid>)\s{2,}(?P<type>Normal|Warning)\s{2,}"
    r"(?P<reason>\S+)\s{2,}(?P<object>[a-z.]+/\S+)\s{2,}(?P<message>\S.*)$"
)
DESCRIBE_ROW = (
    r"^[ \t]*(?P<type>Normal|Warning)\s{2,}(?P<reason>\S+)\s{2,}(?P<age>\S+(?: \([^)]*\))?)"
    r"\s{2,}(?P<source>\S.*?)\s{2,}(?P<message>\S.*)$"
)
#: The rule under a ``describe`` header, and the ``Events:`` line above it.
RULE = r"^(?:[ \t]*-{4,}[ \t]+-{6,}|Events:[ \t]*$)"
#: Column names as written, to the names used here.
COLUMNS = {
    "namespace": "namespace",
    "lastseen": "last_seen",
    "firstseen": "first_seen",
    "count": "count",
    "name": "name",
    "kind": "object_kind",
    "subobject": "subobject",
    "subobjectpath": "subobject",
    "type": "type",
    "reason": "reason",
    "object": "object",
    "source": "source",
    "from": "source",
    "message": "message",
    "age": "age",
    "last": "age",
}
_LEVELS = {"Warning": "warning", "Normal": "info"}
#: A time written where an age goes: the RFC 3339 form the API gives event times in.
WRITTEN_TIME = "%Y-%m-%dT%H:%M:%SZ"
#: Share of a sample's lines that must be event rows for a table without its header.
MIN_BARE_ROWS = 0.5
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
#: The oldest age read as one: older is no age a cluster shows, and would overflow a time.
_MAX_AGE_S = 400 * _UNIT_SECONDS["y"]

SAMPLES = (
    Sample(
        "LAST SEEN   TYPE      REASON              OBJECT                              MESSAGE\n"
        "12m         Normal    Scheduled           pod/api-7d9f8c6b5d-x2x7k            "
        "Successfully assigned default/api-7d9f8c6b5d-x2x7k to ip-10-0-1-5\n"
        "3m5s        Warning   BackOff             pod/api-7d9f8c6b5d-x2x7k            "
        "Back-off restarting failed container api in pod api-7d9f8c6b5d-x2x7k_default\n"
        "<unknown>   Normal    ScalingReplicaSet   deployment/api                      "
        "Scaled up replica set api-7d9f8c6b5d to 3\n",
        expect={
            "source": "k8s-event",
            "level": "info",
            "message": "Scheduled: Successfully assigned default/api-7d9f8c6b5d-x2x7k to "
            "ip-10-0-1-5",
            "attrs.object": "pod/api-7d9f8c6b5d-x2x7k",
            "attrs.last_seen": "12m",
        },
        rows=3,
    ),
    Sample(
        "Events:\n"
        "  Type     Reason     Age                From               Message\n"
        "  ----     ------     ----               ----               -------\n"
        "  Normal   Scheduled  2m                 default-scheduler  Successfully assigned "
        "kube-system/coredns-5d78c9869d-4kq2p to ip-10-0-1-5\n"
        "  Warning  Unhealthy  10s (x4 over 50s)  kubelet            Readiness probe failed: "
        "HTTP probe failed with statuscode: 503\n",
        expect={"component": "default-scheduler", "level": "info", "attrs.last_seen": "2m"},
        rows=2,
    ),
)


def sniff(sample: list[str]) -> Score:
    """A ``kubectl get events`` or ``describe`` events header, and event rows under it."""
    headers = registry.share_matching(sample, HEADER)
    if headers == 0:
        bare = registry.share_matching(sample, registry.unnamed(f"{GET_ROW}|{DESCRIBE_ROW}"))
        if bare >= MIN_BARE_ROWS:
            return Score(0.9, f"kubectl events rows without their header ({bare:.0%} of lines)")
        return Score(0.0, "no kubectl events table header")
    rows = registry.share_matching(sample, r"\s(?:Normal|Warning)\s")
    if rows == 0:
        return Score(0.5, "a kubectl events table header, no rows in the sample")
    return Score(0.95, "a kubectl events table header and Normal/Warning rows")


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """One event row per table row; other lines unparsed (see the module notes)."""
    frame = _tabs_expanded(lines.collect())
    text = pl.col("text")
    frame = frame.with_columns(
        _header=text.str.contains(HEADER),
        _rule=text.str.contains(RULE),
    ).with_columns(_table=pl.col("_header").cast(pl.UInt32).cum_sum())
    layouts = _layouts(frame.filter("_header"))
    cells = frame.join(layouts, on="_table", how="left", maintain_order="left")
    cells = cells.with_columns(**{name: _cell(name) for name in set(COLUMNS.values())})
    cells = _read_by_cells(cells)
    reference, basis = _reference(frame)
    # a row whose TYPE cell is empty (a wrapped line, a short row) is not an event row
    is_row = (~pl.col("_header") & pl.col("type").is_in(list(_LEVELS))).fill_null(False)
    first_age = pl.coalesce("first_seen", "_age_over", "last_seen", "_age_last")
    seconds = age_seconds(first_age)
    written = first_age.str.to_datetime(WRITTEN_TIME, time_zone="UTC", strict=False)
    component, host = _source_parts(pl.col("source"))
    reason = (
        pl.when(pl.col("_table") == 0)
        .then(pl.lit("not a kubectl events table row (before the first table)"))
        .when(~is_row)
        .then(pl.lit("not a kubectl events table row"))
    )
    headers = pl.col("_header") | pl.col("_rule")
    kept = cells.filter(~headers).with_columns(
        _row=is_row.fill_null(False),
        _reason=reason,
        _age=first_age,
        _seconds=seconds,
        _component=component,
        _host=pl.coalesce(host, pl.col("host")),
        _written=written.is_not_null(),
        _ts=pl.coalesce(written.dt.replace_time_zone(None), _aged(reference, seconds)),
    )
    kept = _with_continuations(kept)
    events = [_event(row, basis) for row in kept.filter("_row").iter_rows(named=True)]
    bad = [
        {
            "line": r["line"],
            "end_line": r["end_line"],
            "message": r["text"],
            "unparsed": r["_reason"],
        }
        for r in kept.filter(~pl.col("_row") & ~pl.col("_continues")).iter_rows(named=True)
    ]
    out = record_frame(k8s_events.event_rows(events) + bad, source=SOURCE)
    return _with_header_lines(out, cells.filter(headers))


def _with_continuations(kept: pl.DataFrame) -> pl.DataFrame:
    """Lines that continue the event row above them (kubectl prints a message's own line
    breaks, so the rest of a multi-line message follows its row from the first column, up
    to a blank line or the next row) joined to that row's message; ``_continues`` marks
    them."""
    blank = pl.col("text").str.strip_chars() == ""
    gap = pl.col("line").diff().fill_null(1) != 1
    record = (pl.col("_row") | blank | gap).cum_sum()
    continues = ~pl.col("_row") & ~blank & pl.col("_row").first().over(record)
    marked = kept.sort("line").with_columns(_record=record).with_columns(_continues=continues)
    rest = (
        marked.filter("_continues")
        .group_by("_record", maintain_order=True)
        .agg(_more=pl.col("text").str.join("\n"), _last=pl.col("end_line").max())
    )
    joined = marked.join(rest, on="_record", how="left", maintain_order="left")
    more = pl.col("_row") & pl.col("_more").is_not_null()
    return joined.with_columns(
        message=pl.when(more).then(pl.col("message") + "\n" + pl.col("_more")).otherwise("message"),
        end_line=pl.when(more).then(pl.col("_last")).otherwise("end_line"),
    ).drop("_record", "_more", "_last")


#: The API kind of each resource ``kubectl`` names in ``OBJECT`` (``deployment/api``).
KINDS = {
    "pod": "Pod",
    "node": "Node",
    "deployment": "Deployment",
    "replicaset": "ReplicaSet",
    "daemonset": "DaemonSet",
    "statefulset": "StatefulSet",
    "job": "Job",
    "cronjob": "CronJob",
    "service": "Service",
    "endpoints": "Endpoints",
    "persistentvolumeclaim": "PersistentVolumeClaim",
    "persistentvolume": "PersistentVolume",
    "horizontalpodautoscaler": "HorizontalPodAutoscaler",
    "ingress": "Ingress",
    "configmap": "ConfigMap",
}


def _event(row: dict[str, object], basis: str) -> dict[str, object]:
    """A table row as the event :func:`parsers.k8s_events.event_rows` reads, so that a
    pasted table gives the rows (and the change rows) ``-o json`` would, timed by age."""
    written = row["object"]
    if written and "/" in str(written):
        kind_word, name = str(written).split("/", 1)
        kind = KINDS.get(kind_word.lower(), kind_word)
    else:
        kind = row["object_kind"]
        name = re.sub(r"\.[0-9a-f]+$", "", str(row["name"])) if row["name"] else None
    count = row["count"] or row["_age_count"]
    timed = row["_ts"] is not None
    if row["_written"]:
        time_from = "the time the table gives"
    else:
        time_from = f"age {row['_age']} before {basis}" if timed else None
    return {
        "line": row["line"],
        "end_line": row["end_line"],
        "ts": row["_ts"] if timed else None,
        "time_from": time_from,
        "time_missing": None if timed else f"the table gives no time, only the age {row['_age']}",
        "last_seen": row["last_seen"] or row["_age_last"],
        "first_seen": row["first_seen"] or row["_age_over"],
        "count": int(count) if count and str(count).isdigit() else None,
        "type": row["type"],
        "reason": row["reason"],
        "note": row["message"],
        "action": None,
        "component": row["_component"],
        "host": row["_host"] or (name if kind == "Node" else None),
        "reporting_instance": None,
        "obj_kind": kind,
        "obj_namespace": row["namespace"],
        "obj_name": name,
        "field_path": row["subobject"],
        "object": k8s_events.object_path(kind, row["namespace"], name),
        "event_uid": None,
        "event_name": row["name"],
        "api_version": None,
        "watch_type": None,
    }


def _tabs_expanded(frame: pl.DataFrame) -> pl.DataFrame:
    """Tabs expanded to 8-column stops, as a terminal shows them, in a file that has any
    (only very old ``describe`` output does, so the few lines are done one by one)."""
    if not frame["text"].str.contains("\t", literal=True).any():
        return frame
    return frame.with_columns(
        text=pl.col("text").map_elements(lambda t: t.expandtabs(8), return_dtype=pl.String)
    )


def _layouts(headers: pl.DataFrame) -> pl.DataFrame:
    """Per table, where each column starts and how long it is (``-1``: to the end of the
    line)."""
    rows = []
    for table, header in headers.select("_table", "text").iter_rows():
        row: dict[str, object] = {"_table": table}
        for name, start, width in _columns(header):
            key = COLUMNS.get(name.replace(" ", "").lower())
            if key is not None:
                row[f"_s_{key}"] = start
                row[f"_w_{key}"] = width
        rows.append(row)
    schema: dict[str, pl.DataType] = {"_table": pl.UInt32}
    for key in set(COLUMNS.values()):
        schema[f"_s_{key}"] = pl.Int64
        schema[f"_w_{key}"] = pl.Int64
    return pl.DataFrame(rows, schema=schema)


def _columns(header: str) -> list[tuple[str, int, int]]:
    """A header's columns as ``(name, start, width)``; the last one's width is -1.

    >>> _columns("LAST SEEN   TYPE     REASON")
    [('LAST SEEN', 0, 12), ('TYPE', 12, 9), ('REASON', 21, -1)]
    """
    found = [(m.group(), m.start()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    widths = [b[1] - a[1] for a, b in zip(found, found[1:], strict=False)] + [-1]
    return [(name, start, width) for (name, start), width in zip(found, widths, strict=True)]


def _cell(key: str) -> pl.Expr:
    """The text of column ``key`` in a row, by the header's positions."""
    start, width = pl.col(f"_s_{key}"), pl.col(f"_w_{key}")
    # the last column (a width of -1) runs to the end of the line: no length
    by_position = pl.col("text").str.slice(start, pl.when(width >= 0).then(width))
    value = by_position.str.strip_chars()
    # custom columns print <none> for a field the event lacks
    return pl.when(start.is_not_null() & ~value.is_in(["", "<none>"])).then(value)


def _read_by_cells(cells: pl.DataFrame) -> pl.DataFrame:
    """Rows before any header read as ``get events`` rows, and ``describe`` rows, by
    their cells (:data:`GET_ROW`, :data:`DESCRIBE_ROW`) where they have that shape; a
    row of another shape keeps what the header's positions gave. Adds the age's parts."""
    text = pl.col("text")
    headerless = pl.col("_table") == 0
    describe = headerless | pl.col("_s_age").is_not_null()
    by_get = pl.when(headerless).then(text.str.extract_groups(GET_ROW))
    by_describe = pl.when(describe).then(text.str.extract_groups(DESCRIBE_ROW))
    found = cells.with_columns(_g=by_get, _d=by_describe)
    updates = {}
    for shape, pattern in (("_d", DESCRIBE_ROW), ("_g", GET_ROW)):
        for key in re.findall(r"\?P<(\w+)>", pattern):
            field = pl.col(shape).struct.field(key)
            updates[key] = pl.coalesce(field, updates.get(key, pl.col(key)))
    return found.with_columns(**updates).drop("_g", "_d").with_columns(_split_age())


def _split_age() -> list[pl.Expr]:
    """``describe``'s ``10s (x4 over 50s)`` (``from`` and ``starting`` for ``over`` in
    1.7): last seen, count and first seen."""
    parts = pl.col("age").str.extract_groups(
        r"^(?P<last>\S+)(?: \(x(?P<count>[0-9]+) (?:over|from|starting) (?P<over>\S+)\))?$"
    )
    return [
        parts.struct.field("last").alias("_age_last"),
        parts.struct.field("count").alias("_age_count"),
        parts.struct.field("over").alias("_age_over"),
    ]


def age_seconds(age: pl.Expr) -> pl.Expr:
    """``3h2m`` as 10920 seconds; null for ``<unknown>``, ``<invalid>``, ages older than
    :data:`_MAX_AGE_S` and others.

    >>> [pl.select(age_seconds(pl.lit(age))).item() for age in ("2d3h", "999y")]
    [183600, None]
    """
    parts = age.str.extract_all(r"[0-9]+[smhdy]")
    total = parts.list.eval(
        pl.element().str.head(-1).cast(pl.Int64, strict=False)
        * pl.element().str.tail(1).replace_strict(_UNIT_SECONDS, return_dtype=pl.Int64)
    ).list.sum()
    # at most nine digits a part, so that no sum overflows
    return pl.when(age.str.contains(r"^(?:[0-9]{1,9}[smhdy])+$") & (total <= _MAX_AGE_S)).then(
        total
    )


def age_unit_seconds(age: pl.Expr) -> pl.Expr:
    """How much an age may fall short of the time passed: kubectl cuts an age to its last
    unit (``45m`` is 45 to 46 minutes, ``3m5s`` exact to the second), so an event timed
    by it happened up to one such unit earlier. Null where ``age`` is no age.

    >>> [pl.select(age_unit_seconds(pl.lit(age))).item() for age in ("45m", "3m5s", "2d")]
    [60, 1, 86400]
    """
    unit = age.str.extract(r"[0-9]([smhdy])$", 1)
    return pl.when(age_seconds(age).is_not_null()).then(
        unit.replace_strict(_UNIT_SECONDS, default=None, return_dtype=pl.Int64)
    )


def _aged(reference: datetime, seconds: pl.Expr) -> pl.Expr:
    """``seconds`` before ``reference`` (naive UTC); null where that is a time Python's
    datetime cannot hold (a reference time given near year 1)."""
    aged = pl.lit(reference).dt.replace_time_zone(None) - pl.duration(seconds=seconds)
    return pl.when(aged.dt.year().is_between(2, 9998)).then(aged)


def _reference(frame: pl.DataFrame) -> tuple[datetime, str]:
    """The time ages count back from, and the words that say where it came from."""
    given = reference_time()
    if given is not None:
        return given.astimezone(UTC), f"{given:%Y-%m-%dT%H:%M:%SZ} (the time given as now)"
    path = frame["path"].drop_nulls().head(1).to_list()
    try:
        mtime = datetime.fromtimestamp(os.path.getmtime(local_path(path[0])), tz=UTC)
    except (IndexError, OSError, TypeError):
        mtime = datetime.now(tz=UTC)
        return mtime, f"{mtime:%Y-%m-%dT%H:%M:%SZ} (when it was read: no file time)"
    return mtime, f"{mtime:%Y-%m-%dT%H:%M:%SZ} (the file's modification time)"


def _source_parts(source: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """The component and node of a SOURCE cell: ``kubelet, ip-10-0-1-5`` (old tables),
    ``{kubelet ip-10-0-1-5}`` (old describe), ``kubelet`` or ``kubelet/node`` (newer)."""
    bare = source.str.strip_chars("{} ")
    parts = bare.str.extract_groups(r"^(?P<component>[^,/ ]+)(?:[,/ ]+ ?(?P<host>\S+))?$")
    return parts.struct.field("component"), parts.struct.field("host")


def _with_header_lines(rows: pl.LazyFrame, headers: pl.DataFrame) -> pl.LazyFrame:
    """Start the first row under each header at the header's line, so that the header
    and its rule are accounted for as part of it."""
    marks = (
        headers.sort("line")
        .select(_mark=pl.col("line").cast(pl.Int64))
        .with_columns(_run=(pl.col("_mark").diff() != 1).fill_null(True).cum_sum())
        .with_columns(_start=pl.col("_mark").min().over("_run"))
        .drop("_run")
    )
    joined = (
        rows.sort("line")
        .with_columns(_at=pl.col("line").cast(pl.Int64))
        .join_asof(marks.lazy(), left_on="_at", right_on="_mark")
    )
    first_in_table = pl.col("_mark").is_not_null() & (
        pl.col("line") == pl.col("line").min().over("_mark")
    )
    return joined.with_columns(
        line=pl.when(first_in_table).then(pl.col("_start")).otherwise("line").cast(pl.UInt32)
    ).drop("_at", "_mark", "_start")


registry.register(
    Parser(
        name=NAME,
        description="kubectl get events tables (old and new columns) and describe Events",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
    )
)
