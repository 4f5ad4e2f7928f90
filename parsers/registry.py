"""The one place parsers are registered and found.

Each parser module builds a :class:`Parser` and ends with ``registry.register(PARSER)``;
``parsers/__init__.py`` imports every module in the package, so dropping a module in is
all it takes to add a format. Detection asks every parser to score a sample of a file's
lines and takes the best score, if it clears :data:`MIN_SCORE`: below that a file is
unknown, never guessed. A parser that declares ``literals`` is only asked when the sample
holds one of them, which a substring search over the whole sample tells at once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import polars as pl

#: Below this score a file's format is unknown rather than guessed.
MIN_SCORE = 0.5
#: Lines of a file or stream looked at to recognise its layers and its format.
SAMPLE_LINES = 200


class Score(NamedTuple):
    """How sure a parser is that a sample is its format (0 to 1), and why, in words."""

    score: float
    why: str


@dataclass(frozen=True)
class Sample:
    """Input lines exactly as the program writes them, and fields the first record must have.

    Samples document the format and double as fixtures: a test walks the registry and
    parses every sample, checking ``expect`` (keys are record columns, or ``attrs.KEY``).
    """

    text: str
    expect: dict[str, object] = field(default_factory=dict)
    rows: int | None = None


@dataclass(frozen=True)
class Parser:
    """An input family: its ``source`` name, how to recognise it, and how to read it.

    ``record_start``, where the format has one, matches the first line of each of its
    records and no other line (a regex in the syntax both Rust and Python read), so
    that in a file of another format (or of several) its records are found and handed
    to it (:mod:`parsers.routing`). ``own_start`` is what starts a record in a file of
    its own format, where that is broader (CoreDNS reads client-go's klog lines as its
    own); ``record_start`` if not given. A big file may be cut into chunks before such
    lines; a format with neither is never cut.

    ``distinct_start`` matches the first line of a record of this format that could be
    no other format's line (``time="..." level=error msg=...``, a zap console line):
    such a line is picked out of another format's file or stream and read as this
    format's record (:mod:`parsers.routing`). The package's modules serve with their
    ``record_start``; a format file states it, as a broad ``record_start`` (``Error:``)
    would take other formats' lines.

    ``literals``: strings (case-sensitive, no line break) of which any input of this
    format holds at least one in its first lines; a sample holding none scores 0 without
    ``sniff`` being asked. Empty means ``sniff`` is always asked.
    """

    name: str
    description: str
    sniff: Callable[[list[str]], Score]
    parse: Callable[[pl.LazyFrame], pl.LazyFrame]
    samples: tuple[Sample, ...] = ()
    literals: tuple[str, ...] = ()
    #: A line that starts a record (regex, in the syntax both Rust and Python read): a big
    #: file of this format may be cut into chunks before such lines. None: never cut.
    record_start: str | None = None
    own_start: str | None = None
    distinct_start: str | None = None
    #: True when ``parse`` reads the lines of several files in one frame as it reads each
    #: alone (records of files that begin with a record never join; per-file state is kept
    #: ``over("path")``): many small files are then parsed in one query.
    files_together: bool = False
    #: For a format read as documents (no ``record_start``): an expression over ``text``
    #: true on a line that is whole records on its own (a JSON value). Small files made
    #: only of such lines may be parsed together, when ``files_together`` says so.
    whole_line: Callable[[], pl.Expr] | None = None
    #: ``built-in`` for a module of this package, else the format file that declares it.
    origin: str = "built-in"

    @property
    def claims(self) -> str | None:
        """What a line of another format's file must match to be this format's record."""
        if self.distinct_start:
            return self.distinct_start
        return self.record_start if self.origin == "built-in" else None

    @property
    def built_in(self) -> bool:
        """Whether the format ships with the tool (a module, or a format file in it)."""
        return self.origin.startswith("built-in")


_PARSERS: dict[str, Parser] = {}


def register(parser: Parser, *, replace: bool = False) -> Parser:
    """Add a parser; a second, different parser with the same name is an error (the same
    module imported twice, as doctest collection may do, just registers again, and so
    does a format file read again). ``replace`` lets a declared format take the place of
    one declared before under its name, never of a built-in one."""
    known = _PARSERS.get(parser.name)
    if known is not None:
        same = known.origin == parser.origin and (
            known.origin != "built-in" or known.parse.__qualname__ == parser.parse.__qualname__
        )
        if not same and not (replace and not known.built_in and not parser.built_in):
            where = "built in" if known.built_in else f"declared in {known.origin}"
            raise ValueError(f"a format named {parser.name!r} is registered already ({where})")
    _PARSERS[parser.name] = parser
    return parser


@contextmanager
def registered(extra: Iterable[Parser]) -> Iterator[list[Parser]]:
    """Within the block, ``extra`` (declared formats) are registered too; after it, the
    registry is as it was, so one read's formats do not leak into the next."""
    saved = dict(_PARSERS)
    try:
        yield [register(parser, replace=True) for parser in extra]
    finally:
        _PARSERS.clear()
        _PARSERS.update(saved)


