"""Signatures: each message with its variable parts masked, so that equal events group.

A spike is a rise in the rate of one *kind* of event, so every row needs a template that
is the same for every instance of that kind: ``Sync failed; retrying in <DURATION>``, not
one text per retry. Templates are found in two steps.

1. :func:`mask` rewrites the values that a regular expression can recognise (times, IPs,
   UUIDs, pod names, paths, numbers...). The rules are one ordered list, :data:`MASKS`,
   specific before general, each with its own placeholder, applied to the whole column
   with ``str.replace_all``. On many rows, :func:`mask_series` gives the same result
   faster: it applies the rules to every row only until the messages repeat (most rows
   of a big log differ only in times, pids and addresses), then to the distinct ones.
2. :func:`group_masked` merges what a pattern cannot recognise (user and host names,
   file names, object ids) by comparing the *distinct* masked messages with each other,
   which are far fewer than the rows. It is deterministic: the same set of messages gives
   the same templates whatever their order. :func:`templates` and
   :func:`assign_templates` run both steps on a column or an event frame.

Grouping one position across messages is a judgement from the data: a template can change
when other messages are loaded beside it. ``mask`` alone never changes.
"""

from __future__ import annotations

import functools
import operator
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import polars as pl

__all__ = ["MASKS", "WILDCARD", "Mask", "assign_templates", "group_masked", "mask", "templates"]

#: What a merged position of a template shows.
WILDCARD = "<*>"


class Mask(NamedTuple):
    """One masking rule: a Rust regex and what each match becomes."""

    name: str
    pattern: str
    replacement: str


def _rule(name: str, pattern: str, replacement: str) -> Mask:
    r"""A rule whose word boundaries ``\b`` are ASCII ones: a Unicode ``\b`` sends every
    line holding a non-ASCII character (Go's ``µs``) to a matcher several times slower."""
    return Mask(name, pattern.replace(r"\b", r"(?-u:\b)"), replacement)


_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_CLOCK = r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?"
_ZONE = r"(?:Z|[+-][0-9]{2}:?[0-9]{2}(?: [A-Z]{3,4})?| UTC)?"
_HEX = r"[0-9a-fA-F]"
_HEX4 = r"[0-9a-fA-F]{1,4}"
_LABEL = r"[A-Za-z0-9_-]+"
_TLD = (
    r"(?:com|net|org|edu|gov|mil|int|io|info|biz|dev|app|cloud|co|uk|de|fr|nl|jp|cn|hk|ru|us"
    r"|eu|local|localdomain|internal|lan|arpa|svc)"
)
#: The alphabet of the random suffixes Kubernetes gives pod and replica-set names.
_K8S = "[bcdfghjklmnpqrstvwxz2456789]"

