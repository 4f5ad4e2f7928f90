"""A team's change log: what people changed and when, as CSV, YAML or JSON.

Each entry has ``time``, ``type``, ``target`` and ``description``, and may have ``from``,
``to``, ``actor`` and ``host``; other fields are kept in ``attrs``. A CSV file names the
fields in its header row, a YAML file is a list of mappings (or holds one under a key
such as ``changes:``), a JSON file is an array of objects (or ``{"changes": [...]}``, or
one object a line). Every entry becomes a row with ``kind = change`` whose message is the
description on one line.

Times are written by people (``2023-03-14 20:15``, ``14 Mar 2023 20:15 UTC``,
``2023-03-14T20:15:00-05:00``), so they are read with ``dateparser`` (English words
only), which is slow but the entries are few. Its settings refuse what would be a guess:
relative times (``yesterday``), a time with no date, a date with no time of day, a year
outside 1990 to 2100, and a day and month that could be read either way (``03/04/2023``).
A time that states its zone is brought to UTC; one that does not is left to the loader,
which takes it as UTC (or ``tz=``) and says so. An entry whose time cannot be read is an
unparsed record whose reason names the value; the other entries still load.

The ``type`` is read loosely (``upgraded``, ``revert``, ``bounce``...) onto the change
types of :data:`parsers.changes_common.CHANGE_TYPES`; the words as written are kept in
``attrs.type_as_written`` when they differ, and a type the versions contradict (an
"upgrade" from ``v1.24.10`` to ``v1.23.6``) is flagged in ``attrs.versions_say``.
"""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime

import polars as pl

from parsers import registry
from parsers.changes_common import (
    CHANGE_TYPES,
    Document,
    Item,
    change_attrs,
    compare_versions,
    document,
    dumps,
    item_spans,
    json_items,
    record_frame,
    unparsed_rows,
)
from parsers.common import without_aliases
from parsers.registry import Parser, Sample, Score

NAME = "changelog"
DESCRIPTION = "A team's change log (CSV, YAML or JSON with time, type, target, description)"

#: Field names as people write them, onto ours.
FIELD_ALIASES = {
    "time": ("time", "timestamp", "when", "datetime", "date_time", "at"),
    "type": ("type", "change_type", "kind", "change"),
    "target": ("target", "component", "service", "object", "resource"),
    "description": ("description", "desc", "summary", "details", "message", "note", "notes"),
    "from": ("from", "from_version", "old", "old_version", "before"),
    "to": ("to", "to_version", "new", "new_version", "after", "version"),
    "actor": ("actor", "author", "by", "who", "user", "owner", "engineer"),
    "host": ("host", "node", "hostname"),
}
_ALIAS = {alias: field for field, aliases in FIELD_ALIASES.items() for alias in aliases}

#: Words people use for each change type (a type's own name always counts).
TYPE_WORDS = {
    "upgrade": ("upgrade", "upgraded", "update", "updated", "bump", "bumped", "patch"),
    "rollback": ("rollback", "rolled back", "roll back", "revert", "reverted", "downgrade"),
    "restart": ("restart", "restarted", "bounce", "bounced", "rollout restart", "recycle"),
    "config": ("config", "configuration", "config change", "configmap", "setting", "flag"),
    "deploy": ("deploy", "deployed", "deployment", "release", "released", "rollout"),
    "scale": ("scale", "scaled", "scale up", "scale down", "resize"),
    "create": ("create", "created", "add", "added", "provision"),
    "delete": ("delete", "deleted", "remove", "removed", "decommission"),
    "reboot": ("reboot", "rebooted", "node restart", "node reboot", "power cycle"),
}
_TYPE = {word: kind for kind, words in TYPE_WORDS.items() for word in (kind, *words)}

#: The years a change log time may fall in; anything else is a typo, not a time.
YEARS = (1990, 2100)

