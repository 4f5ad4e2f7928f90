"""What the change parsers share: change attributes, version order, and JSON documents.

Change records (Kubernetes audit log, Kubernetes events, a team's change log) all become
rows with ``kind = change`` whose ``attrs`` hold the same keys, built by
:func:`change_attrs`. Versions are ordered by :func:`version_key`, so that a change from
``v1.24.10`` to ``v1.23.6`` reads as a rollback wherever it is found, in records or in
logs (``timeline.reading.changes`` uses the same functions).

Kubernetes events and change logs come as JSON *documents* (a ``List``, an array, a
stream of pretty-printed objects), small enough for Python's ``json`` module. The
helpers here find where each item starts so that every line of the document lies in
some record's ``[line, end_line]`` span, and turn an unreadable stretch into one unparsed
record spanning its lines, without losing the items around it.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
from packaging.version import InvalidVersion, Version

from parsers.common import records

#: The change types, in the order reports list them.
CHANGE_TYPES = (
    "upgrade",
    "rollback",
    "restart",
    "config",
    "deploy",
    "scale",
    "create",
    "delete",
    "reboot",
    "silence",
    "other",
)

#: The node labels that name the pool a node belongs to: GKE's node pool, an EKS managed
#: node group (and eksctl's), an AKS agent pool, a Karpenter NodePool. A change to a pool
#: reaches the nodes that carry its name here, where their names do not say it.
POOL_LABELS = (
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "alpha.eksctl.io/nodegroup-name",
    "kubernetes.azure.com/agentpool",
    "agentpool",
    "karpenter.sh/nodepool",
)

_VERSION = re.compile(
    r"^[vV]?(?P<release>[0-9]+(?:\.[0-9]+)*)"
    r"(?:[-.]?(?P<pre>alpha|beta|rc|a|b)[-.]?(?P<pre_n>[0-9]+)?(?![a-z]))?",
    re.IGNORECASE,
)


def version_key(text: str | None) -> Version | None:
    """An orderable key for a version as programs and image tags write it, or None.

    A leading ``v`` and build suffixes (``-eks-1234``, ``-eksbuild.1``, ``+k3s1``,
    ``-management``) are left out; a pre-release (``-rc.1``) sorts before its release.

    >>> version_key("v1.24.10-eks-1234") > version_key("v1.24.9")
    True
    >>> version_key("1.25.0-rc.1") < version_key("1.25.0")
    True
    >>> version_key("latest") is None
    True
    """
    if not text:
        return None
    found = _VERSION.match(text.strip())
    if not found:
        return None
    pre = found.group("pre")
    spelled = found.group("release")
    if pre:
        spelled += pre.lower() + (found.group("pre_n") or "0")
    try:
        return Version(spelled)
    except InvalidVersion:
        return None


def compare_versions(old: str | None, new: str | None) -> str | None:
    """``"upgrade"`` when ``new`` is the higher version, ``"rollback"`` when lower,
    ``"same"`` when equal (build suffixes aside), None when either cannot be read.

    >>> compare_versions("v1.24.10", "v1.23.6")
    'rollback'
    >>> compare_versions("CoreDNS-1.9.3", "1.10.0") is None
    True
    """
    a, b = version_key(old), version_key(new)
    if a is None or b is None:
        return None
    if b > a:
        return "upgrade"
    if b < a:
        return "rollback"
    return "same"


def image_tag(image: str | None) -> str | None:
    """The tag of a container image reference, or None when it has none.

    >>> image_tag("602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy:v1.24.10-eksbuild.1")
    'v1.24.10-eksbuild.1'
    >>> image_tag("localhost:5000/rabbitmq@sha256:0a1b") is None
    True
    """
    if not image:
        return None
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def change_attrs(
    change_type: str,
    target: str | None,
    *,
    old: object = None,
    new: object = None,
    actor: str | None = None,
    inferred: bool = False,
    **extra: object,
) -> dict[str, object]:
    """The ``attrs`` of a change row, with its keys in one order and nulls left out.

    >>> change_attrs("reboot", "node/ip-10-0-1-5", actor="kubelet")
    {'change_type': 'reboot', 'target': 'node/ip-10-0-1-5', 'actor': 'kubelet', 'inferred': False}
    """
    if change_type not in CHANGE_TYPES:
        raise ValueError(f"unknown change type {change_type!r}; known: {', '.join(CHANGE_TYPES)}")
    attrs: dict[str, object] = {
        "change_type": change_type,
        "target": target,
        "from": old,
        "to": new,
        "actor": actor,
        "inferred": inferred,
    }
    attrs.update(extra)
    return {k: v for k, v in attrs.items() if v is not None}


def dumps(attrs: dict[str, object]) -> str:
    """``attrs`` as the compact JSON text the event frame holds: strict JSON, so a value
    only Python writes (``NaN``, ``Infinity``, an integer past 64 bits, a lone surrogate)
    is kept as its text.

    >>> dumps({"count": float("nan"), "ticket": 10**30})
    '{"count":"nan","ticket":"1000000000000000000000000000000"}'
    """
    return json.dumps(_strict(attrs), separators=(",", ":"), ensure_ascii=False, default=str)


def _strict(value: object) -> object:
    """``value`` with what strict JSON readers refuse turned into text."""
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    if isinstance(value, str) and _SURROGATE.search(value):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


# --- documents ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """The lines of one file joined back into one text, with a map from character
    offsets to the line numbers and texts the loader gave."""

    text: str
    lines: list[int]
    end_lines: list[int]
    texts: list[str]
    starts: list[int]

    def row_at(self, offset: int) -> int:
        """Index of the row that holds character ``offset``."""
        return max(bisect.bisect_right(self.starts, offset) - 1, 0)

    @property
    def rows(self) -> int:
        return len(self.lines)


def document(lines: pl.LazyFrame) -> Document:
    """Collect ``lines`` (a small document) and join them into one text."""
    frame = lines.select("line", "end_line", "text").collect()
    texts = frame["text"].fill_null("").to_list()
    starts, at = [], 0
    for text in texts:
        starts.append(at)
        at += len(text) + 1
    return Document(
        text="\n".join(texts),
        lines=frame["line"].to_list(),
        end_lines=frame["end_line"].to_list(),
        texts=texts,
        starts=starts,
    )


@dataclass(frozen=True)
class Item:
    """One item of a JSON document: the row it starts on, and its value or why it could
    not be read."""

    first_row: int
    value: object = None
    error: str | None = None


_SPACE = re.compile(r"\s*")


def json_items(doc: Document, *, list_key: str | tuple[str, ...] | None = "items") -> list[Item]:
    """The items of a JSON document, in order, each with the row it starts on.

    Three shapes are read: an object with an array under ``list_key`` (one key or several;
    ``kubectl get -o json``, the API's own ``{"kind": "EventList", "metadata": {...},
    "items": [...]}``), a top-level array, and a stream of whole objects one after another
    (``kubectl get -w -o json``, JSON lines). An item that cannot be decoded becomes an
    :class:`Item` with an ``error``; reading resumes at the next line that opens an
    object at the same indentation, so one bad item costs only its own lines.
    """
    text = doc.text
    pos = _SPACE.match(text, 0).end()
    if pos >= len(text):
        return []
    if text[pos] == "[":
        return _array_items(doc, pos + 1)
    if list_key is not None and text[pos] == "{":
        keys = (list_key,) if isinstance(list_key, str) else list_key
        at = _top_level_array(text, pos, keys)
        if at is not None:
            return _array_items(doc, at)
    return _stream_items(doc, pos)


def _top_level_array(text: str, pos: int, keys: tuple[str, ...]) -> int | None:
    """Where the array under one of ``keys`` of the object at ``pos`` begins (just after
    its ``[``), the object's other values skipped whole; None when it has none, or when
    the object ends or breaks before it (then it is one item of a stream).

    >>> _top_level_array('{"metadata": {"items": 1}, "items": [{}]}', 0, ("items",))
    37
    """
    i = _SPACE.match(text, pos + 1).end()
    while i < len(text) and text[i] == '"':
        try:
            key, i = _DECODER.raw_decode(text, i)
            i = _SPACE.match(text, i).end()
            if text[i : i + 1] != ":":
                return None
            i = _SPACE.match(text, i + 1).end()
            if key in keys and text[i : i + 1] == "[":
                return i + 1
            _, i = _DECODER.raw_decode(text, i)
        except (json.JSONDecodeError, ValueError):
            return None
        i = _SPACE.match(text, i).end()
        if text[i : i + 1] != ",":
            return None
        i = _SPACE.match(text, i + 1).end()
    return None


_DECODER = json.JSONDecoder()


def _array_items(doc: Document, pos: int) -> list[Item]:
    return _items(doc, pos, array=True)


def _stream_items(doc: Document, pos: int) -> list[Item]:
    return _items(doc, pos, array=False)


def _items(doc: Document, pos: int, *, array: bool) -> list[Item]:
    """The values of a JSON array's body (``array``: up to ``]``, comma-separated) or of a
    stream of concatenated values; a broken value becomes a bad item and reading resumes
    at the next value that starts a line the same way."""
    text, items = doc.text, []
    while True:
        pos = _SPACE.match(text, pos).end()
        if pos >= len(text) or (array and text[pos] == "]"):
            return items
        try:
            value, end = _raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            items.append(_bad_item(doc, pos, exc))
            resume = _resync(doc, pos)
            if resume is None:
                return items
            pos = resume
            continue
        items.append(Item(doc.row_at(pos), value))
        pos = _SPACE.match(text, end).end()
        if array and pos < len(text) and text[pos] == ",":
            pos += 1


def _raw_decode(text: str, pos: int) -> tuple[object, int]:
    """The JSON value at ``pos`` and where it ends; one nested too deep for Python's
    reader (thousands of levels) is a decode error like any broken value."""
    try:
        return _DECODER.raw_decode(text, pos)
    except RecursionError:
        raise json.JSONDecodeError("nested deeper than the reader follows", text, pos) from None


def _bad_item(doc: Document, pos: int, exc: json.JSONDecodeError) -> Item:
    row = doc.row_at(pos)
    start = doc.lines[row]
    rest = doc.text[pos:]
    if rest.count("{") + rest.count("[") > rest.count("}") + rest.count("]"):
        return Item(
            row, error=f"JSON item starting at line {start} is cut short: the file ends inside it"
        )
    where = doc.lines[doc.row_at(exc.pos)]
    return Item(
        row,
        error=f"JSON item starting at line {start} is not valid JSON: {exc.msg} at line {where}",
    )


def _resync(doc: Document, pos: int) -> int | None:
    """Offset of the next row that opens an object at the indentation of the row holding
    ``pos``, or None."""
    row = doc.row_at(pos)
    opener = doc.texts[row][: len(doc.texts[row]) - len(doc.texts[row].lstrip())] + "{"
    for nxt in range(row + 1, doc.rows):
        if doc.texts[nxt].rstrip() == opener or (opener == "{" and doc.texts[nxt].startswith("{")):
            return doc.starts[nxt]
    return None


def item_spans(doc: Document, items: list[Item]) -> list[tuple[int, int]]:
    """Row ranges ``[first, last]`` of each item: from its first row to the row before the
    next item; the first item from the document's first row, the last to its last row."""
    spans = []
    for i, item in enumerate(items):
        first = 0 if i == 0 else item.first_row
        last = items[i + 1].first_row - 1 if i + 1 < len(items) else doc.rows - 1
        spans.append((first, max(first, last)))
    return spans


def unparsed_rows(doc: Document, first: int, last: int, reason: str) -> list[dict[str, object]]:
    """The rows ``[first, last]`` as one unparsed record (its span counts every line)."""
    return [
        {
            "line": doc.lines[first],
            "end_line": doc.end_lines[last],
            "message": "\n".join(doc.texts[first : last + 1]),
            "unparsed": reason,
        }
    ]


_ROW_SCHEMA = {
    "line": pl.UInt32,
    "end_line": pl.UInt32,
    "ts": pl.Datetime("us"),
    "utc_offset_s": pl.Int32,
    "source": pl.String,
    "host": pl.String,
    "component": pl.String,
    "level": pl.String,
    "kind": pl.String,
    "message": pl.String,
    "template": pl.String,
    "attrs": pl.String,
    "unparsed": pl.String,
}


def record_frame(rows: list[dict[str, object]], *, source: str) -> pl.LazyFrame:
    """Records (RECORD_SCHEMA) from plain dicts; missing keys are null, ``source`` is set."""
    frame = pl.DataFrame(
        [{k: _strict(row.get(k)) for k in _ROW_SCHEMA} for row in rows],
        schema=_ROW_SCHEMA,
        orient="row",
    )
    return records(frame.lazy(), source=pl.lit(source), attrs=pl.col("attrs").fill_null("{}"))


def utc_naive(value: str | None) -> datetime | None:
    """An RFC 3339 time (``2023-03-14T17:40:05Z``) as a naive UTC datetime, or None when
    it is missing or unreadable."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # year 1 east of UTC, 9999 west of it
        return None
    return parsed