#: The masking rules, applied in this order: specific before general.
MASKS: list[Mask] = [
    _rule(
        "timestamp",
        rf"\b(?:[0-9]{{4}}[-/][0-9]{{1,2}}[-/][0-9]{{1,2}}(?:[T ]|:|::|-)?{_CLOCK}{_ZONE}"
        rf"|[0-9]{{1,2}}-{_MONTH}-[0-9]{{4}}::{_CLOCK}"
        rf"|(?:{_WEEKDAY},? )?{_MONTH} +[0-9]{{1,2}},? {_CLOCK}(?: [0-9]{{4}})?)",
        "<TS>",
    ),
    _rule("date", r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}\b", "<TS>"),
    _rule("clock", rf"\b{_CLOCK}\b", "<TS>"),
    _rule("uuid", rf"\b{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}\b", "<UUID>"),
    _rule("erlang_pid", r"<[0-9]+\.[0-9]+\.[0-9]+>", "<PID>"),
    _rule("url", r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+", "<URL>"),
    # A DNS name: three or more labels ending in a country code, two or more ending in a
    # common top-level domain, or any name written fully qualified (a trailing dot, as
    # CoreDNS does). What ends it is kept, so "java.io.File" is not one.
    _rule(
        "host",
        rf"\b(?:(?:{_LABEL}\.){{2,}}[a-z]{{2}}|(?:{_LABEL}\.)+{_TLD}"
        rf"|(?:{_LABEL}\.)+[A-Za-z0-9_-]*[A-Za-z][A-Za-z0-9_-]*\.)\.?([\s:,;)\"'\]/>|]|$)",
        "<HOST>${1}",
    ),
    _rule("ipv4_port", r"\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}:[0-9]{1,5}\b", "<IP>:<PORT>"),
    _rule("ipv4", r"\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}\b", "<IP>"),
    _rule(
        "ipv6",
        rf"\b(?:{_HEX4}:){{7}}{_HEX4}\b|\b(?:{_HEX4}:){{1,6}}:(?:{_HEX4}(?::{_HEX4}){{0,5}})?\b"
        rf"|::(?:{_HEX4}:){{0,5}}{_HEX4}\b",
        "<IP>",
    ),
    # Deployment pods (name-<replica-set hash>-<5>) and DaemonSet pods (name-<5>).
    _rule("k8s_pod", rf"\b([a-z0-9][a-z0-9.-]*)-{_K8S}{{6,10}}-[a-z0-9]{{5}}\b", "${1}-<POD>"),
    _rule("k8s_daemonset_pod", rf"\b([a-z0-9][a-z0-9.-]*)-{_K8S}{{5}}\b", "${1}-<POD>"),
    _rule("path", r"(^|[\s=:(\[\"',])(?:/[A-Za-z0-9._~%+@<>-]+){2,}/?", "${1}<PATH>"),
    _rule("windows_path", r"\b[A-Za-z]:\\[^\s\"'<>]*", "<PATH>"),
    _rule("quoted_assignment", r"=\"[^\"]*\"", '="<STR>"'),
    _rule("quoted_single", r"'[^'\s<>]+'", "'<STR>'"),
    _rule("quoted_double", r'"[^"\s<>]+"', '"<STR>"'),
    _rule("version", r"\bv[0-9]+(?:\.[0-9]+)+(?:[-+][0-9A-Za-z.-]+)?\b", "<VERSION>"),
    _rule("size", r"\b[0-9]+(?:\.[0-9]+)? ?(?:[KMGTPE]i?B|kB|B)\b", "<SIZE>"),
    _rule("hex_prefixed", r"\b0[xX][0-9a-fA-F]+\b", "<HEX>"),
    _rule("hex", r"\b(?:[0-9]+[a-fA-F]|[a-fA-F]+[0-9])[0-9a-fA-F]{4,}\b|\b[a-fA-F]{8,}\b", "<HEX>"),
    _rule("duration", r"\b(?:[0-9]+(?:\.[0-9]+)?(?:h|m|s|ms|us|µs|ns))+\b", "<DURATION>"),
    # Negative numbers (blk_-6952295868487656571) and numbers joined by underscores
    # (appattempt_1445144423722_0020), which a word boundary does not separate.
    _rule("negative", r"(^|[\s_=:,(\[{])-[0-9]+(?:\.[0-9]+)?\b", "${1}<NUM>"),
    _rule("underscored_num", r"_[0-9]+(?:_[0-9]+)*(_|\b)", "_<NUM>${1}"),
    _rule("num_underscore", r"\b[0-9]+_", "<NUM>_"),
    # Any other number, with a unit glued to it (512Mi, 3rd).
    _rule("num", r"\b[0-9]+(?:\.[0-9]+)*(?:[a-zA-Z]+)?\b", "<NUM>"),
]


def mask(message: pl.Expr | str) -> pl.Expr:
    """The masked message: ``message`` (an expression or a column name) with every rule
    of :data:`MASKS` applied in order. Null stays null.

    >>> import polars as pl
    >>> pl.select(mask(pl.lit("dial 10.0.0.1:53 after 30s"))).item()
    'dial <IP>:<PORT> after <DURATION>'
    """
    expr = pl.col(message) if isinstance(message, str) else message
    return _apply(expr, MASKS)


def _apply(expr: pl.Expr, rules: Sequence[Mask]) -> pl.Expr:
    """``expr`` with ``rules`` applied in order."""
    for rule in rules:
        expr = expr.str.replace_all(rule.pattern, rule.replacement)
    return expr


#: :func:`mask_until_repeated` stops masking every row once a sample of them holds fewer
#: than this share of distinct messages: the rest of the rules then run on the distinct
#: messages only.
REPEATED_SHARE = 0.5
#: Rows in that sample, spread evenly over the column.
_SAMPLE_ROWS = 2_000


def mask_until_repeated(messages: pl.Series) -> tuple[pl.Series, int]:
    """The first rules of :data:`MASKS` applied to every message, as far as it takes for
    the messages to repeat, and how many rules that was.

    A rule costs time on every row it is given, and most rows of a large log differ only
    in values that the first rules mask (times, Erlang pids, addresses): once those are
    masked, a sample shows few distinct messages, and the remaining rules,
    ``MASKS[done:]``, are cheaper on the distinct messages joined back to the rows. The
    rules are applied in order either way, so the templates are the same as
    :func:`mask`'s.

    >>> import polars as pl
    >>> partial, done = mask_until_repeated(pl.Series([f"dial 10.0.0.{i}:53" for i in range(9)]))
    >>> partial.n_unique(), pl.select(_apply(pl.lit(partial[0]), MASKS[done:])).item()
    (1, 'dial <IP>:<PORT>')
    """
    done = 0
    step = max(1, messages.len() // _SAMPLE_ROWS)
    while done < len(MASKS):
        sample = messages.gather_every(step)
        if sample.n_unique() < REPEATED_SHARE * sample.len():
            break
        rule = MASKS[done]
        messages = messages.str.replace_all(rule.pattern, rule.replacement)
        done += 1
    return messages, done


def mask_series(messages: pl.Series) -> pl.Series:
    """:func:`mask` of every message, the rules after :func:`mask_until_repeated` run on
    the distinct messages only and joined back. Null stays null.

    >>> import polars as pl
    >>> mask_series(pl.Series([f"dial 10.0.0.{i}:53" for i in range(3)] + [None])).to_list()
    ['dial <IP>:<PORT>', 'dial <IP>:<PORT>', 'dial <IP>:<PORT>', None]
    """
    if messages.len() <= _SAMPLE_ROWS:  # a small file: every rule on the distinct ones
        partial, done = messages, 0
    else:
        partial, done = mask_until_repeated(messages)
    if done == len(MASKS):
        return partial
    distinct = partial.unique().drop_nulls().to_frame("_partial")
    lookup = distinct.with_columns(_apply(pl.col("_partial"), MASKS[done:]).alias("_masked"))
    joined = partial.to_frame("_partial").join(
        lookup, on="_partial", how="left", maintain_order="left"
    )
    return joined["_masked"].rename(messages.name)


# --- step two: merge what the masks could not recognise ------------------------------------

_WORD = re.compile(r"\S+")
#: A plain word: a letter, and no digit or placeholder anywhere.
_PLAIN = re.compile(r"(?:(?!<(?:[A-Z]+|\*)>)[^0-9])*[A-Za-z](?:(?!<(?:[A-Z]+|\*)>)[^0-9])*")


@functools.lru_cache(maxsize=1 << 16)
def _is_word(token: str) -> bool:
    """A plain word (letters, no digits, no placeholder): part of the wording of an event
    rather than a value in it."""
    return _PLAIN.fullmatch(token) is not None


def _merge_token(a: str, b: str) -> str:
    """``a`` and ``b`` as one token: ``<*>`` with what they share at either end, cut at
    punctuation and never inside a placeholder, so ``rhost=<IP>`` and ``rhost=<HOST>``
    give ``rhost=<*>`` and ``(<HOST>)`` and ``()`` give ``(<*>)``.

    >>> _merge_token("rhost=<IP>", "rhost=<HOST>"), _merge_token("Link_A8", "Link_B8")
    ('rhost=<*>', 'Link_<*>')
    """
    if a == b:
        return a
    shortest = min(len(a), len(b))
    head = 0
    while head < shortest and a[head] == b[head]:
        head += 1
    prefix = a[:head]
    while prefix and (prefix[-1].isalnum() or prefix.rfind("<") > prefix.rfind(">")):
        prefix = prefix[:-1]
    tail = 0
    while tail < shortest - len(prefix) and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    suffix = a[len(a) - tail :]
    while suffix and (suffix[0].isalnum() or _starts_inside_placeholder(suffix)):
        suffix = suffix[1:]
    return prefix + WILDCARD + suffix


def _starts_inside_placeholder(text: str) -> bool:
    close, open_ = text.find(">"), text.find("<")
    return close != -1 and (open_ == -1 or close < open_)


#: A message is compared with at most this many templates of its shape (the oldest, so the
#: most frequent), which bounds the work when values defeat every mask.
_MAX_COMPARED = 100


@dataclass
class _Cluster:
    """Messages grouped so far under one template."""

    tokens: list[str]
    shape: tuple[str, ...]  # the plain words in place, other tokens blank
    gaps: list[str]  # whitespace around the tokens, from the first message: len(tokens) + 1
    members: list[int]


def group_masked(
    masked: Sequence[str],
    counts: Sequence[int] | None = None,
    *,
    min_values: int = 4,
    similarity: float = 0.5,
) -> list[str]:
    """The template of each of ``masked``, distinct messages that :func:`mask` gave.

    Two passes over the distinct messages, each explainable in a sentence:

    1. Messages of the same length (in whitespace-separated tokens) that have the same
       plain words in the same places, and agree on at least ``similarity`` of all their
       tokens, are one template; where they differ it shows ``<*>``. A plain word has
       letters but no digit and no placeholder: ``failed``, ``user=root``, ``webmaster``.
       Messages are taken most frequent first (``counts``), then alphabetically, and each
       joins the most similar template so far.
    2. Templates with the same plain words in the same places but one, where they take
       ``min_values`` or more different tokens, are one template with ``<*>`` there
       (``session opened for user <*>``), provided two plain words remain. Fewer
       different words stay apart (``VM Paused``, ``VM Resumed``): they often name
       different events.

    Returns one template per message, in the order given.

    >>> users = [f"open <PATH> as {u}" for u in ("ann", "bob", "cy", "dee")]
    >>> sorted(set(group_masked([*users, "close <PATH>"])))
    ['close <PATH>', 'open <PATH> as <*>']
    >>> group_masked(["id a1b2 gone", "id c3d4 gone", "VM Paused", "VM Resumed"])
    ['id <*> gone', 'id <*> gone', 'VM Paused', 'VM Resumed']
    """
    if counts is None:
        counts = [1] * len(masked)
    order = sorted(range(len(masked)), key=lambda i: (-counts[i], masked[i]))
    clusters = _first_pass(masked, order, similarity)
    clusters = _second_pass(clusters, min_values)
    out = [""] * len(masked)
    for cluster in clusters:
        text = _join(cluster)
        for i in cluster.members:
            out[i] = text
    return out


def _first_pass(masked: Sequence[str], order: Iterable[int], similarity: float) -> list[_Cluster]:
    """Each message joins the most similar template of its shape, if similar enough."""
    by_shape: dict[tuple[str, ...], list[_Cluster]] = defaultdict(list)
    for i in order:
        text = masked[i]
        tokens = _WORD.findall(text)
        shape = tuple(t if _is_word(t) else "" for t in tokens)
        best, best_same = None, -1
        for cluster in by_shape[shape][:_MAX_COMPARED]:
            same = sum(map(operator.eq, cluster.tokens, tokens))
            if same > best_same:
                best, best_same = cluster, same
        if best is not None and best_same >= similarity * len(tokens):
            best.tokens = [_merge_token(a, b) for a, b in zip(best.tokens, tokens, strict=True)]
            best.members.append(i)
        else:
            by_shape[shape].append(_Cluster(tokens, shape, _WORD.split(text), [i]))
    return [cluster for clusters in by_shape.values() for cluster in clusters]


def _second_pass(clusters: list[_Cluster], min_values: int) -> list[_Cluster]:
    """Merge templates whose shapes agree but at one position that takes many values."""
    while True:
        alike: dict[tuple[int, int, int, int], list[int]] = defaultdict(list)
        for ci, cluster in enumerate(clusters):
            shape = cluster.shape
            words = len(shape) - shape.count("")
            for p, head, tail in _around_each_position(shape):
                if words - (shape[p] != "") >= 2:  # two plain words must remain
                    alike[(len(shape), p, head, tail)].append(ci)
        gone: set[int] = set()
        for (_length, p, _head, _tail), candidates in alike.items():
            candidates = [ci for ci in candidates if ci not in gone]
            if len({clusters[ci].tokens[p] for ci in candidates}) < min_values:
                continue
            first = clusters[candidates[0]]
            rest = first.shape[:p] + first.shape[p + 1 :]
            for ci in candidates[1:]:
                other = clusters[ci]
                if other.shape[:p] + other.shape[p + 1 :] != rest:
                    continue  # the hashes collided
                first.tokens = [
                    _merge_token(a, b) for a, b in zip(first.tokens, other.tokens, strict=True)
                ]
                first.shape = rest[:p] + ("",) + rest[p:]
                first.members.extend(other.members)
                gone.add(ci)
        if not gone:
            return clusters
        clusters = [cluster for ci, cluster in enumerate(clusters) if ci not in gone]


def _around_each_position(shape: tuple[str, ...]) -> list[tuple[int, int, int]]:
    """For each position, hashes of what comes before and after it: equal hashes find
    shapes that agree everywhere but there, in time linear in the length."""
    heads = [0] * (len(shape) + 1)
    for p, token in enumerate(shape):
        heads[p + 1] = hash((heads[p], token))
    out = []
    tail = 0
    for p in range(len(shape) - 1, -1, -1):
        out.append((p, heads[p], tail))
        tail = hash((shape[p], tail))
    return out


def _join(cluster: _Cluster) -> str:
    parts = [cluster.gaps[0]]
    for token, gap in zip(cluster.tokens, cluster.gaps[1:], strict=True):
        parts += [token, gap]
    return "".join(parts)


def templates(messages: pl.Series, *, min_values: int = 4, similarity: float = 0.5) -> pl.Series:
    """The template of each message: :func:`mask`, then :func:`group_masked` over the
    distinct masked messages. Null stays null.

    >>> import polars as pl
    >>> users = ["alice", "bob", "carol", "dave"]
    >>> out = templates(pl.Series([f"user {u} from 10.0.0.{i}" for i, u in enumerate(users)]))
    >>> out.unique().to_list()
    ['user <*> from <IP>']
    """
    frame = pl.DataFrame({"message": messages})
    out = assign_templates(frame, by=None, min_values=min_values, similarity=similarity)
    return out["template"].rename(messages.name)


def assign_templates(
    frame: pl.DataFrame,
    column: str = "message",
    *,
    by: str | Sequence[str] | None = "source",
    into: str = "template",
    min_values: int = 4,
    similarity: float = 0.5,
) -> pl.DataFrame:
    """``frame`` with column ``into`` filled where it is null (or added): the template of
    ``column``, from :func:`mask` and then :func:`group_masked`, run separately for each
    value of ``by`` (so two programs never share a template). Templates a parser gave
    (klog's quoted message) are kept. Only the distinct masked messages go through
    Python; they are joined back to the rows.

    >>> import polars as pl
    >>> events = pl.DataFrame({
    ...     "source": ["coredns", "coredns", "kube-proxy"],
    ...     "message": ["reloading after 5s", "reloading after 10s", "x"],
    ...     "template": [None, None, "Sync failed"],
    ... })
    >>> assign_templates(events)["template"].to_list()
    ['reloading after <DURATION>', 'reloading after <DURATION>', 'Sync failed']
    """
    keys = [by] if isinstance(by, str) else list(by or [])
    given = into in frame.columns
    rows = frame.with_row_index("_row")
    todo = rows.filter(pl.col(into).is_null()) if given else rows
    partial, done = mask_until_repeated(todo[column])
    todo = todo.select("_row", *keys, partial.alias("_partial"))
    partials = (
        todo.filter(pl.col("_partial").is_not_null())
        .group_by(*keys, "_partial")
        .agg(pl.len().alias("_rows"))
        .with_columns(_apply(pl.col("_partial"), MASKS[done:]).alias("_masked"))
    )
    distinct = partials.group_by(*keys, "_masked").agg(pl.col("_rows").sum())
    lookup = [
        part.select(
            *keys,
            "_masked",
            pl.Series(
                "_template",
                group_masked(
                    part["_masked"].to_list(),
                    part["_rows"].to_list(),
                    min_values=min_values,
                    similarity=similarity,
                ),
                dtype=pl.String,
            ),
        )
        for part in (distinct.partition_by(keys) if keys else [distinct])
        if part.height
    ]
    if lookup:
        found = partials.join(
            pl.concat(lookup), on=[*keys, "_masked"], how="left", nulls_equal=True
        )
        todo = todo.join(
            found.select(*keys, "_partial", "_template"),
            on=[*keys, "_partial"],
            how="left",
            nulls_equal=True,
        )
    else:
        todo = todo.with_columns(_template=pl.lit(None, pl.String))
    template = (
        frame[into].cast(pl.String)
        if given
        else pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    )
    template = template.scatter(todo["_row"], todo["_template"])
    return frame.with_columns(template.alias(into))