SAMPLES = (
    Sample(
        text=(
            "time,type,target,description,from,to,actor\n"
            "2023-03-13 14:05,upgrade,daemonset/kube-system/kube-proxy,"
            "Stage 1 of the node component upgrade,v1.23.6,v1.24.10,jdoe\n"
            '2023-03-13 16:40,rollback,daemonset/kube-system/kube-proxy,"Revert after missing '
            'metrics reports, see #inc-4411",v1.24.10,v1.23.6,jdoe\n'
            "14 Mar 2023 20:15 UTC,restart,deployment/kube-system/coredns,"
            "Restart CoreDNS to clear resolution errors,,,asmith\n"
        ),
        expect={
            "kind": "change",
            "source": "changelog",
            "ts": "2023-03-13T14:05:00+00:00",
            "component": "kube-proxy",
            "message": "Stage 1 of the node component upgrade",
            "attrs.change_type": "upgrade",
            "attrs.target": "daemonset/kube-system/kube-proxy",
            "attrs.from": "v1.23.6",
            "attrs.to": "v1.24.10",
            "attrs.actor": "jdoe",
            "attrs.inferred": False,
        },
        rows=3,
    ),
    Sample(
        text=(
            "# changes made during the 2023-03-14 incident\n"
            "changes:\n"
            "  - time: 2023-03-14T17:40:00-05:00\n"
            "    type: upgrade\n"
            "    target: daemonset/kube-system/kube-proxy\n"
            "    description: Resume the node component upgrade (second approach)\n"
            "    from: v1.23.6\n"
            "    to: v1.24.10\n"
            "    actor: platform-team\n"
            "  - time: 2023-03-14 21:02\n"
            "    type: node reboot\n"
            "    target: node/ip-10-0-1-5.ec2.internal\n"
            "    description: |\n"
            "      Restart one node as a test; its traffic recovers\n"
        ),
        expect={
            "ts": "2023-03-14T22:40:00+00:00",
            "attrs.change_type": "upgrade",
            "attrs.actor": "platform-team",
            "host": None,
        },
        rows=2,
    ),
    Sample(
        text=(
            "[\n"
            "  {\n"
            '    "time": "2023-03-15T09:50:00Z",\n'
            '    "type": "restart",\n'
            '    "target": "statefulset/messaging/rmq",\n'
            '    "description": "Restart RabbitMQ nodes to fix corrupted queues",\n'
            '    "actor": "oncall",\n'
            '    "ticket": "INC-4412"\n'
            "  }\n"
            "]\n"
        ),
        expect={
            "ts": "2023-03-15T09:50:00+00:00",
            "attrs.change_type": "restart",
            "attrs.ticket": "INC-4412",
            "component": "rmq",
        },
        rows=1,
    ),
)


# --- recognising -------------------------------------------------------------------------


def sniff(sample: list[str]) -> Score:
    """A CSV header, YAML list or JSON array naming at least ``time`` and ``type``."""
    lines = [s for s in sample if s.strip() and not s.lstrip().startswith("#")]
    if not lines:
        return Score(0.0, "no content")
    first = lines[0].lstrip()
    if first.startswith(("[", "{")):
        text = "\n".join(lines)
        if _LOG_LEVEL.search(text) and not _names_change_kinds(text):
            return Score(0.0, "JSON with a log level and no kind of change: a program's log")
        keys = set(re.findall(r'"([A-Za-z_ ]+)"\s*:', text))
        fields = {_ALIAS.get(_key(k)) for k in keys}
        if not ({"time", "type"} <= fields and fields & {"target", "description"}):
            return Score(0.0, "JSON without change log fields")
        if "target" not in fields and not _names_change_kinds(text):
            # a CI step's output ({"message", "time", "type": "out"}) is no change log
            return Score(0.0, "JSON with a time, a type and a message but no kind of change")
        return Score(0.9, "JSON objects with time, type and target/description fields")
    header = _header_fields(lines[0])
    if {"time", "type"} <= set(header) and set(header) & {"target", "description"}:
        return Score(0.95, f"CSV header naming {', '.join(f for f in header if f)}")
    yaml_keys = {
        _ALIAS.get(_key(m.group(1)))
        for s in lines
        if (m := re.match(r"^\s*(?:-\s+)?([A-Za-z_ ]+):(?:\s|$)", s))
    }
    has_items = any(re.match(r"^\s*-\s+[A-Za-z_]+:", s) for s in lines)
    if has_items and {"time", "type"} <= yaml_keys:
        return Score(0.9, "YAML list of mappings with time and type")
    return Score(0.0, "no change log header or fields")