def get(name: str) -> Parser:
    """The parser called ``name``; a clear error naming the known ones otherwise."""
    try:
        return _PARSERS[name]
    except KeyError:
        known = ", ".join(sorted(_PARSERS))
        raise KeyError(f"no format called {name!r}; known formats: {known}") from None


def all_parsers() -> list[Parser]:
    """Every registered parser, by name."""
    return [_PARSERS[name] for name in sorted(_PARSERS)]


def rank(sample: list[str]) -> list[tuple[Parser, Score]]:
    """Every parser's score for ``sample``, best first. A parser that fails scores 0, and
    so does one whose ``literals`` the sample lacks (its sniffer is not asked).

    A sample ranked before with the same parsers registered is not sniffed again: a file
    is routed more than once (:mod:`parsers.routing`), and a collector's export of a
    cluster holds hundreds of programs, each of which is recognised from its own sample."""
    key = (tuple(map(id, _PARSERS.values())), _digest(sample))
    ranked = _RANKED.pop(key, None)
    if ranked is None:
        text = "\n".join(sample)
        scored = [(parser, score(parser, sample, text)) for parser in _PARSERS.values()]
        ranked = sorted(scored, key=lambda item: (-item[1].score, item[0].name))
    _RANKED[key] = ranked
    while len(_RANKED) > RANKED_KEPT:
        del _RANKED[next(iter(_RANKED))]
    return list(ranked)


#: Samples whose ranking is kept (a few kilobytes each), the least recently used dropped.
RANKED_KEPT = 2048
_RANKED: dict[tuple, list[tuple[Parser, Score]]] = {}


def _digest(sample: list[str]) -> bytes:
    """A digest of ``sample`` that tells apart any two lists of lines."""
    digest = hashlib.blake2b(digest_size=16)
    for line in sample:
        encoded = line.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.digest()


def score(parser: Parser, sample: list[str], text: str | None = None) -> Score:
    """One parser's score for ``sample`` (``text`` is the sample joined, if at hand)."""
    text = "\n".join(sample) if text is None else text
    if parser.literals and not any(literal in text for literal in parser.literals):
        wanted = ", ".join(repr(literal) for literal in parser.literals)
        return Score(0.0, f"the sample holds none of {wanted}")
    try:
        return parser.sniff(sample)
    except Exception as exc:  # a sniffer must never stop detection
        return Score(0.0, f"sniffer failed: {exc}")


def unnamed(pattern: str) -> str:
    """``pattern`` with its groups unnamed, so that patterns can be joined with ``|``.

    >>> unnamed(r"^(?P<level>[IWEF])")
    '^(?:[IWEF])'
    """
    return re.sub(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>", "(?:", pattern)


def share_matching(sample: list[str], pattern: str) -> float:
    """Share of the non-blank lines of ``sample`` that match ``pattern`` (Rust regex)."""
    return shares_matching(sample, {"share": pattern})["share"]


def shares_matching(sample: list[str], patterns: dict[str, str]) -> dict[str, float]:
    """For each named pattern (Rust regex), the share of the non-blank lines of ``sample``
    that match it, all in one query.

    >>> shares_matching(["a1", "b2", " "], {"a": "^a", "digit": "[0-9]"})
    {'a': 0.5, 'digit': 1.0}
    """
    return shares_of(sample, {n: pl.col("line").str.contains(p) for n, p in patterns.items()})


def shares_of(sample: list[str], tests: dict[str, pl.Expr]) -> dict[str, float]:
    """For each named test (a boolean expression of the column ``line``), the share of
    the non-blank lines of ``sample`` that pass it, all in one query.

    >>> shares_of(["a1", "b2"], {"a": pl.col("line").str.starts_with("a")})
    {'a': 0.5}
    """
    lines = pl.DataFrame({"line": [s for s in sample if s.strip()]}, schema={"line": pl.String})
    if lines.height == 0 or not tests:
        return dict.fromkeys(tests, 0.0)
    shares = lines.select(test.mean().alias(name) for name, test in tests.items())
    return {name: float(share) for name, share in shares.row(0, named=True).items()}
