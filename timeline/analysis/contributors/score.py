"""Score: the parts of the evidence combined into one number per incident and change, each
part kept in its own column, and the role and rank that follow from them.

Each part is in ``[-1, 1]``: how far beyond chance (a test suited to counts) times how
large (a factor of ``2**FULL_BITS`` is full size), positive when the errors rose, negative
when they fell. ``score = relation * sum(WEIGHTS[part] * part)``.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import polars as pl

from timeline.analysis.contributors.changes import (
    _TS,
    _host_key,
    _kind,
    _norm,
    ci_side_word,
    names_executor,
    names_match,
    namespace_wide,
    node_local,
)
from timeline.analysis.contributors.measures import (
    CLASS_SIZE,
    NO_HOST,
    QUOTE_SCHEMA,
    JobCounter,
    RowCounter,
    binomial_tail,
    cohort_share,
    host_count_test,
    rate_test,
    strength,
)
from timeline.analysis.contributors.targets import (
    Signature,
    Target,
    host_population,
    program_namespaces,
)
from timeline.analysis.contributors.words import diff_summaries, evidence_sentences
from timeline.analysis.rates import to_timedelta
from timeline.reading.pods import pod_nodes

#: How much each part of a score counts. Nearness to the onset on its own is weak.
WEIGHTS = {
    "cohort": 3.0,
    "effect": 1.5,
    "alignment": 1.5,
    "footprint": 2.5,
    "precursor": 1.5,
    "new": 0.5,
    "onset": 0.5,
}
#: The touched hosts' usual share of the rows is read from this many before windows.
BASELINE = 4
#: The relation of a change tied to the errors only by the hosts it touched, at most.
HOST_RELATION = 0.5
#: A rate change of this many bits (a factor of 2**FULL_BITS) is full size.
FULL_BITS = 3.0
#: Errors have stopped on a change's hosts when their rate after it is at most this share
#: of the rate before it.
STOPPED = 1 / 8
#: A part at least this strong is evidence beyond chance (about p < 0.003).
EVIDENT = 0.25
#: The roles of changes that explain an incident.
CAUSES = ("trigger", "precursor", "latent cause", "made worse")
#: The role of the nearest changes when none explains an incident.
CONSIDERED = "considered, no evidence"
#: How many changes before the onset are listed as considered when none explains it.
CONSIDERED_SHOWN = 5


def _contributor_schema(id_name: str) -> dict[str, pl.DataType]:
    quote = pl.List(pl.Struct(QUOTE_SCHEMA))
    return {
        id_name: pl.UInt32(),
        "change_id": pl.UInt32(),
        "ts": _TS,
        "change_type": pl.String(),
        "target": pl.String(),
        "description": pl.String(),
        "inferred": pl.Boolean(),
        "actor": pl.String(),
        "automated": pl.Boolean(),
        "lead_s": pl.Float64(),
        "when": pl.String(),
        "relation": pl.Float64(),
        "name_match": pl.Boolean(),
        "scope": pl.String(),
        "touched_hosts": pl.UInt32(),
        "shared_hosts": pl.List(pl.String),
        "called_out_hosts": pl.List(pl.String),
        "host_share": pl.Float64(),
        "affected": pl.List(pl.String),
        "before": pl.Int64(),
        "after": pl.Int64(),
        "after_unknown_host": pl.Int64(),
        "rate_bits": pl.Float64(),
        "effect_p": pl.Float64(),
        "jobs_before": pl.Int64(),
        "failed_before": pl.Int64(),
        "jobs_before_s": pl.Float64(),
        "jobs_after": pl.Int64(),
        "failed_after": pl.Int64(),
        "untouched_hosts": pl.UInt32(),
        "untouched_before": pl.Int64(),
        "untouched_after": pl.Int64(),
        "cohort_bits": pl.Float64(),
        "cohort_p": pl.Float64(),
        "footprint_after": pl.Int64(),
        "footprint_others": pl.Int64(),
        "footprint_bits": pl.Float64(),
        "footprint_p": pl.Float64(),
        "aligned_hosts": pl.UInt32(),
        "stopped_hosts": pl.UInt32(),
        "untouched_started": pl.UInt32(),
        "untouched_stopped": pl.UInt32(),
        "change_class": pl.String(),
        "class_size": pl.UInt32(),
        "class_like": pl.UInt32(),
        "routine": pl.Boolean(),
        "new_signatures": pl.List(pl.String),
        "precursor_signature": pl.String(),
        "precursor_start": _TS,
        "precursor_rows": pl.UInt32(),
        "precursor_hosts": pl.List(pl.String),
        "part_relation": pl.Float64(),
        "part_onset": pl.Float64(),
        "part_effect": pl.Float64(),
        "part_cohort": pl.Float64(),
        "part_alignment": pl.Float64(),
        "part_footprint": pl.Float64(),
        "part_new": pl.Float64(),
        "part_precursor": pl.Float64(),
        "score": pl.Float64(),
        "score_parts": pl.String(),
        "role": pl.String(),
        "errors_began_after": pl.String(),
        "began_with_others": pl.String(),
        "hosts_explained_by": pl.String(),
        "examples": pl.List(pl.String),
        "lines_before": quote,
        "lines_after": quote,
        "evidence": pl.List(pl.String),
    }


def _empty_contributors(id_name: str) -> pl.DataFrame:
    schema = _contributor_schema(id_name)
    return pl.DataFrame(schema={id_name: schema.pop(id_name), "rank": pl.UInt32, **schema})


# --- pairs of target and change -------------------------------------------------------------


@dataclass
class _Pair:
    target: Target
    change: dict
    affected: list[Signature]
    name_match: bool
    matched_name: str | None
    named: dict[str, datetime]
    explicit: dict[str, datetime]
    shared: list[str]
    host_share: float | None
    relation: float
    before_window: timedelta
    untouched: frozenset[str] = frozenset()
    #: touched hosts the errors' own words name (``We saw DOWN from rabbit@mq-b``)
    called_out: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    #: how many hosts of each side started, stopped, got worse or got better
    #: (:func:`_host_tallies`), as ``{"t_started": 3, ...}``; a tally missing is zero
    hosts_moved: dict[str, int] = field(default_factory=dict)
    #: tied to the errors only by their own words naming its target (``user: 'orders'``)
    named_by_errors: bool = False
    #: a host's silence: tied to the other hosts' errors by when they began
    silence: bool = False
    #: the namespace, changed as a whole, whose pods logged the errors that tie it
    namespace: str | None = None
    #: the word that makes it a CI-side change (:func:`ci_side_word`), tied by it to the
    #: failing jobs of every executor
    ci_side: str | None = None


def change_class(change: dict) -> str:
    """The class a change belongs to for base rates: who made it (the actor, or
    ``someone``; a node's own account as ``system:node``), its type and the kind of its
    target.

    >>> change_class({"actor": "argocd", "change_type": "config", "target": "deployment/a/b"})
    'argocd config deployment'
    """
    kind = _kind(change) or "program"
    actor = re.sub(r"^(system:node):.*", r"\1", change.get("actor") or "someone")
    return f"{actor} {change['change_type']} {kind}"


def _pair(
    target: Target,
    change: dict,
    population: dict[str, frozenset[str]],
    *,
    before_window: timedelta,
    during_before: timedelta,
    words: Callable[[tuple[str, str]], frozenset[str]] = lambda key: frozenset(),
    namespaces: dict[str, frozenset[str]] | None = None,
) -> _Pair:
    """A change against a target: what ties them (the errors' program, CI executors, the
    hosts they share) and which of its signatures the change could have moved. A change
    names an executor in its words (a change log's), or is the runner pool that takes
    its jobs (:func:`names_executor`). ``words`` gives a signature's
    :func:`~timeline.analysis.contributors.measures.variable_words`: a change whose target
    those words name (a client deployment named in a broker's errors) is tied to that
    signature as its program would be. A change to a whole namespace
    (:func:`namespace_wide`) is tied to the signatures of the programs whose pods run
    there (``namespaces``: :func:`~timeline.analysis.contributors.targets.program_namespaces`),
    as loosely as sharing hosts ties one. A host's silence is paired as
    :func:`_silence_pair` says."""
    if change["change_type"] == "silence":
        return _silence_pair(
            target, change, before_window=before_window, during_before=during_before
        )
    node = _host_key(change["node"])
    names = [] if node else (change["names"] or [change["name"]])
    executors = {e.lower() for e in change.get("executors") or ()}
    if not node:
        executors |= {
            e.lower()
            for s in target.signatures
            for e in s.executors
            if names_executor(change["name"], e)
        }
    ci_side = None
    if change.get("found") == "ci":
        # a CI-side change (a workflow file, a runner image, an orb, a registry token the
        # jobs pull with) reaches every executor whose jobs failed
        ci_side = ci_side_word(f"{change['target'] or ''} {change['note'] or ''}")
        reached_executors = {e.lower() for s in target.signatures for e in s.executors}
        if reached_executors:
            executors |= reached_executors
            change = {**change, "executors": sorted(executors)}
    matched, matched_name = [], None
    for sig in target.signatures:
        hit = next(
            (
                n
                for n in names
                if names_match(n, sig.source) or any(names_match(n, c) for c in sig.components)
            ),
            None,
        )
        if hit is None and executors & {e.lower() for e in sig.executors}:
            hit = "/".join(sorted(executors & {e.lower() for e in sig.executors}))
        if hit is not None:
            matched.append(sig)
            matched_name = matched_name or hit
    named_by_errors = False
    if not matched and not node and len(_norm(change["name"])) >= MIN_NAMED:
        own = change["name"].lower()
        matched = [s for s in target.signatures if not s.executors and own in words(s.key)]
        matched_name, named_by_errors = (change["name"], True) if matched else (None, False)
    namespace = namespace_wide(change) if not matched else None
    in_namespace = (
        [s for s in target.signatures if namespace in _namespaces_of(s, namespaces)]
        if namespace
        else []
    )
    named = {_host_key(ht["host"]): ht["ts"] for ht in change["host_times"] or () if ht["host"]}
    if node and not named:
        named = {node: change["ts"]}
    ci_hit = [s for s in matched if s.executors & executors]
    if ci_hit:
        named |= {e: change["ts"] for s in ci_hit for e in s.executors & executors}
    # the executors whose series spiked are where a change to them met the incident,
    # as its hosts are for a change to nodes
    reached = target.hosts.union(*({e.lower() for e in s.executors} for s in target.signatures))
    shared = sorted(set(named) & reached)
    host_share = len(shared) / len(named) if named else None
    # A change reaches only the hosts it names when it acts on nodes or pods, or when
    # nothing but its hosts ties it to the errors: then its hosts are compared.
    explicit = named if (node_local(change) or not matched or ci_hit) else {}
    # Sharing hosts with the errors, or a namespace with their programs, ties a change to
    # them less than naming their program.
    relation = 1.0 if matched else HOST_RELATION * (host_share or 0.0)
    if in_namespace:
        relation = max(relation, HOST_RELATION)
    affected = matched or in_namespace or list(target.signatures)
    untouched: frozenset[str] = frozenset()
    # a CI series is named after its executor, so only log signatures can call a host out
    called_out = called_out_hosts(explicit, [s for s in affected if not s.executors])
    if explicit and not called_out:
        # the errors elsewhere name none of its hosts: the others are a fair comparison
        everyone = frozenset().union(*(_hosts_of(s, population) for s in affected))
        untouched = everyone - set(explicit)
    return _Pair(
        target=target,
        change=change,
        affected=affected,
        name_match=bool(matched),
        matched_name=matched_name,
        named=named,
        explicit=explicit,
        shared=shared,
        host_share=host_share,
        relation=relation,
        # CI jobs are few a minute: a short window before a change would hold none.
        before_window=before_window
        if change["ts"] < target.onset or (ci_hit and len(ci_hit) == len(matched))
        else during_before,
        untouched=untouched,
        called_out=called_out,
        named_by_errors=named_by_errors,
        namespace=namespace if in_namespace else None,
        ci_side=ci_side if ci_hit else None,
    )


#: A host's silence is tied to errors that began while it was silent or this soon after it
#: came back (the others' retries, caches and endpoint updates outlast it a little).
SILENCE_REACH = timedelta(minutes=5)


def _silence_pair(
    target: Target, change: dict, *, before_window: timedelta, during_before: timedelta
) -> _Pair:
    """A host's silence (a node that died) against a target. The host itself has no rows
    to compare: its peers log the errors, about whatever it ran, in whatever program. So
    it is tied to every signature of a target whose errors began while it was silent (or
    :data:`SILENCE_REACH` after), or that it fell silent during, and the errors are counted
    on all hosts before and after it began. Errors whose own words name the host tie them
    as naming a program does; otherwise the tie is their timing alone, worth what sharing
    hosts is (:data:`HOST_RELATION`)."""
    node = _host_key(change["node"])
    overlaps = change["ts"] <= target.end and target.onset <= change["last_ts"] + SILENCE_REACH
    affected = list(target.signatures)
    called_out = called_out_hosts([node], [s for s in affected if not s.executors])
    relation = (1.0 if called_out else HOST_RELATION) if overlaps else 0.0
    shared = [node] if node in target.hosts else []
    return _Pair(
        target=target,
        change=change,
        affected=affected,
        name_match=False,
        matched_name=change["node"],
        named={node: change["ts"]},
        explicit={},
        shared=shared,
        host_share=float(len(shared)),
        relation=relation,
        before_window=before_window if change["ts"] < target.onset else during_before,
        called_out=called_out,
        silence=True,
    )


def _namespaces_of(sig: Signature, namespaces: dict[str, frozenset[str]] | None) -> frozenset[str]:
    """The namespaces whose pods could have shown ``sig``: its programs' and its
    source's."""
    namespaces = namespaces or {}
    runs = [namespaces.get(f"component:{c}") for c in sig.components]
    return frozenset().union(*(r for r in runs if r), namespaces.get(sig.source, frozenset()))


def _hosts_of(sig: Signature, population: dict[str, frozenset[str]]) -> frozenset[str]:
    """The hosts that could have shown ``sig``: those its programs (components) run on,
    else those of its source."""
    runs = [population.get(f"component:{c}") for c in sig.components]
    if runs and all(r is not None for r in runs):
        return frozenset().union(*runs)
    return population.get(sig.source, frozenset())


#: Shorter host names than this are not looked for in the errors' words.
MIN_HOST_NAME = 3
#: Shorter target names than this (``api``, ``web``) are not looked for in their values.
MIN_NAMED = 4


def called_out_hosts(hosts: Iterable[str], signatures: Iterable[Signature]) -> tuple[str, ...]:
    """The ``hosts`` (short names) that the signatures' own words name as a whole word:
    a change to one member of a cluster reaches the others, whose errors say so
    (``Partial partition detected: * We saw DOWN from rabbit@mq-b``). Their hosts are
    then what it reached, not a comparison that shows it did nothing.

    >>> sig = Signature("rabbitmq", "Partial partition detected: * We saw DOWN from rabbit@mq-b")
    >>> called_out_hosts(["mq-b", "mq-a", "q-b"], [sig])
    ('mq-b',)
    """
    named = _named_words(tuple(sorted({s.template for s in signatures})))
    return tuple(sorted(h for h in hosts if _host_like(h) and h.lower() in named))


def _host_like(name: str) -> bool:
    """Whether a host's name could not pass for a word of the text (``api``, ``worker``):
    it has a digit or a hyphen, and some length."""
    return len(name) >= MIN_HOST_NAME and any(c.isdigit() or c == "-" for c in name)


@functools.lru_cache(maxsize=1024)
def _named_words(templates: tuple[str, ...]) -> frozenset[str]:
    """The words of ``templates`` that could name a host: runs of letters, digits, ``_``
    and ``-`` not inside a dotted name or a path (``mq-b`` of ``rabbit@mq-b``,
    ``ip-10-0-1-5`` of ``ip-10-0-1-5.ec2.internal``; not ``api`` of ``/api/orders``);
    worked out once per set of signatures."""
    return frozenset(re.findall(r"(?<![\w./-])[\w-]+", "\n".join(templates).lower()))


def _on_nodes(target: Target, pods: pl.DataFrame) -> Target:
    """The target with the hosts that are pods read as the nodes that ran them."""
    if pods.height == 0:
        return target
    node = dict(zip(pods["pod"].to_list(), pods["node"].to_list(), strict=True))

    def key(host: str) -> str:
        return _host_key(node.get(host, host))

    signatures = tuple(
        replace(s, precursor_hosts=tuple(node.get(h, h) for h in s.precursor_hosts))
        for s in target.signatures
    )
    return replace(target, hosts=frozenset(key(h) for h in target.hosts), signatures=signatures)


# --- counting -----------------------------------------------------------------------------


def _latent(p: _Pair, window: timedelta) -> bool:
    """Whether a change was made long enough before the onset (a ``window`` or more) that
    the onset is not in its own after window: only then is its footprint measured."""
    return p.change["ts"] <= p.target.onset - window


#: Windows counted in one query at most: a pair has one per signature, host and side,
#: so memory follows this, not the number of pairs.
WINDOWS_AT_ONCE = 200_000


def _count_windows(pairs: list[_Pair], counter: RowCounter, *, after: timedelta) -> None:
    """Fill each pair's ``counts`` (``before`` and ``after`` on the touched hosts, each at
    its own time, or on all hosts; ``u_before`` and ``u_after`` on the untouched hosts at
    the change's time) and ``hosts_moved`` (how the same went host by host)."""
    batch: list[int] = []
    size = 0
    for i, p in enumerate(pairs):
        batch.append(i)
        size += _window_count(p, after=after)
        if size >= WINDOWS_AT_ONCE or i == len(pairs) - 1:
            _count(pairs, _windows(pairs, batch, after=after), counter, after=after)
            batch, size = [], 0


def _window_count(p: _Pair, *, after: timedelta) -> int:
    """How many windows :func:`_windows` gives pair ``p``."""
    if not p.explicit:
        return 3 * len(p.affected)
    latent = 2 if p.untouched and _latent(p, after) else 0
    touched = (3 if p.untouched else 2) + latent
    return len(p.affected) * (touched * len(p.explicit) + (3 + latent) * len(p.untouched))


def _windows(pairs: list[_Pair], batch: list[int], *, after: timedelta) -> pl.DataFrame:
    """The windows to count for the pairs ``batch`` names: ``i, role, host, source,
    template, hk, lo, hi``. A pair's signatures, touched hosts and untouched hosts are
    rows of flat tables, and the windows those tables joined on the pair, so that no
    Python runs per window.

    A pair whose change names no hosts has ``t_before`` and ``t_after`` on all hosts at
    the change's time, and ``n_after`` on the rows whose host is unknown (what of its
    count no host can be named for). Otherwise each touched host has them at its own time (and
    ``t_base``, a longer before window, when there are untouched hosts to compare), and
    each untouched host ``u_before``, ``u_after`` and ``u_base`` at the change's time;
    for a change made well before the onset (:func:`_latent`) both also have ``*_base``
    and ``*_after`` around the onset (roles ``ft_`` and ``fu_``).
    """
    chosen = [pairs[i] for i in batch]
    pair = pl.DataFrame(
        {
            "i": batch,
            "t0": [p.change["ts"] for p in chosen],
            "before": [p.before_window for p in chosen],
            "onset": [p.target.onset for p in chosen],
            "latent": [bool(p.untouched) and _latent(p, after) for p in chosen],
            "touches": [bool(p.explicit) for p in chosen],
            "has_untouched": [bool(p.untouched) for p in chosen],
        },
        schema_overrides={"t0": _TS, "onset": _TS},
    )
    # one row per pair and signature, host or untouched host, built flat: nested lists
    # cost polars far more to take in than the same values in flat columns
    i, signatures = _flat(batch, [p.affected for p in chosen])
    frame = pair.join(
        pl.DataFrame(
            {
                "i": i,
                "source": [s.source for s in signatures],
                "template": [s.template for s in signatures],
            },
            schema={"i": pl.Int64, "source": pl.String, "template": pl.String},
        ),
        on="i",
    )
    i, hosts = _flat(batch, [list(p.explicit.items()) for p in chosen])
    touched_hosts = pl.DataFrame(
        {"i": i, "touched": [h for h, _ in hosts], "touched_at": [t for _, t in hosts]},
        schema={"i": pl.Int64, "touched": pl.String, "touched_at": _TS},
    )
    i, others = _flat(batch, [sorted(p.untouched) for p in chosen])
    untouched_hosts = pl.DataFrame(
        {"i": i, "untouched": others}, schema={"i": pl.Int64, "untouched": pl.String}
    )
    t0, before, onset = pl.col("t0"), pl.col("before"), pl.col("onset")
    base = before * BASELINE
    has_untouched = pl.col("has_untouched")
    footprint_lo = pl.max_horizontal(t0, onset - base)

    def roles(side: str, at: pl.Expr, base_when) -> list[tuple]:
        """``(role, rows it applies to, lo, hi)`` of a touched (``t``) or untouched
        (``u``) host whose window starts ``at``."""
        return [
            (f"{side}_before", True, at - before, at),
            (f"{side}_after", True, at, at + after),
            (f"{side}_base", base_when, at - base, at),
            (f"f{side}_base", pl.col("latent"), footprint_lo, onset),
            (f"f{side}_after", pl.col("latent"), onset, onset + after),
        ]

    def windows(rows: pl.DataFrame, host: str | None, chosen: list[tuple]) -> list:
        key = pl.col(host) if host else pl.lit(None, pl.String)
        return [
            rows.filter(when).select(
                "i",
                role=pl.lit(role),
                host=key,
                source="source",
                template="template",
                hk=key,
                lo=lo.cast(_TS),
                hi=hi.cast(_TS),
            )
            for role, when, lo, hi in chosen
        ]

    no_hosts = frame.filter(~pl.col("touches"))
    touched = frame.join(touched_hosts, on="i")
    untouched = frame.join(untouched_hosts, on="i")
    unknown = no_hosts.with_columns(_unknown=pl.lit(NO_HOST))
    parts = [
        *windows(no_hosts, None, roles("t", t0, False)[:2]),
        *[
            w.with_columns(host=pl.lit(None, pl.String))
            for w in windows(unknown, "_unknown", [("n_after", True, t0, t0 + after)])
        ],
        *windows(touched, "touched", roles("t", pl.col("touched_at"), has_untouched)),
        *windows(untouched, "untouched", roles("u", t0, True)),
    ]
    return pl.concat(parts, how="vertical")


def _flat(batch: list[int], values: list[list]) -> tuple[list[int], list]:
    """Each pair's number repeated for each of its ``values``, and the values, flat.

    >>> _flat([4, 7], [["a", "b"], ["c"]])
    ([4, 4, 7], ['a', 'b', 'c'])
    """
    numbers = [i for i, own in zip(batch, values, strict=True) for _ in own]
    return numbers, [v for own in values for v in own]


def _count(
    pairs: list[_Pair], queries: pl.DataFrame, counter: RowCounter, *, after: timedelta
) -> None:
    """Count the windows ``queries`` name, into their pairs' ``counts`` and
    ``hosts_moved`` (only those that are not zero: a missing count is zero)."""
    if queries.height == 0:
        return
    queries = queries.with_row_index("q").with_columns(pl.col("q").cast(pl.Int64))
    counted = queries.join(counter.count(queries), on="q", how="left").with_columns(
        pl.col("n").fill_null(0)
    )
    sums = counted.group_by("i", "role").agg(pl.col("n").sum())
    for i, role, n in zip(*(sums[c].to_list() for c in sums.columns), strict=True):
        pairs[i].counts[role] = n
    per_host = counted.filter(pl.col("host").is_not_null() & (pl.col("n") > 0))
    tallies = _host_tallies(per_host, pairs, after=after)
    for i, name, n in zip(*(tallies[c].to_list() for c in tallies.columns), strict=True):
        pairs[i].hosts_moved[name] = n


def _host_tallies(per_host: pl.DataFrame, pairs: list[_Pair], *, after: timedelta) -> pl.DataFrame:
    """How many hosts of each side of each pair (``t`` touched, ``u`` untouched, and
    ``ft``/``fu`` around the onset of a latent change) started (rows after, none
    before), stopped (rows before, few or none after), got worse or got better (than
    their longer baseline says), from the windows' rows per host (``per_host``: ``i``,
    ``role``, ``host``, ``n``, only the windows with rows). Returns ``i``, ``name``
    (``t_started``, ``fu_worse`` ...) and ``n``, the tallies that are not zero. One query
    for all the pairs' hosts, however many a fleet has; the scales are the pair's own,
    as :func:`_measure` and :func:`_footprint` take them."""
    chosen = per_host["i"].unique().to_list()
    scales = pl.DataFrame(
        {
            "i": chosen,
            "scale": [after / pairs[i].before_window for i in chosen],
            "onset_scale": [_footprint_scale(pairs[i], after) for i in chosen],
        },
        schema={"i": pl.Int64, "scale": pl.Float64, "onset_scale": pl.Float64},
    )
    # a role is its side and its window (``ft_base``): split, not matched with a regex,
    # which costs more than the tallies themselves
    side_and_window = (
        pl.col("role").str.split_exact("_", 1).struct.rename_fields(["side", "window"])
    )
    rows = (
        per_host.with_columns(side_and_window.struct.unnest())
        .group_by("i", "side", "host")
        .agg(
            **{
                name: pl.col("n").filter(pl.col("window") == name).sum()
                for name in ("before", "after", "base")
            }
        )
        .join(scales, on="i")
    )
    before, after_n, base = pl.col("before"), pl.col("after"), pl.col("base")
    scale = pl.when(pl.col("side").str.starts_with("f")).then("onset_scale").otherwise("scale")
    expected = base * scale / BASELINE
    tallies = rows.group_by("i", "side").agg(
        started=((after_n > 0) & (before == 0)).sum(),
        stopped=((before > 0) & (after_n <= before * pl.col("scale") * STOPPED)).sum(),
        worse=((after_n > 0) & (after_n > 2 * expected + 0.5)).sum(),
        better=((base > 0) & (expected >= 2) & (after_n < expected / 2)).sum(),
    )
    return (
        tallies.unpivot(index=["i", "side"], variable_name="tally", value_name="n")
        .filter(pl.col("n") > 0)
        .select("i", name=pl.format("{}_{}", "side", "tally"), n=pl.col("n").cast(pl.Int64))
    )


def _footprint_scale(p: _Pair, window: timedelta) -> float | None:
    """The after window over the baseline before the onset (as long as the change's
    before window allows, or back to the change), of a latent change (:func:`_footprint`);
    None for another."""
    if not _latent(p, window):
        return None
    return window / min(BASELINE * p.before_window, p.target.onset - p.change["ts"])


# --- the parts ----------------------------------------------------------------------------


#: A share of failed jobs is judged over at least this many jobs on each side.
MIN_SHARE_JOBS = 5


def _failed_share(m: _Measured, p: _Pair, jobs: JobCounter, *, window: timedelta) -> None:
    """Judge a rise of failing CI jobs by the share of their executors' jobs that failed
    (a one-sided Fisher test), where every series of the pair spiked in failed jobs only:
    what made those series spike is their share of failed jobs, and a few jobs a quarter
    hour, nearly all failing after a change, are 11 failures against 1 as a count but 11
    of 12 jobs against 2 of 50 as a share. The usual share is read from
    :data:`BASELINE` before windows (a few jobs an hour say little about it in one); the size
    in bits is then the share's."""
    if not p.affected or not all(s.failing_share for s in p.affected):
        return
    executors = {e for s in p.affected for e in s.executors}
    t0, before = p.change["ts"], BASELINE * p.before_window
    n1, k1 = jobs.count(executors, t0 - before, t0)
    n2, k2 = jobs.count(executors, t0, t0 + window)
    if min(n1, n2) < MIN_SHARE_JOBS:
        return
    m.effect_p = host_count_test(k2, n2, k1, n1)
    m.rate_bits = math.log2(((k2 + 0.5) / (n2 + 1)) / ((k1 + 0.5) / (n1 + 1)))
    m.job_shares, m.jobs_before = ((n1, k1), (n2, k2)), before


def _job_share_columns(m: _Measured) -> dict[str, float | None]:
    (n1, k1), (n2, k2) = m.job_shares or ((None, None), (None, None))
    seconds = m.jobs_before.total_seconds() if m.jobs_before else None
    return {
        "jobs_before": n1,
        "failed_before": k1,
        "jobs_before_s": seconds,
        "jobs_after": n2,
        "failed_after": k2,
    }


def _bits(before: int, after: int, scale: float) -> float:
    """The change in rate in bits; ``scale`` is the after window over the before window,
    and one row per after window smooths both sides."""
    return math.log2((after + 1) / (before * scale + 1))


def _sized(bits: float) -> float:
    return min(1.0, abs(bits) / FULL_BITS)


@dataclass
class _Measured:
    before: int
    after: int
    scale: float
    rate_bits: float
    effect_p: float
    effect: float
    #: ``(jobs, failed)`` before and after, where the share of failed jobs measured the
    #: effect, and the length of the before window they were counted over
    job_shares: tuple[tuple[int, int], tuple[int, int]] | None = None
    jobs_before: timedelta | None = None
    untouched_before: int | None = None
    untouched_after: int | None = None
    cohort_bits: float | None = None
    cohort_p: float | None = None
    cohort: float | None = None
    hosts_p: float | None = None
    host_factor: float | None = None
    fell_alike: bool = False
    footprint: float | None = None
    footprint_bits: float | None = None
    footprint_p: float | None = None
    footprint_after: int | None = None
    footprint_others: int | None = None
    aligned: int = 0
    stopped: int = 0
    u_started: int = 0
    u_stopped: int = 0
    alignment: float | None = None


def _measure(
    p: _Pair, *, window: timedelta, tries: int = 1, jobs: JobCounter | None = None
) -> _Measured:
    """The temporal, spatial and per-host measures of one pair. A change of a frequent
    class had ``tries`` chances to be followed by a fluke, so its p-values count that
    many times over (Bonferroni) before they become strengths."""
    c = p.counts
    scale = window / p.before_window
    before, after = c.get("t_before", 0), c.get("t_after", 0)
    rate_bits = _bits(before, after, scale)
    up, down = rate_test(before, after, share_after=scale / (1 + scale))
    effect_p = up if rate_bits >= 0 else down
    m = _Measured(before, after, scale, rate_bits, effect_p, 0.0)
    if jobs is not None and rate_bits >= 0:
        _failed_share(m, p, jobs, window=window)
    m.effect = math.copysign(
        strength(min(1.0, m.effect_p * tries)) * _sized(m.rate_bits), m.rate_bits
    )
    if not p.explicit:
        return m
    hosts, others = list(p.explicit), sorted(p.untouched)

    moved = p.hosts_moved
    m.aligned, m.stopped = moved.get("t_started", 0), moved.get("t_stopped", 0)
    m.u_started, m.u_stopped = moved.get("u_started", 0), moved.get("u_stopped", 0)
    times = sorted(p.explicit.values())
    staggered = len(times) >= 2 and times[-1] - times[0] >= window / 6
    # Without untouched hosts to compare, errors that began on every host at once say
    # nothing per host: alignment needs a staggered rollout, and a change tied to the
    # errors by its program.
    if len(hosts) >= 2 and (others or (staggered and p.name_match)):
        base_up = m.u_started / len(others) if others else 0.0
        base_down = m.u_stopped / len(others) if others else 0.0
        rise = m.aligned / len(hosts) - base_up
        fall = m.stopped / len(hosts) - base_down
        m.alignment = max(rise, 0.0) if rise >= fall else -max(fall, 0.0)
    ub, ua = c.get("u_before", 0), c.get("u_after", 0)
    # Untouched hosts that never erred cannot show that the touched ones got better.
    if others and (after + ua > 0) and not (ub + ua == 0 and rate_bits < 0):
        m.untouched_before, m.untouched_after = ub, ua
        m.cohort_bits = rate_bits - _bits(ub, ua, scale)
        # the others were erring as much, per host, and fell as much: not its doing
        m.fell_alike = m.cohort_bits > -1 and ub / len(others) >= before / len(hosts) / 2
        # the touched hosts' usual share of the rows, from a longer baseline than the
        # rate's, so that one quiet hour on a host does not make its next hour look odd
        share = cohort_share(
            c.get("t_base", 0), c.get("u_base", 0), len(hosts), len(hosts) + len(others)
        )
        up, down = _cohort_test(after, ua, share)
        rows_p = up if m.cohort_bits >= 0 else down
        # hosts, not rows, are the units that differ: a surge on one host must not pass
        # for the change's doing, so the hosts that got worse (or better) are tested too
        worse, better = _host_moves(p, hosts, others)
        hosts_p = worse if m.cohort_bits >= 0 else better
        m.cohort_p, m.hosts_p = rows_p, hosts_p
        # how much of the host-level evidence this many hosts could give, was given
        strongest = 1 / math.comb(len(hosts) + len(others), len(hosts))
        m.host_factor = min(1.0, max(0.0, math.log(hosts_p) / math.log(strongest)))
        m.cohort = math.copysign(
            strength(min(1.0, rows_p * tries)) * m.host_factor * _sized(m.cohort_bits),
            m.cohort_bits,
        )
        if m.cohort > 0 and rate_bits <= 0:
            # Its own hosts did not get worse; the others only got better faster.
            m.cohort = 0.0
    if others and _latent(p, window):
        _footprint(m, p, hosts, others, window=window, tries=tries)
    return m


def _footprint(
    m: _Measured, p: _Pair, hosts: list[str], others: list[str], *, window: timedelta, tries: int
) -> None:
    """Where the incident's errors fell: did the hosts the change touched, hours before,
    get more of the rows after the onset than their share before it (a latent cause that
    load brought out)? Tested on rows and on hosts, as the cohort is."""
    c = p.counts
    scale = _footprint_scale(p, window)
    tb, ta, ub, ua = (c.get(k, 0) for k in ("ft_base", "ft_after", "fu_base", "fu_after"))
    if ta + ua == 0:
        return
    m.footprint_bits = _bits(tb, ta, scale) - _bits(ub, ua, scale)
    share = cohort_share(tb, ub, len(hosts), len(hosts) + len(others))
    rows_p = _cohort_test(ta, ua, share)[0]
    hosts_p = _host_moves(p, hosts, others, sides=("ft", "fu"))[0]
    strongest = 1 / math.comb(len(hosts) + len(others), len(hosts))
    factor = min(1.0, max(0.0, math.log(hosts_p) / math.log(strongest)))
    m.footprint_p = rows_p
    m.footprint_after, m.footprint_others = ta, ua
    if m.footprint_bits > 0:
        m.footprint = strength(min(1.0, rows_p * tries)) * factor * _sized(m.footprint_bits)


def _host_moves(
    p: _Pair, hosts: list[str], others: list[str], *, sides=("t", "u")
) -> tuple[float, float]:
    """P-values (one-sided Fisher tests on host counts) that the touched hosts got worse
    in the window after the change (than their baseline says) more often than the
    untouched, and that they got worse less often or better more often (the hosts
    that did, of each side: :func:`_host_tallies`; a host without rows did neither)."""
    worse_t, better_t, worse_u, better_u = (
        p.hosts_moved.get(f"{side}_{tally}", 0) for side in sides for tally in ("worse", "better")
    )
    n_t, n_u = len(hosts), len(others)
    fewer_worse = host_count_test(n_t - worse_t, n_t, n_u - worse_u, n_u)
    return (
        host_count_test(worse_t, n_t, worse_u, n_u),
        min(fewer_worse, host_count_test(better_t, n_t, better_u, n_u)),
    )


def _cohort_test(touched_after: int, untouched_after: int, share: float) -> tuple[float, float]:
    """P-values that the touched hosts had more (and fewer) of the after rows than
    their ``share``."""
    n = touched_after + untouched_after
    return (
        binomial_tail(touched_after, n, share, upper=True),
        binomial_tail(touched_after, n, share, upper=False),
    )


def _precursor_credit(
    pairs: list[_Pair], precursor_window: timedelta
) -> dict[int, list[Signature]]:
    """Credit each precursor trickle to the change whose evidence it is: the change made
    before it (within ``precursor_window``) whose touched hosts hold the trickle's hosts
    (a change naming no host but the failing program counts half; one tied to the errors
    only by its hosts needs its own spatial evidence); among equals, the one
    whose own window shows the trickle rising, then the nearest."""
    best: dict[tuple[int, str, str], tuple[tuple, _Pair]] = {}
    for p in pairs:
        if p.relation <= 0 or p.change["ts"] >= p.target.onset or p.counts.get("_routine"):
            continue
        for sig in p.affected:
            start = sig.precursor_start
            if start is None or not (p.change["ts"] <= start <= p.change["ts"] + precursor_window):
                continue
            if start >= p.target.onset or not (p.name_match or p.counts.get("_spatial")):
                # a trickle is a precursor only before the onset, and a change tied to it
                # only by sharing hosts needs its own spatial evidence
                continue
            trickle = {_host_key(h) for h in sig.precursor_hosts}
            if p.explicit and trickle:
                held = len(trickle & set(p.explicit)) / len(trickle)
                within = len(trickle & set(p.explicit)) / len(p.explicit)
                cover = held * (0.5 + 0.5 * within)
            else:
                cover = 0.5 if p.name_match else 0.0
            if cover <= 0:
                continue
            rank = (round(cover, 3), p.counts.get("_rise", 0), p.change["ts"])
            key = (p.target.target_id, sig.source, sig.template)
            if key not in best or rank > best[key][0]:
                best[key] = (rank, p)
    credited: dict[int, list[Signature]] = {}
    for (_tid, source, template), (_rank, p) in best.items():
        sig = next(s for s in p.affected if (s.source, s.template) == (source, template))
        credited.setdefault(id(p), []).append(sig)
    return credited


def _class_judgement(pairs: list[_Pair], measured: list[_Measured]) -> dict[int, tuple]:
    """Judge each change of a frequent class (:func:`change_class`) by all its
    occurrences around the target, like a placebo: it is a suspect only if the rise that
    followed it stands out (fewer than a quarter of the others were followed by as strong
    a rise). A program's frequent change (a GitOps sync, a CronJob run) whose only tie to
    the errors is timing, a rise on all hosts with no hosts of its own compared, is
    judged with its class too: one of them always sits near an onset. Returns per pair
    index ``(class, size, how many others were followed alike, judged by its class)``."""
    by_class: dict[tuple[int, str], list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        by_class[(p.target.target_id, change_class(p.change))].append(i)
    out = {}
    for (_tid, name), members in by_class.items():
        for i in members:
            out[i] = (name, len(members), 0, False)
        if len(members) < CLASS_SIZE:
            continue
        rise = {i: max(_primary(measured[i]), measured[i].footprint or 0.0, 0.0) for i in members}
        for i in members:
            alike = sum(1 for j in members if j != i and rise[j] >= rise[i] - 0.1)
            usual = alike * 4 >= len(members) - 1
            m = measured[i]
            timing_only = (
                bool(pairs[i].change.get("automated"))
                and (m.cohort or 0) < EVIDENT
                and (m.footprint or 0) < EVIDENT
                and (m.alignment or 0) < 0.5
            )
            out[i] = (name, len(members), alike, usual or timing_only)
    return out


def _effect_part(m: _Measured, p: _Pair) -> float:
    """The temporal part as scored: where untouched hosts are compared, only when the
    cohort says they did not move the same way; for a change tied
    to the errors only by sharing hosts with them, only where there are untouched hosts
    to compare (another program's errors rising on its hosts says nothing alone), or
    where the errors name its hosts (:func:`called_out_hosts`)."""
    if m.cohort is None:
        return m.effect if p.name_match or p.called_out or not p.explicit else 0.0
    if m.cohort * m.effect > 0 and abs(m.cohort) >= EVIDENT:
        return m.effect
    return 0.0


def _primary(m: _Measured) -> float:
    return m.cohort if m.cohort is not None else m.effect


# --- score and role -----------------------------------------------------------------------


def _score(
    p: _Pair,
    m: _Measured,
    *,
    window: timedelta,
    tau: timedelta,
    min_rows: int,
    credited: list[Signature] | None,
    data_start: datetime,
    judged: tuple,
) -> tuple[dict, list[Signature]]:
    """The row of numbers for one target and change, and the signatures new after it."""
    change, target = p.change, p.target
    t0 = change["ts"]
    lead = target.onset - t0
    before_onset = t0 < target.onset
    class_name, class_size, class_like, routine = judged
    new = [
        s
        for s in p.affected
        if s.first_seen_at is not None
        and s.first_seen_at > data_start
        and t0 <= s.first_seen_at < t0 + window
    ]
    effect = _effect_part(m, p)
    primary = m.cohort if m.cohort is not None else effect
    parts: dict[str, float | None] = {
        "cohort": m.cohort,
        "effect": effect,
        "alignment": m.alignment,
        "footprint": m.footprint,
        "new": 1.0 if new and primary > 0 else 0.0,
        "precursor": 1.0 if credited else 0.0,
        "onset": math.exp(-lead / tau) * max(primary, 0.0) if before_onset else 0.0,
    }
    if routine:
        # Judged by its class: the same followed its other occurrences.
        parts = {k: (min(v, 0.0) if v is not None else None) for k, v in parts.items()}
    if p.relation <= 0 or change.get("found") == "not found":
        parts = {k: (0.0 if v is not None else None) for k, v in parts.items()}
    score = p.relation * sum(WEIGHTS[k] * v for k, v in parts.items() if v is not None)
    role = _role(
        p, m, parts, before_onset=before_onset, lead=lead, window=window, min_rows=min_rows
    )
    pre = min(credited, key=lambda sig: sig.precursor_start) if credited else None
    row = {
        "target_id": target.target_id,
        "change_id": change["change_id"],
        "ts": t0,
        "change_type": change["change_type"],
        "target": change["target"],
        "description": change["description"],
        "inferred": change["inferred"],
        "actor": change["actor"],
        "automated": change.get("automated"),
        "lead_s": lead.total_seconds(),
        "when": "before onset" if before_onset else "during",
        "relation": p.relation,
        "name_match": p.name_match,
        "scope": _scope(p),
        "touched_hosts": len(p.named),
        "shared_hosts": p.shared,
        "called_out_hosts": list(p.called_out),
        "host_share": p.host_share,
        "affected": [s.template for s in p.affected],
        "before": m.before,
        "after": m.after,
        # counted on all hosts: how many of the rows after it come from no known host
        "after_unknown_host": None if p.explicit else p.counts.get("n_after", 0),
        "rate_bits": m.rate_bits,
        "effect_p": m.effect_p,
        **_job_share_columns(m),
        "untouched_hosts": len(p.untouched) if p.explicit and p.untouched else None,
        "untouched_before": m.untouched_before,
        "untouched_after": m.untouched_after,
        "cohort_bits": m.cohort_bits,
        "cohort_p": m.cohort_p,
        "footprint_after": m.footprint_after,
        "footprint_others": m.footprint_others,
        "footprint_bits": m.footprint_bits,
        "footprint_p": m.footprint_p,
        "aligned_hosts": m.aligned if p.explicit else None,
        "stopped_hosts": m.stopped if p.explicit else None,
        "untouched_started": m.u_started if p.untouched else None,
        "untouched_stopped": m.u_stopped if p.untouched else None,
        "change_class": class_name,
        "class_size": class_size,
        "class_like": class_like,
        "routine": routine,
        "new_signatures": [s.template for s in new],
        "precursor_signature": pre.template if pre else None,
        "precursor_start": pre.precursor_start if pre else None,
        "precursor_rows": pre.precursor_rows if pre else None,
        "precursor_hosts": list(pre.precursor_hosts) if pre else [],
        "part_relation": p.relation,
        **{f"part_{k}": v for k, v in parts.items()},
        "score": score,
        "score_parts": _score_text(p.relation, parts, score),
        "role": role,
        "errors_began_after": None,
        "began_with_others": None,
        "hosts_explained_by": None,
        "examples": list(change["examples"] or []),
    }
    return row, new


def _role(
    p: _Pair,
    m: _Measured,
    parts: dict[str, float | None],
    *,
    before_onset: bool,
    lead: timedelta,
    window: timedelta,
    min_rows: int,
) -> str:
    """The label of a change, from its parts: a cause needs evidence beyond chance that
    the errors rose after it (on its hosts against the others, where there are others);
    a mitigation, that they stopped on its hosts after it."""
    if p.change.get("found") == "not found":
        return "target not found"
    if p.relation <= 0:
        return "unrelated"
    rose = any((parts.get(k) or 0) >= EVIDENT for k in ("cohort", "effect"))
    # Tied to the errors by its hosts alone, with most of them clear of the errors, a
    # change raised them only if they began after it: errors already there on a few of
    # its hosts, growing, were on their way.
    rose &= (
        p.name_match
        or p.silence
        or p.namespace is not None
        or (p.host_share or 0) >= 0.5
        or (parts.get("alignment") or 0) > 0
    )
    rose |= (parts.get("alignment") or 0) >= 0.5
    # Errors that stopped on its own hosts count even where the others fell faster.
    fell = min(parts.get("cohort") or 0, parts.get("effect") or 0, m.effect) <= -EVIDENT
    fell &= not m.fell_alike
    fell |= (parts.get("alignment") or 0) <= -0.5
    if before_onset:
        if parts["precursor"]:
            return "precursor"
        if rose:
            return "trigger" if lead < window else "precursor"
        if (parts.get("footprint") or 0) >= EVIDENT:
            return "latent cause"
        return "no clear effect"
    if rose and m.after - m.before * m.scale >= min_rows:
        return "made worse"
    if fell and m.before >= min_rows and m.after <= m.before * m.scale * STOPPED:
        return "mitigation"
    return "no clear effect"


def _scope(p: _Pair) -> str:
    if p.silence:
        return "silence"
    if p.change["node"] and len(p.explicit) == 1:
        return "node"
    if p.explicit:
        return "hosts"
    if p.named_by_errors:
        return "named"
    if p.name_match:
        return "component"
    if p.namespace:
        return "namespace"
    return "none"


def _score_text(relation: float, parts: dict[str, float | None], score: float) -> str:
    """``1.00 x (3x+0.90 cohort 0.5x+1.00 new) = 3.20``."""
    inner = [f"{WEIGHTS[k]:g}x{v:+.2f} {k}" for k, v in parts.items() if v]
    return f"{relation:.2f} x ({' '.join(inner) or '0'}) = {score:.2f}"


# --- ranking ------------------------------------------------------------------------------


def rank_changes(
    targets: list[Target],
    changes: pl.DataFrame,
    frame: pl.DataFrame,
    *,
    lookback: str | timedelta = "48h",
    window: str | timedelta = "1h",
    before_window: str | timedelta = "15m",
    precursor_window: str | timedelta = "6h",
    tau: str | timedelta = "1h",
    min_rows: int = 10,
    keep: int | None = None,
    id_name: str = "incident_id",
    diffs: pl.DataFrame | None = None,
    population: dict[str, frozenset[str]] | None = None,
    namespaces: dict[str, frozenset[str]] | None = None,
    counter: RowCounter | None = None,
    pods: pl.DataFrame | None = None,
    quote: int = 3,
) -> pl.DataFrame:
    """Rank the changes made before and during each target, with the evidence for each.

    Parameters
    ----------
    targets
        Incidents (:func:`incident_targets`) or spikes (:func:`spike_targets`).
    changes
        :func:`change_events` of ``frame``.
    frame
        The event frame, for counting rows.
    lookback
        How long before a target's onset a change is still a candidate.
    window
        The span after a change whose rate is compared with the rate before it; for a
        change made before the onset, also the span before it.
    before_window
        The span before a change made during the incident whose rate is the
        comparison: short, so that a change made while errors were climbing is compared
        with where they stood when it was made.
    precursor_window
        How soon after a change a precursor trickle must begin to be credited to it.
    tau
        The time scale of the weak ``onset`` part.
    min_rows
        A change made it worse or mitigated only if at least this many rows moved.
    keep
        Keep only the best ``keep`` changes per target (all if None).
    id_name
        The name of the target id column (``incident_id`` or ``spike_id``).
    diffs
        :func:`signature_diffs` of the changes, summarised in the evidence if given.
    population, namespaces, counter, pods
        :func:`host_population` and
        :func:`~timeline.analysis.contributors.targets.program_namespaces` of ``frame``, a
        :class:`RowCounter` over it and the :func:`timeline.reading.pods.pod_nodes` of it,
        to share between calls (made here if not given; a target's hosts that are pods are
        read as their nodes).
    quote
        How many error rows to quote before and after each change.

    Returns
    -------
    pl.DataFrame
        One row per target and candidate change. ``rank`` puts the changes with evidence
        that they contributed first (highest score first), then the mitigations, then
        the rest; when no change has evidence beyond chance, no change is ranked (``rank``
        is null) and the changes nearest before the onset are ``considered, no
        evidence``. The columns: the change (``change_id``, ``ts``, ``change_type``,
        ``target``, ``description``, ``inferred``, ``actor``, ``automated``), ``lead_s``
        and ``when``, the relation (``name_match``, ``scope``, ``touched_hosts``,
        ``shared_hosts``, ``host_share``, ``affected``), the counts and tests
        (``before``, ``after``, ``rate_bits``, ``effect_p``, ``untouched_hosts``,
        ``untouched_before``, ``untouched_after``, ``cohort_bits``, ``cohort_p``,
        ``aligned_hosts``, ``stopped_hosts``, ``untouched_started``,
        ``untouched_stopped``), where the incident's errors fell (``footprint_after``,
        ``footprint_others``, ``footprint_bits``, ``footprint_p``), the base rate
        (``change_class``, ``class_size``, ``class_like``, ``routine``),
        ``new_signatures``, the precursor (``precursor_signature``, ``precursor_start``,
        ``precursor_rows``, ``precursor_hosts``), the parts (``part_*``), ``score``,
        ``score_parts``, ``role`` (``trigger``, ``precursor``, ``latent cause``, ``made
        worse``, ``mitigation``, ``no clear effect``, ``considered, no evidence``,
        ``unrelated``, ``target not found``),
        ``evidence`` (sentences), ``examples`` (``file:line`` of the change's rows) and
        ``lines_before`` / ``lines_after`` (the error rows behind its figures).
    """
    lookback_td, window_td = to_timedelta(lookback), to_timedelta(window)
    during_td = to_timedelta(before_window)
    precursor_td, tau_td = to_timedelta(precursor_window), to_timedelta(tau)
    change_rows = changes.sort("ts").to_dicts()
    pods = pods if pods is not None else pod_nodes(frame)
    population = population if population is not None else host_population(frame, pods=pods)
    namespaces = namespaces if namespaces is not None else program_namespaces(frame)
    targets = [_on_nodes(t, pods) for t in targets]
    candidates = [
        (target, change)
        for target in targets
        for change in change_rows
        if target.onset - lookback_td <= change["ts"] <= target.end
    ]
    if not candidates:
        return _empty_contributors(id_name)
    if counter is None:
        wanted = {s.key for target, _ in candidates for s in target.signatures}
        counter = RowCounter(frame, wanted, pods=pods)
    pairs = [
        _pair(
            target,
            change,
            population,
            before_window=window_td,
            during_before=during_td,
            words=counter.words,
            namespaces=namespaces,
        )
        for target, change in candidates
    ]
    _count_windows(pairs, counter, after=window_td)
    sizes = Counter((p.target.target_id, change_class(p.change)) for p in pairs)
    tries = [sizes[(p.target.target_id, change_class(p.change))] for p in pairs]
    measured = [
        _measure(p, window=window_td, tries=n if n >= CLASS_SIZE else 1, jobs=counter.jobs)
        for p, n in zip(pairs, tries, strict=True)
    ]
    judged = _class_judgement(pairs, measured)
    for i, p in enumerate(pairs):
        p.counts["_routine"] = int(judged[i][3])
        p.counts["_rise"] = round(max(_primary(measured[i]), 0.0), 3)
        p.counts["_spatial"] = int((measured[i].cohort or 0) >= EVIDENT)
    credited = _precursor_credit(pairs, precursor_td)
    data_start = frame.select(pl.col("ts").min()).item()
    scored = [
        _score(
            p,
            measured[i],
            window=window_td,
            tau=tau_td,
            min_rows=min_rows,
            credited=credited.get(id(p)),
            data_start=data_start,
            judged=judged[i],
        )
        for i, p in enumerate(pairs)
    ]
    _shadowed(pairs, scored, counter)
    _began_with_others(pairs, scored, counter)
    _hosts_explained(pairs, scored, credited, counter, after=window_td)
    schema = _contributor_schema("target_id")
    for column in ("evidence", "lines_before", "lines_after"):
        schema.pop(column)
    table = _pair_table([row for row, _ in scored], schema)
    table = _ranked(table.with_row_index("_pair")).rename({"target_id": id_name})
    if keep is not None:
        table = table.filter(pl.col("rank") <= keep)
    evidence, before_lines, after_lines = [], [], []
    summaries = diff_summaries(diffs)
    for i in table["_pair"].to_list():
        row, new = scored[i]
        p = pairs[i]
        row = row | {"role": table["role"][len(evidence)]}
        hosts = sorted(p.explicit) if p.explicit else None
        sigs = [(s.source, s.template) for s in p.affected]
        lines = counter.quote(
            sigs, hosts, at=p.change["ts"], before=p.before_window, after=window_td, n=quote
        )
        before_lines.append(lines[0])
        after_lines.append(lines[1])
        evidence.append(
            evidence_sentences(
                row,
                p,
                window=window_td,
                diff_text=summaries.get(p.change["change_id"]),
                new=new,
                lines=lines,
            )
        )
    table = table.with_columns(
        lines_before=_quote_lists(before_lines),
        lines_after=_quote_lists(after_lines),
        evidence=pl.Series(evidence, dtype=pl.List(pl.String)),
    ).drop("_pair")
    return table.select(id_name, "rank", *[c for c in table.columns if c not in (id_name, "rank")])


def _pair_table(rows: list[dict], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """The pairs' rows as a frame of ``schema`` (a field a row lacks is null), taken in
    column by column: polars reads a list of dicts key by key for every row, at over
    twice the cost."""
    return pl.DataFrame({name: [row.get(name) for row in rows] for name in schema}, schema=schema)


def _quote_lists(quotes: list[list[dict]]) -> pl.Series:
    """Each pair's quoted rows (``QUOTE_SCHEMA`` fields) as a list of structs, taken in
    as flat columns and gathered per pair: polars takes in nested dicts one by one."""
    flat = [row for own in quotes for row in own]
    rows = pl.DataFrame({name: [row[name] for row in flat] for name in QUOTE_SCHEMA}, QUOTE_SCHEMA)
    owners = pl.Series("pair", [i for i, own in enumerate(quotes) for _ in own], pl.UInt32)
    lists = rows.select(owners, row=pl.struct(*QUOTE_SCHEMA)).group_by("pair").agg("row")
    every_pair = pl.DataFrame({"pair": pl.int_range(len(quotes), dtype=pl.UInt32, eager=True)})
    return (
        every_pair.join(lists, on="pair", how="left", maintain_order="left")
        .select(pl.col("row").fill_null(pl.lit([], pl.List(pl.Struct(QUOTE_SCHEMA)))))
        .to_series()
    )


def _shadowed(pairs: list[_Pair], scored: list[tuple[dict, list]], counter: RowCounter) -> None:
    """A trigger whose errors came only after a later trigger of the same target (no row
    of them, on its hosts, between the two) did not raise them: the later change did (a
    deploy half an hour before a DNS change, whose errors the deploy's program logged
    from the DNS change on). It becomes ``no clear effect``, naming the later change in
    ``errors_began_after``."""
    triggers: dict[int, list[int]] = defaultdict(list)
    for i, (row, _) in enumerate(scored):
        if row["role"] == "trigger":
            triggers[pairs[i].target.target_id].append(i)
    for members in triggers.values():
        members.sort(key=lambda i: pairs[i].change["ts"])
        for i, later in zip(members, members[1:], strict=False):
            p, at, until = pairs[i], pairs[i].change["ts"], pairs[later].change["ts"]
            if until <= at:
                continue
            hosts = sorted(p.explicit) if p.explicit else None
            sigs = [(s.source, s.template) for s in p.affected]
            between = counter.quote(sigs, hosts, at=at, before=timedelta(0), after=until - at, n=1)
            if not between[1]:
                scored[i][0]["role"] = "no clear effect"
                scored[i][0]["errors_began_after"] = pairs[later].change["description"]


#: A change whose errors began this long after it or longer (longer than a DNS cache or a
#: retry loop takes to let a change bite) may have met a wider event...
SHARED_ONSET_LAG = timedelta(minutes=10)
#: ...which it did when this many other programs' errors began within this of its own.
SHARED_ONSET_NEAR = timedelta(minutes=2)
SHARED_ONSET_OTHERS = 2


def _began_with_others(
    pairs: list[_Pair], scored: list[tuple[dict, list]], counter: RowCounter
) -> None:
    """A trigger tied to the errors by its program, whose errors began only well after it
    and at the moment several other programs' errors began (errors it did not touch, and
    that do not name it: a client failing on it is its cascade), met a wider event rather
    than caused it: a deploy a quarter of an hour before a provider outage that every program
    logged at once. It becomes ``no clear effect``, naming the other programs in
    ``began_with_others``."""
    for i, (row, _) in enumerate(scored):
        p = pairs[i]
        if row["role"] != "trigger" or not p.name_match:
            continue
        at = p.change["ts"]
        after = p.target.end - at if p.target.end else timedelta(hours=1)
        mine = {(s.source, s.template) for s in p.affected}
        # errors of other programs that name the changed one are its cascade, not others'
        names = {n.lower() for n in (*(p.change["names"] or ()), p.matched_name) if n}
        names = {n for n in names if len(n) >= MIN_HOST_NAME}
        first = counter.quote(sorted(mine), None, at=at, before=timedelta(0), after=after, n=1)[1]
        if not first or first[0]["ts"] - at < SHARED_ONSET_LAG:
            continue
        began = first[0]["ts"]
        others = []
        for sig in p.target.signatures:
            if (sig.source, sig.template) in mine or sig.executors:
                continue
            if any(n in sig.template.lower() for n in names):
                continue
            seen = counter.quote(
                [(sig.source, sig.template)], None, at=at, before=timedelta(0), after=after, n=1
            )[1]
            if seen and abs(seen[0]["ts"] - began) <= SHARED_ONSET_NEAR:
                others.append(next(iter(sorted(sig.components)), sig.source))
        if len(set(others)) >= SHARED_ONSET_OTHERS:
            row["role"] = "no clear effect"
            row["began_with_others"] = ", ".join(sorted(set(others)))


def _hosts_explained(
    pairs: list[_Pair],
    scored: list[tuple[dict, list]],
    credited: dict[int, list[Signature]],
    counter: RowCounter,
    *,
    after: timedelta,
) -> None:
    """A trigger tied to the errors by its hosts alone, whose hosts with the errors all
    carried a precursor trickle that an earlier change began there before it, stood out
    because of that change, not its own: a pod restarted, or another program deployed, on
    the nodes a partial rollout had reached, minutes before load turned the rollout's
    trickle into an incident. That holds only where every signature with rows on its
    hosts after it is such a trickle. It becomes ``no clear effect``, naming the earlier
    change in ``hosts_explained_by``."""
    trickles = [
        (pairs[i], sig)
        for i in range(len(pairs))
        for sig in credited.get(id(pairs[i]), ())
        if sig.precursor_start is not None
    ]
    for i, (row, _) in enumerate(scored):
        p = pairs[i]
        if row["role"] != "trigger" or p.name_match or p.silence or not p.shared:
            continue
        at, hosts = p.change["ts"], sorted(p.explicit)
        earlier = [
            (q, sig)
            for q, sig in trickles
            if q.target.target_id == p.target.target_id
            and q.change["ts"] < at
            and sig.precursor_start < at
            and set(p.shared) <= {_host_key(h) for h in sig.precursor_hosts}
        ]
        if not earlier:
            continue
        seen = [
            (s.source, s.template)
            for s in p.affected
            if counter.quote(
                [(s.source, s.template)], hosts, at=at, before=timedelta(0), after=after, n=1
            )[1]
        ]
        for q, _sig in earlier:
            trickled = {(s.source, s.template) for s in credited[id(q)]}
            if seen and set(seen) <= trickled:
                row["role"] = "no clear effect"
                row["hosts_explained_by"] = q.change["description"]
                break


def _ranked(table: pl.DataFrame) -> pl.DataFrame:
    """Number the changes of each target: those with evidence that they contributed
    first (best first; what began it before what made it worse), then the mitigations
    (clearest first), then the rest (highest score, then nearest the onset). A target no
    change explains gets no ranks, and its related changes nearest before the onset are
    ``considered, no evidence``."""
    is_cause = pl.col("role").is_in(CAUSES)
    mitigation = pl.col("role") == "mitigation"
    group = (
        pl.when(is_cause & (pl.col("when") == "before onset"))
        .then(0)
        .when(is_cause)
        .then(1)
        .when(mitigation)
        .then(2)
        .otherwise(3)
    )
    strength_ = pl.when(mitigation).then(-pl.col("score")).otherwise(pl.col("score"))
    explained = is_cause.any().over("target_id")
    ordered = table.sort(
        [pl.col("target_id"), group, strength_, pl.col("lead_s").abs()],
        descending=[False, False, True, False],
        maintain_order=True,
    ).with_columns(rank=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).over("target_id"))
    nearest = (
        (pl.col("role") == "no clear effect")
        & (pl.col("when") == "before onset")
        & (pl.col("lead_s").rank("ordinal").over("target_id", "role", "when") <= CONSIDERED_SHOWN)
    )
    return ordered.with_columns(
        role=pl.when(~explained & nearest).then(pl.lit(CONSIDERED)).otherwise(pl.col("role")),
        rank=pl.when(explained).then(pl.col("rank")),
    )