#: A log level field, as JSON logging libraries write it (a word, pino's and bunyan's
#: numbers, Serilog's ``@l``, .NET's ``Level``): with a ``time``, a ``type`` and a
#: ``message`` (or ``resource``) a program's own records look like a change log.
_LOG_LEVEL = re.compile(
    r'"(?i:level|lvl|severity|@l|log\.level)"\s*:\s*(?:"(?i:trace|debug|info|information'
    r'|notice|warn|warning|error|err|fatal|critical|crit|panic|verbose)"|[1-6]0\b)'
)
#: The value of a field a change log names its kind of change with.
_TYPE_VALUE = re.compile(
    r'"(?:' + "|".join(FIELD_ALIASES["type"]) + r')"\s*:\s*"([^"\n]{1,80})"', re.IGNORECASE
)


def _names_change_kinds(text: str) -> bool:
    """Whether most of the kinds a JSON sample's objects name are kinds of change (a
    deploy, a rollback): a change log may give its changes a severity, a program's log
    names no deploys."""
    kinds = [change_type_from(value) for value in _TYPE_VALUE.findall(text)]
    return bool(kinds) and sum(kind != "other" for kind in kinds) * 2 > len(kinds)


def _key(name: str) -> str:
    return re.sub(r"[\s-]+", "_", name.strip().lower())


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    return max(counts, key=counts.get) if any(counts.values()) else ","


def _header_fields(line: str) -> list[str | None]:
    cells = next(csv.reader([line], delimiter=_delimiter(line)), [])
    return [_ALIAS.get(_key(c)) for c in cells]


# --- reading -----------------------------------------------------------------------------


#: The keys a JSON change log's object may hold its entries under.
LIST_KEYS = ("changes", "items", "entries", "records", "events", "deployments")


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """One change row per entry; an entry that cannot be read is unparsed with its reason."""
    doc = document(lines)
    first = next((t.lstrip()[:1] for t in doc.texts if t.strip() and not _comment(t)), "")
    if first in ("[", "{"):
        items = json_items(doc, list_key=LIST_KEYS)
    elif _yaml_items_start(doc) is not None:
        items = _yaml_items(doc)
    else:
        items = _csv_items(doc)
    rows: list[dict[str, object]] = []
    for item, (top, bottom) in zip(items, item_spans(doc, items), strict=True):
        line = doc.lines[item.first_row]
        if item.error:
            rows.extend(unparsed_rows(doc, top, bottom, item.error))
            continue
        # the first entry's span begins with the lines above it (a header, an opening
        # bracket): its own line is what a reader is sent to
        row, why = _entry(item.value, line, entry_line=line if top != item.first_row else None)
        if row is None:
            rows.extend(unparsed_rows(doc, top, bottom, why))
            continue
        rows.append({**row, "line": doc.lines[top], "end_line": doc.end_lines[bottom]})
    if not items and any(t.strip() for t in doc.texts):
        rows.extend(unparsed_rows(doc, 0, doc.rows - 1, "no change log entries found"))
    return record_frame(rows, source=NAME).sort("line")


def _comment(text: str) -> bool:
    return text.lstrip().startswith("#")


def _csv_items(doc: Document) -> list[Item]:
    """One item per CSV record (a quoted field may span lines); the header is not one."""
    content = [i for i, t in enumerate(doc.texts) if t.strip() and not _comment(t)]
    if not content:
        return []
    header_row = content[0]
    delimiter = _delimiter(doc.texts[header_row])
    fields = _header_fields(doc.texts[header_row])
    cells = next(csv.reader([doc.texts[header_row]], delimiter=delimiter))
    names = [f or _key(c) for f, c in zip(fields, cells, strict=True)]
    body = doc.texts[header_row + 1 :]
    reader = csv.reader((text + "\n" for text in body), delimiter=delimiter)
    items, read = [], 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            items.append(Item(header_row + 1 + read, error=f"CSV error: {exc}"))
            read = reader.line_num
            continue
        first_row = header_row + 1 + read
        read = reader.line_num
        if not any(c.strip() for c in cells) or _comment(cells[0]):
            continue
        if len(cells) > len(names):
            extra = ", ".join(cells[len(names) :])
            items.append(
                Item(
                    first_row,
                    error=f"{len(cells)} fields where the header names {len(names)}"
                    f" (extra: {extra[:60]})",
                )
            )
            continue
        items.append(Item(first_row, dict(zip(names, cells, strict=False))))
    return items


_YAML_ITEM = re.compile(r"^(?P<indent>\s*)-(?:\s|$)")


def _yaml_items_start(doc: Document) -> int | None:
    """The row of the first top-level list item, if the document is a YAML list."""
    for row, text in enumerate(doc.texts):
        if not text.strip() or _comment(text) or text.strip() == "---":
            continue
        if _YAML_ITEM.match(text):
            return row
        if re.match(r"^[A-Za-z_][A-Za-z0-9_ -]*:\s*$", text):
            continue
        return None
    return None


def _yaml_items(doc: Document) -> list[Item]:
    """One item per list entry: each entry's lines are read on their own, so one broken
    entry does not cost the others."""
    import yaml

    loader = without_aliases(yaml.BaseLoader)
    start = _yaml_items_start(doc)
    indent = _YAML_ITEM.match(doc.texts[start]).group("indent")
    starts = [
        row
        for row in range(start, doc.rows)
        if doc.texts[row].startswith(indent + "-")
        and _YAML_ITEM.match(doc.texts[row])
        and _YAML_ITEM.match(doc.texts[row]).group("indent") == indent
    ]
    items = []
    for i, row in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else doc.rows
        chunk = "\n".join(doc.texts[row:end])
        try:
            value = yaml.load(chunk, Loader=loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {doc.lines[row] + mark.line}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            items.append(Item(row, error=f"YAML entry at line {doc.lines[row]}: {problem}{where}"))
            continue
        if not (isinstance(value, list) and len(value) == 1):
            items.append(Item(row, error=f"YAML entry at line {doc.lines[row]} is not one mapping"))
            continue
        items.append(Item(row, value[0]))
    return items


# --- one entry ---------------------------------------------------------------------------


def _entry(
    value: object, line: int, *, entry_line: int | None = None
) -> tuple[dict[str, object] | None, str]:
    """A change record from one entry, or None and why not (naming the value);
    ``entry_line`` goes to its attrs where the row's span begins above the entry."""
    if not isinstance(value, dict):
        return None, f"entry at line {line} is not a mapping of fields"
    fields: dict[str, object] = {}
    extra: dict[str, object] = {}
    for key, raw in value.items():
        name = _ALIAS.get(_key(str(key)))
        cell = None if raw is None or (isinstance(raw, str) and not raw.strip()) else raw
        if name and name not in fields:
            fields[name] = cell.strip() if isinstance(cell, str) else cell
        elif cell is not None:
            extra[_key(str(key))] = cell
    written = fields.get("time")
    if written is None:
        return None, f"entry at line {line} has no time"
    try:
        ts, offset = read_time(str(written))
    except ValueError as exc:
        return None, f"unreadable time {str(written)!r} at line {line}: {exc}"
    type_written = str(fields.get("type") or "other")
    change_type = change_type_from(type_written)
    target = _text(fields.get("target"))
    old, new = _text(fields.get("from")), _text(fields.get("to"))
    direction = compare_versions(old, new)
    attrs = change_attrs(
        change_type,
        target,
        old=old,
        new=new,
        actor=_text(fields.get("actor")),
        type_as_written=type_written if _key(type_written) != change_type else None,
        versions_say=direction
        if change_type in ("upgrade", "rollback") and direction not in (None, change_type)
        else None,
        **{k: v if isinstance(v, int | float | bool) else str(v) for k, v in extra.items()},
        entry_line=entry_line,
    )
    host = _text(fields.get("host")) or _node_of(target)
    description = " ".join((_text(fields.get("description")) or "").split()) or None
    return {
        "ts": ts,
        "utc_offset_s": offset,
        "host": host,
        "component": target.rstrip("/").rsplit("/", 1)[-1] if target else None,
        "level": "info",
        "kind": "change",
        "message": description or f"{change_type} {target or ''}".strip(),
        "template": f"{change_type} (change log)",
        "attrs": dumps(attrs),
    }, ""


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _node_of(target: str | None) -> str | None:
    """The node a ``node/NAME`` target names; not ``nodes/all`` or ``node/*``."""
    found = re.match(r"^nodes?/(?P<name>[^/]+)$", target or "")
    if not found or found.group("name").lower() in ("all", "*", "every", "each", "any"):
        return None
    return found.group("name")


def change_type_from(written: str) -> str:
    """Our change type for the words a person wrote; ``other`` when none fits.

    >>> change_type_from("Rolled back"), change_type_from("bounce"), change_type_from("dns tweak")
    ('rollback', 'restart', 'other')
    """
    key = re.sub(r"[\s_-]+", " ", written.strip().lower())
    if key in _TYPE:
        return _TYPE[key]
    for word in key.split():
        if word in _TYPE and _TYPE[word] in CHANGE_TYPES:
            return _TYPE[word]
    return "other"


#: Seconds or milliseconds since 1970 (a JSON change log may hold numbers).
_EPOCH = re.compile(r"^(?:[0-9]{9,10}|[0-9]{12,13})(?:\.[0-9]+)?$")
_NUMERIC_DATE = re.compile(r"^\s*(?P<a>[0-9]{1,2})[/.-](?P<b>[0-9]{1,2})[/.-][0-9]{2,4}\b")
_TIME_OF_DAY = re.compile(r"[0-9]{1,2}:[0-9]{2}|[0-9]{1,2} ?[ap]\.?m\b|T[0-9]{2}", re.IGNORECASE)
_DATEPARSER_SETTINGS = {
    "STRICT_PARSING": True,
    "PARSERS": ["custom-formats", "absolute-time"],
    "TIMEZONE": "UTC",
    "DATE_ORDER": "YMD",
}


def read_time(written: str) -> tuple[datetime, int | None]:
    """A time a person wrote, as a naive wall-clock time and its UTC offset in seconds
    (None when the text states no zone); ValueError saying why it cannot be read.

    >>> read_time("2023-03-14T20:15:00-05:00")
    (datetime.datetime(2023, 3, 15, 1, 15), 0)
    >>> read_time("2023-03-14 20:15")
    (datetime.datetime(2023, 3, 14, 20, 15), None)
    """
    text = written.strip()
    if _EPOCH.match(text):
        seconds = float(text) / (1000 if len(text.split(".")[0]) > 10 else 1)
        return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None), 0
    numeric = _NUMERIC_DATE.match(text)
    if numeric and numeric.group("a") != numeric.group("b"):
        a, b = int(numeric.group("a")), int(numeric.group("b"))
        if a <= 12 and b <= 12:
            raise ValueError("day and month could be read either way; write 2023-03-14")
    if not _TIME_OF_DAY.search(text):
        raise ValueError("no time of day")
    import dateparser

    try:
        parsed = dateparser.parse(text, languages=["en"], settings=_DATEPARSER_SETTINGS)
    except OverflowError:  # year 1 east of UTC, 9999 west of it
        raise ValueError("a date past the years a calendar holds") from None
    if parsed is None:
        raise ValueError("not a date and time dateparser can read without guessing")
    if not YEARS[0] <= parsed.year <= YEARS[1]:
        raise ValueError(f"year {parsed.year} is outside {YEARS[0]} to {YEARS[1]}")
    if parsed.tzinfo is None:
        return parsed, None
    return parsed.astimezone(UTC).replace(tzinfo=None), 0


registry.register(
    Parser(name=NAME, description=DESCRIPTION, sniff=sniff, parse=parse, samples=SAMPLES)
)
