"""Contributing changes: which changes before and during an incident plausibly contributed.

Every change made from ``lookback`` before an incident's onset to its end is scored for
the incident (and for each spike). The score is a sum of parts, each in ``[-1, 1]``, each
shown in its own column and explained in a sentence of ``evidence``:

``relation``
    Does the change touch what is failing? 1 when its target names a source or component
    of the incident's signatures; else the share of the hosts it touched that show them.
    A change with no relation scores 0 whatever its timing, and says why.
``onset``
    For a change made before the onset: ``exp(-lead / tau)`` times how much the affected
    signatures rose right after it (the incident followed closely *and* it rose).
``effect``
    The rate of the affected signatures on the change's hosts (all hosts when it names
    none, or when it is a cluster-wide object) in the ``before_window`` before it against
    the ``window`` after it, in bits (``log2`` of the ratio, one row of smoothing) over 3:
    a factor of 8 is full marks; shrunk when fewer than ``min_rows`` rows back it;
    negative when they fell. For a change made before the onset it counts only if that
    window reaches the onset.
``cohort``
    Where the change touched some hosts and not others (a node restarted, a DaemonSet
    rolled node by node; not a Deployment or ConfigMap, whose reach is the cluster), the
    same before/after comparison on the touched hosts minus the one on the untouched
    hosts that run the same programs (a difference in differences, in bits, over 3). It
    is the strongest evidence, so it replaces ``effect`` in the score when it can be
    computed. It does not count for a change whose own hosts did not get worse.
``new``
    1 when an affected signature was seen for the first time in the ``window`` after it
    (for a change made before the onset, only if that window reaches the onset).
``precursor``
    1 when the trickle that led up to a spike began within ``precursor_window`` after it,
    and it is the nearest related change before that trickle.

``score = relation + relation * (2 onset + 2 effect + 3 cohort + 0.5 new + 1.5 precursor)``
(see ``WEIGHTS``). Each change gets a ``role``: before the onset ``precursor``,
``trigger`` or ``no clear effect``; during the incident ``made worse`` (the affected
signatures rose after it, and not only as much as on the hosts it did not touch),
``mitigation`` (on its own hosts they stopped, or fell to an eighth of their rate or less)
or ``no clear effect``; and
``unrelated`` when nothing ties it to the incident. The ranking lists the contributors
first, then the mitigations, then the rest.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from timeline.analysis.incidents import CI_METRICS, duration_text
from timeline.analysis.rates import SERIES_SCHEMA, problem_rows, to_timedelta

__all__ = [
    "FULL_BITS",
    "RowCounter",
    "STOPPED",
    "WEIGHTS",
    "Signature",
    "Target",
    "change_events",
    "host_key",
    "host_population",
    "node_local",
    "incident_targets",
    "names_match",
    "rank_changes",
    "signature_diffs",
    "spike_targets",
]

#: How much each part of a score counts.
WEIGHTS = {
    "relation": 1.0,
    "onset": 2.0,
    "effect": 2.0,
    "cohort": 3.0,
    "new": 0.5,
    "precursor": 1.5,
}
#: A rate change of this many bits (a factor of 2**FULL_BITS) scores full marks.
FULL_BITS = 3.0
#: Errors have stopped on a change's hosts when their rate after it is at most this share
#: of the rate before it.
STOPPED = 1 / 8

_TS = SERIES_SCHEMA["bucket"]

CHANGE_FIELDS: dict[str, pl.DataType] = {
    "change_type": pl.String(),
    "target": pl.String(),
    "from": pl.String(),
    "to": pl.String(),
    "actor": pl.String(),
    "inferred": pl.Boolean(),
    "host": pl.String(),
}

CHANGE_SCHEMA: dict[str, pl.DataType] = {
    "change_id": pl.UInt32(),
    "ts": _TS,
    "last_ts": _TS,
    "change_type": pl.String(),
    "target": pl.String(),
    "name": pl.String(),
    "names": pl.List(pl.String),
    "node": pl.String(),
    "from": pl.String(),
    "to": pl.String(),
    "actor": pl.String(),
    "inferred": pl.Boolean(),
    "hosts": pl.List(pl.String),
    "host_times": pl.List(pl.Struct({"host": pl.String(), "ts": _TS})),
    "n_rows": pl.UInt32(),
    "sources": pl.List(pl.String),
    "note": pl.String(),
    "examples": pl.List(pl.String),
    "description": pl.String(),
}


def host_key(expr: pl.Expr) -> pl.Expr:
    """The host name for matching: lower case, first DNS label only, so that
    ``ip-10-20-1-23.ec2.internal`` and ``ip-10-20-1-23`` are one host.

    >>> pl.select(host_key(pl.lit("IP-10-20-1-23.ec2.internal"))).item()
    'ip-10-20-1-23'
    """
    return expr.str.to_lowercase().str.split(".").list.first()


def _host_key(host: str | None) -> str | None:
    return host.lower().split(".")[0] if host else None


def _norm(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "", (text or "").lower())


def names_match(name: str | None, other: str | None) -> bool:
    """Whether a change's target name and a source or component name the same program:
    one contains the other, ignoring case and punctuation (three characters at least).

    >>> names_match("ingress-nginx-controller", "ingress-nginx")
    True
    >>> names_match("coredns", "node-local-dns"), names_match("kube-proxy", "kube_proxy")
    (False, True)
    """
    a, b = _norm(name), _norm(other)
    return len(a) >= 3 and len(b) >= 3 and (a in b or b in a)


#: When rows of one change disagree on its type, the first of these wins.
TYPE_PRECEDENCE = (
    "rollback",
    "upgrade",
    "deploy",
    "reboot",
    "restart",
    "config",
    "scale",
    "create",
    "delete",
    "other",
)
_KINDS = ("pod", "deployment", "daemonset", "statefulset", "replicaset", "configmap", "secret")
_KINDS += ("service", "job", "cronjob", "node", "namespace", "ingress")
#: Target path parts that name a kind of object, not a program.
KIND_WORDS = frozenset([*(k + s for k in _KINDS for s in ("", "s")), "ingresses", "cluster", "all"])
#: Kinds of target whose change reaches the whole cluster, wherever its pods run: the
#: hosts their rows name do not bound the effect, so no cohort is compared.
CLUSTER_KINDS = KIND_WORDS - {"pod", "pods", "daemonset", "daemonsets", "node", "all"}
#: A pod's generated suffixes (ReplicaSet hash and pod suffix), removed to name its owner.
POD_SUFFIX = r"-(?:[a-z0-9]{8,10}-)?[a-z0-9]{5}$"


def change_events(frame: pl.DataFrame, *, group_gap: str | timedelta = "15m") -> pl.DataFrame:
    """The changes in the event frame, the rows of one rollout grouped into one change.

    Rows about the same program follow each other within ``group_gap`` are one change:
    the audit log's patch of a DaemonSet, the change log's line about it, and the
    per-pod events on each node as it rolls. The program is the target's name, a pod's
    generated suffixes removed (``pod/kube-system/kube-proxy-n27qd`` and
    ``daemonset/kube-system/kube-proxy`` are both ``kube-proxy``); a ``node/...`` target
    is its own program. Where the rows disagree, the type is the first in
    ``TYPE_PRECEDENCE`` (an upgrade's pods also restart), a pod's own create, delete or
    image pull counting only when nothing else names the type; the target shown is the
    owner rather than a pod. Its hosts are the hosts its rows name, each with the time the
    change reached it.

    Returns
    -------
    pl.DataFrame
        ``CHANGE_SCHEMA``: ``change_id`` (by time), ``ts`` (first row), ``last_ts``,
        ``change_type``, ``target``, ``name`` (the target's last path part), ``names``
        (every program name its rows mention), ``node`` (the host a ``node/...`` target
        names), ``from``, ``to``, ``actor``, ``inferred`` (every row inferred),
        ``hosts``, ``host_times``, ``n_rows``, ``sources``, ``note`` (the message of its
        leading row), ``examples`` (``file:line``) and a one-line ``description``.
    """
    gap = to_timedelta(group_gap)
    field = pl.col("_c").struct.field
    parsed = (
        frame.lazy()
        .filter((pl.col("kind") == "change") & pl.col("ts").is_not_null())
        .with_columns(_c=pl.col("attrs").str.json_decode(pl.Struct(CHANGE_FIELDS)))
        .with_columns(
            change_type=field("change_type").fill_null("other"),
            target=pl.coalesce(field("target"), pl.col("component"), pl.col("source")),
            actor=field("actor"),
            inferred=field("inferred").fill_null(False),
            host=pl.coalesce(pl.col("host"), field("host")),
            **{"from": field("from"), "to": field("to")},
        )
        .with_columns(
            _last=pl.col("target").str.split("/").list.last().str.to_lowercase(),
            _kind=pl.col("target").str.split("/").list.first().str.to_lowercase(),
        )
        .with_columns(
            _key=pl.when(pl.col("_kind") == "node")
            .then(pl.format("node/{}", host_key(pl.col("_last"))))
            .when(pl.col("_kind") == "pod")
            .then(pl.col("_last").str.replace(POD_SUFFIX, ""))
            .otherwise(pl.col("_last")),
            _prec=pl.col("change_type").replace_strict(
                {t: i for i, t in enumerate(TYPE_PRECEDENCE)},
                default=len(TYPE_PRECEDENCE),
                return_dtype=pl.Int32,
            ),
            _pod=pl.col("_kind") == "pod",
            _echo=(pl.col("_kind") == "pod")
            & pl.col("change_type").is_in(["deploy", "create", "delete"]),
            _depth=pl.col("target").str.count_matches("/"),
        )
        .collect()
    )
    if parsed.height == 0:
        return pl.DataFrame(schema=CHANGE_SCHEMA)
    step = pl.col("ts").diff().over("_key")
    # A pod being created, deleted or started from its image is how any change of its
    # owner looks from the node: those rows name the type only when nothing else does.
    lead = ["_echo", "_prec", "_pod", "_depth"]
    lead_desc = [False, False, False, True]
    shown = ["_pod", "_depth", "_prec"]
    shown_desc = [False, True, False]
    chosen = pl.col("change_type").sort_by(lead, descending=lead_desc).first()
    grouped = (
        parsed.sort("ts", "file", "line")
        .with_columns(_new=(step.is_null() | (step > gap)).cast(pl.UInt32))
        .with_columns(_run=pl.col("_new").cum_sum().over("_key"))
        .group_by("_key", "_run")
        .agg(
            ts=pl.col("ts").min(),
            last_ts=pl.col("ts").max(),
            change_type=chosen,
            target=pl.col("target").sort_by(shown, descending=shown_desc).first(),
            names=pl.when(pl.col("_pod"))
            .then(pl.concat_list(pl.col("_key")))
            .otherwise(pl.col("target").str.to_lowercase().str.split("/"))
            .list.explode()
            .unique()
            .sort(),
            actor=pl.col("actor").sort_by(shown, descending=shown_desc).drop_nulls().first(),
            note=pl.col("message").sort_by(shown, descending=shown_desc).drop_nulls().first(),
            inferred=pl.col("inferred").all(),
            hosts=pl.col("host").drop_nulls().unique().sort(),
            host_times=pl.struct(pl.col("host"), pl.col("ts")).filter(
                pl.col("host").is_not_null() & pl.col("host").is_first_distinct()
            ),
            n_rows=pl.len().cast(pl.UInt32),
            sources=pl.col("source").drop_nulls().unique().sort(),
            examples=pl.format("{}:{}", pl.col("file").fill_null("?"), pl.col("line")).head(5),
            **{
                c: pl.col(c)
                .sort_by(lead, descending=lead_desc)
                .filter(pl.col("change_type").sort_by(lead, descending=lead_desc) == chosen)
                .drop_nulls()
                .first()
                for c in ("from", "to")
            },
        )
        .sort("ts", "target")
        .with_columns(change_id=pl.int_range(pl.len(), dtype=pl.UInt32))
    )
    name = pl.col("target").str.split("/").list.last()
    is_node = pl.col("target").str.to_lowercase().str.starts_with("node/")
    grouped = grouped.with_columns(
        name=name,
        node=pl.when(is_node).then(name),
        names=pl.col("names").list.eval(
            pl.element().filter(~pl.element().is_in(sorted(KIND_WORDS)))
        ),
    )
    descriptions = [_describe_change(row) for row in grouped.iter_rows(named=True)]
    grouped = grouped.with_columns(description=pl.Series(descriptions, dtype=pl.String))
    return grouped.select(list(CHANGE_SCHEMA)).cast(CHANGE_SCHEMA)


def _kind(change: dict) -> str:
    target = change["target"] or ""
    return target.split("/", 1)[0].lower() if "/" in target else ""


def node_local(change: dict) -> bool:
    """Whether a change acts on the hosts its rows name only (a node, a DaemonSet rolled
    node by node, one pod) rather than on the whole cluster (a Deployment, a ConfigMap):
    only then are its hosts compared with the others.

    >>> node_local({"target": "daemonset/kube-system/kube-proxy"})
    True
    >>> node_local({"target": "deployment/kube-system/coredns"})
    False
    """
    return _kind(change) not in CLUSTER_KINDS


def _version(text: str | None) -> str:
    """An image reference shortened to its tag; other versions as they are."""
    if not text:
        return "?"
    last = text.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if "/" in text and ":" in last else text


def _describe_change(change: dict) -> str:
    text = f"{change['change_type']} {change['target']}"
    if change["from"] or change["to"]:
        text += f" {_version(change['from'])} -> {_version(change['to'])}"
    hosts = change["hosts"] or []
    if len(hosts) == 1 and hosts[0] != change["name"]:
        text += f" on {hosts[0]}"
    elif hosts:
        text += f" on {len(hosts)} hosts"
    if change["actor"]:
        text += f" by {change['actor']}"
    if change["inferred"]:
        text += " (inferred from logs)"
    return f"{change['ts']:%Y-%m-%d %H:%M} {text}"


def host_population(frame: pl.DataFrame) -> dict[str, frozenset[str]]:
    """The hosts (as :func:`host_key`) that wrote any log row, per source: who could
    have shown a signature, for comparing touched hosts with untouched ones."""
    table = (
        frame.lazy()
        .filter((pl.col("kind") == "log") & pl.col("host").is_not_null())
        .select("source", "host")
        .unique()
        .group_by("source")
        .agg(hosts=host_key(pl.col("host")).unique())
        .collect()
    )
    return {row["source"]: frozenset(row["hosts"]) for row in table.iter_rows(named=True)}


# --- targets: what the changes are scored against ----------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature of a target, with what the spikes found about it."""

    source: str
    template: str
    components: frozenset[str] = frozenset()
    first_seen_at: datetime | None = None
    precursor_start: datetime | None = None
    precursor_rows: int = 0
    precursor_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """An incident or a spike: when it began and ended, where, and which signatures."""

    target_id: int
    onset: datetime
    end: datetime
    hosts: frozenset[str]
    signatures: tuple[Signature, ...]
    sources: tuple[str, ...] = field(default=())


def _signatures(spikes: pl.DataFrame) -> tuple[Signature, ...]:
    logs = spikes.filter(~pl.col("metric").is_in(CI_METRICS))
    if logs.height == 0:
        return ()
    merged = (
        logs.sort("start")
        .group_by("source", "signature", maintain_order=True)
        .agg(
            components=pl.col("components")
            .list.explode(keep_nulls=False, empty_as_null=False)
            .drop_nulls()
            .unique(),
            first_seen_at=pl.col("first_seen_at").min(),
            precursor_start=pl.col("precursor_start").drop_nulls().first(),
            precursor_rows=pl.col("precursor_rows")
            .filter(pl.col("precursor_start").is_not_null())
            .first(),
            precursor_hosts=pl.col("precursor_hosts")
            .filter(pl.col("precursor_start").is_not_null())
            .first(),
        )
    )
    return tuple(
        Signature(
            source=row["source"],
            template=row["signature"],
            components=frozenset(row["components"] or ()),
            first_seen_at=row["first_seen_at"],
            precursor_start=row["precursor_start"],
            precursor_rows=int(row["precursor_rows"] or 0),
            precursor_hosts=tuple(row["precursor_hosts"] or ()),
        )
        for row in merged.iter_rows(named=True)
    )


def incident_targets(incidents: pl.DataFrame, spikes: pl.DataFrame) -> list[Target]:
    """One :class:`Target` per incident, from its member spikes."""
    targets = []
    for row in incidents.iter_rows(named=True):
        members = spikes.filter(pl.col("incident_id") == row["incident_id"])
        targets.append(
            Target(
                target_id=row["incident_id"],
                onset=row["onset"],
                end=row["recovery"],
                hosts=frozenset(_host_key(h) for h in row["hosts"] or ()),
                signatures=_signatures(members),
                sources=tuple(row["sources"] or ()),
            )
        )
    return targets


def spike_targets(spikes: pl.DataFrame) -> list[Target]:
    """One :class:`Target` per log spike."""
    targets = []
    logs = spikes.filter(~pl.col("metric").is_in(CI_METRICS))
    for row in logs.iter_rows(named=True):
        one = logs.filter(pl.col("spike_id") == row["spike_id"])
        targets.append(
            Target(
                target_id=row["spike_id"],
                onset=row["start"],
                end=row["end"],
                hosts=frozenset(_host_key(h) for h in row["hosts"] or ()),
                signatures=_signatures(one),
                sources=(row["source"],),
            )
        )
    return targets


# --- counting rows in windows -------------------------------------------------------------


class RowCounter:
    """Counts warning and error rows of given signatures in time windows, per host or in
    all, with two as-of lookups per window instead of a scan per window."""

    def __init__(self, frame: pl.DataFrame, signatures: set[tuple[str, str]]):
        keys = pl.DataFrame(
            list(signatures), schema={"source": pl.String, "template": pl.String}, orient="row"
        )
        rows = (
            problem_rows(frame)
            .join(keys.lazy(), on=["source", "template"], how="semi")
            .select("ts", "source", "template", hk=host_key(pl.col("host")))
            .sort("ts")
            .collect()
        )
        self.by_signature = rows.with_columns(
            idx=pl.int_range(pl.len(), dtype=pl.Int64).over("source", "template")
        ).drop("hk")
        self.by_host = rows.filter(pl.col("hk").is_not_null()).with_columns(
            idx=pl.int_range(pl.len(), dtype=pl.Int64).over("source", "template", "hk")
        )

    def count(self, queries: pl.DataFrame) -> pl.DataFrame:
        """``queries`` has ``q``, ``source``, ``template``, ``hk`` (null: all hosts),
        ``lo`` and ``hi``; returns ``q`` and ``n``, the rows with ``lo <= ts < hi``."""
        parts = []
        for has_host, table, keys in (
            (True, self.by_host, ["source", "template", "hk"]),
            (False, self.by_signature, ["source", "template"]),
        ):
            chosen = queries.filter(pl.col("hk").is_not_null() == has_host)
            if chosen.height == 0:
                continue
            upper = self._before(table, chosen, keys, "hi")
            lower = self._before(table, chosen, keys, "lo")
            parts.append(
                upper.join(lower, on="q", suffix="_lo").select("q", n=pl.col("n") - pl.col("n_lo"))
            )
        if not parts:
            return pl.DataFrame(schema={"q": pl.Int64, "n": pl.Int64})
        return pl.concat(parts)

    @staticmethod
    def _before(table: pl.DataFrame, queries: pl.DataFrame, keys: list[str], at: str):
        left = queries.select("q", *keys, at=pl.col(at)).sort("at")
        if table.height == 0:
            return left.select("q", n=pl.lit(0, pl.Int64))
        joined = left.join_asof(
            table.select("ts", *keys, "idx"),
            left_on="at",
            right_on="ts",
            by=keys,
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        return joined.select("q", n=(pl.col("idx") + 1).fill_null(0))


# --- ranking ------------------------------------------------------------------------------


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
    untouched: frozenset[str] = frozenset()
    counts: dict[str, int] = field(default_factory=dict)


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
    counter: RowCounter | None = None,
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
        The span after a change whose rate is compared with the rate before it.
    before_window
        The span before a change whose rate is the comparison. It is short, so that a
        change made while errors were already climbing is compared with where they
        stood when it was made, not an hour earlier.
    precursor_window
        How soon after a change a precursor trickle must begin to be credited to it.
    tau
        The time scale of the ``onset`` part: a change ``tau`` before the onset keeps
        ``1/e`` of it.
    min_rows
        Fewer rows than this behind a comparison shrink its part.
    keep
        Keep only the best ``keep`` changes per target (all if None).
    id_name
        The name of the target id column (``incident_id`` or ``spike_id``).
    diffs
        :func:`signature_diffs` of the changes, summarised in the evidence if given.
    population, counter
        :func:`host_population` of ``frame`` and a :class:`RowCounter` over it, to share
        between calls (made here if not given).

    Returns
    -------
    pl.DataFrame
        One row per target and candidate change: ``rank`` puts the changes that
        contributed first (highest score first), then the mitigations (lowest score
        first), then the rest (unrelated at 0, then those the evidence clears);
        the change (``change_id``, ``ts``, ``change_type``, ``target``,
        ``description``, ``inferred``), ``lead_s`` (onset minus change time, negative
        during the incident), ``when``, the relation (``name_match``, ``scope``,
        ``touched_hosts``, ``shared_hosts``, ``host_share``, ``affected``), the counts
        (``before``, ``after``, ``rate_bits``, ``untouched_hosts``, ``untouched_before``,
        ``untouched_after``, ``cohort_bits``), ``new_signatures``, the precursor
        (``precursor_signature``, ``precursor_start``, ``precursor_rows``,
        ``precursor_hosts``), the parts (``part_*``), ``score``, ``score_parts`` (the sum
        written out), ``role`` (``trigger``, ``precursor``, ``made worse``,
        ``mitigation``, ``no clear effect``, ``unrelated``), ``evidence`` (sentences) and
        ``examples`` (``file:line`` of the change's rows).
    """
    lookback_td, window_td = to_timedelta(lookback), to_timedelta(window)
    before_td = to_timedelta(before_window)
    precursor_td, tau_td = to_timedelta(precursor_window), to_timedelta(tau)
    change_rows = changes.sort("ts").to_dicts()
    population = population if population is not None else host_population(frame)
    pairs = [
        _pair(target, change, population)
        for target in targets
        for change in change_rows
        if target.onset - lookback_td <= change["ts"] <= target.end
    ]
    if not pairs:
        return _empty_contributors(id_name)
    wanted = {(s.source, s.template) for p in pairs for s in p.affected}
    if counter is None:
        counter = RowCounter(frame, wanted)
    _count_windows(pairs, counter, before=before_td, after=window_td)
    credited = _precursor_credit(pairs, precursor_td)
    diff_text = _diff_summaries(diffs)
    data_start = frame.select(pl.col("ts").min()).item()
    scored = [
        _score(
            p,
            window=window_td,
            before_window=before_td,
            tau=tau_td,
            min_rows=min_rows,
            credited=credited.get(id(p)),
            data_start=data_start,
        )
        for p in pairs
    ]
    schema = _contributor_schema("target_id")
    schema.pop("evidence")
    table = pl.DataFrame([row for row, _ in scored], schema=schema, orient="row").with_row_index(
        "_pair"
    )
    # Changes that contributed first, best first; then the mitigations, clearest first;
    # then the rest, down to those the evidence clears.
    mitigation = pl.col("role") == "mitigation"
    group = pl.when(mitigation).then(1).when(pl.col("score") > 0).then(0).otherwise(2)
    strength = pl.when(mitigation).then(-pl.col("score")).otherwise(pl.col("score"))
    table = (
        table.sort(
            [pl.col("target_id"), group, strength, "ts"],
            descending=[False, False, True, False],
            maintain_order=True,
        )
        .with_columns(rank=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).over("target_id"))
        .rename({"target_id": id_name})
    )
    if keep is not None:
        table = table.filter(pl.col("rank") <= keep)
    # the sentences, for the rows kept only
    evidence = []
    for i in table["_pair"].to_list():
        row, new = scored[i]
        p = pairs[i]
        evidence.append(
            _evidence(
                row,
                p,
                window=window_td,
                before_window=before_td,
                diff_text=diff_text.get(p.change["change_id"]),
                new=new,
            )
        )
    table = table.with_columns(evidence=pl.Series(evidence, dtype=pl.List(pl.String))).drop("_pair")
    return table.select(id_name, "rank", *[c for c in table.columns if c not in (id_name, "rank")])


def _pair(target: Target, change: dict, population: dict[str, frozenset[str]]) -> _Pair:
    node = _host_key(change["node"])
    names = [] if node else (change["names"] or [change["name"]])
    matched, matched_name = [], None
    for sig in target.signatures:
        for n in names:
            if names_match(n, sig.source) or any(names_match(n, c) for c in sig.components):
                matched.append(sig)
                matched_name = matched_name or n
                break
    named = {_host_key(ht["host"]): ht["ts"] for ht in change["host_times"] or () if ht["host"]}
    if node and not named:
        named = {node: change["ts"]}
    shared = sorted(set(named) & target.hosts)
    host_share = len(shared) / len(named) if named else None
    explicit = named if node_local(change) else {}
    relation = max(1.0 if matched else 0.0, host_share or 0.0)
    affected = matched or list(target.signatures)
    untouched: frozenset[str] = frozenset()
    if explicit:
        everyone = frozenset().union(*(population.get(s.source, frozenset()) for s in affected))
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
        untouched=untouched,
    )


def _count_windows(
    pairs: list[_Pair], counter: RowCounter, *, before: timedelta, after: timedelta
) -> None:
    """Fill each pair's ``counts``: rows of its affected signatures in the ``before``
    and ``after`` windows, on the hosts it touched (``t_``, each at its own time), in all
    (``all_``) and on its hosts at its first time (``s_``), so that untouched = all - s."""
    q, meta, records = 0, [], []

    def ask(i: int, role: str, sig: Signature, hk: str | None, lo: datetime, hi: datetime):
        nonlocal q
        records.append((q, sig.source, sig.template, hk, lo, hi))
        meta.append((q, i, role))
        q += 1

    for i, p in enumerate(pairs):
        t0 = p.change["ts"]
        for sig in p.affected:
            if p.explicit:
                for hk, th in p.explicit.items():
                    ask(i, "t_before", sig, hk, th - before, th)
                    ask(i, "t_after", sig, hk, th, th + after)
                if p.untouched:
                    for hk in p.explicit:
                        ask(i, "s_before", sig, hk, t0 - before, t0)
                        ask(i, "s_after", sig, hk, t0, t0 + after)
            if not p.explicit or p.untouched:
                ask(i, "all_before", sig, None, t0 - before, t0)
                ask(i, "all_after", sig, None, t0, t0 + after)
    if not records:
        return
    queries = pl.DataFrame(
        records,
        schema={
            "q": pl.Int64,
            "source": pl.String,
            "template": pl.String,
            "hk": pl.String,
            "lo": _TS,
            "hi": _TS,
        },
        orient="row",
    )
    counted = counter.count(queries)
    roles = pl.DataFrame(
        meta, schema={"q": pl.Int64, "i": pl.Int64, "role": pl.String}, orient="row"
    )
    totals = roles.join(counted, on="q", how="left").group_by("i", "role").agg(pl.col("n").sum())
    for i, role, n in totals.iter_rows():
        pairs[i].counts[role] = int(n or 0)


def _precursor_credit(pairs: list[_Pair], precursor_window: timedelta) -> dict[int, list]:
    """For each precursor trickle of a target, the nearest related change made before it
    (within ``precursor_window``) gets the credit."""
    best: dict[tuple[int, str, str], _Pair] = {}
    for p in pairs:
        if p.relation <= 0 or p.change["ts"] >= p.target.onset:
            continue
        for sig in p.affected:
            start = sig.precursor_start
            if start is None or not (p.change["ts"] <= start <= p.change["ts"] + precursor_window):
                continue
            key = (p.target.target_id, sig.source, sig.template)
            if key not in best or p.change["ts"] > best[key].change["ts"]:
                best[key] = p
    credited: dict[int, list] = {}
    for (_tid, source, template), p in best.items():
        sig = next(s for s in p.affected if (s.source, s.template) == (source, template))
        credited.setdefault(id(p), []).append(sig)
    return credited


def _bits(before: int, after: int, scale: float) -> float:
    """The change in rate in bits; ``scale`` is the after window over the before window,
    and one row per after window smooths both sides."""
    return math.log2((after + 1) / (before * scale + 1))


def _part(bits: float, rows: int, min_rows: int) -> float:
    return max(-1.0, min(1.0, bits / FULL_BITS)) * min(1.0, rows / (2 * min_rows))


def _score(
    p: _Pair,
    *,
    window: timedelta,
    before_window: timedelta,
    tau: timedelta,
    min_rows: int,
    credited: list[Signature] | None,
    data_start: datetime,
) -> tuple[dict, list[Signature]]:
    """The row of numbers for one target and change, and the signatures new after it."""
    change, target = p.change, p.target
    t0 = change["ts"]
    c = p.counts
    if p.explicit:
        before, after = c.get("t_before", 0), c.get("t_after", 0)
    else:
        before, after = c.get("all_before", 0), c.get("all_after", 0)
    scale = window / before_window
    rate_bits = _bits(before, after, scale)
    effect = _part(rate_bits, before + after, min_rows)
    cohort = cohort_bits = untouched_before = untouched_after = None
    if p.explicit and p.untouched:
        untouched_before = c.get("all_before", 0) - c.get("s_before", 0)
        untouched_after = c.get("all_after", 0) - c.get("s_after", 0)
        cohort_bits = rate_bits - _bits(untouched_before, untouched_after, scale)
        cohort = _part(cohort_bits, before + after + untouched_before + untouched_after, min_rows)
        if cohort > 0 and rate_bits <= 0:
            # Its hosts did not get worse; the others only got better faster.
            cohort = 0.0
    lead = target.onset - t0
    before_onset = t0 < target.onset
    far = before_onset and lead >= window
    if far:
        # The window after it ends before the incident began: what it did then belongs
        # to the precursor (credited below), not to this incident.
        effect = 0.0
        cohort = None if cohort is None else 0.0
    primary = cohort if cohort is not None else effect
    closeness = math.exp(-lead / tau) if before_onset else 0.0
    onset_part = closeness * max(primary, 0.0)
    new = [
        s
        for s in p.affected
        if s.first_seen_at is not None
        and s.first_seen_at > data_start
        and t0 <= s.first_seen_at < t0 + window
    ]
    new_part = 1.0 if new and not far else 0.0
    precursor = credited or []
    precursor_part = 1.0 if precursor else 0.0
    parts = {
        "onset": onset_part,
        "effect": None if cohort is not None else effect,
        "cohort": cohort,
        "new": new_part,
        "precursor": precursor_part,
    }
    score = WEIGHTS["relation"] * p.relation + p.relation * sum(
        WEIGHTS[k] * v for k, v in parts.items() if v is not None
    )
    role = _role(
        p,
        before_onset=before_onset,
        onset_part=onset_part,
        effect=effect,
        primary=primary,
        cohort_bits=cohort_bits,
        precursor_part=precursor_part,
        before=before * scale,
        after=after,
        min_rows=min_rows,
    )
    pre = min(precursor, key=lambda sig: sig.precursor_start) if precursor else None
    row = {
        "target_id": target.target_id,
        "change_id": change["change_id"],
        "ts": t0,
        "change_type": change["change_type"],
        "target": change["target"],
        "description": change["description"],
        "inferred": change["inferred"],
        "lead_s": lead.total_seconds(),
        "when": "before onset" if before_onset else "during",
        "relation": p.relation,
        "name_match": p.name_match,
        "scope": _scope(p),
        "touched_hosts": len(p.named),
        "shared_hosts": p.shared,
        "host_share": p.host_share,
        "affected": [s.template for s in p.affected],
        "before": before,
        "after": after,
        "rate_bits": rate_bits,
        "untouched_hosts": len(p.untouched) if p.explicit and p.untouched else None,
        "untouched_before": untouched_before,
        "untouched_after": untouched_after,
        "cohort_bits": cohort_bits,
        "new_signatures": [s.template for s in new],
        "precursor_signature": pre.template if pre else None,
        "precursor_start": pre.precursor_start if pre else None,
        "precursor_rows": pre.precursor_rows if pre else None,
        "precursor_hosts": list(pre.precursor_hosts) if pre else [],
        "part_relation": p.relation,
        "part_onset": onset_part,
        "part_effect": parts["effect"],
        "part_cohort": cohort,
        "part_new": new_part,
        "part_precursor": precursor_part,
        "score": score,
        "score_parts": _score_text(p.relation, parts, score),
        "role": role,
        "examples": list(change["examples"] or []),
    }
    return row, new


def _role(
    p: _Pair,
    *,
    before_onset: bool,
    onset_part: float,
    effect: float,
    primary: float,
    cohort_bits: float | None,
    precursor_part: float,
    before: float,
    after: int,
    min_rows: int,
) -> str:
    """The label of a change. ``before`` is scaled to the after window. A mitigation is
    a change after which the errors on its own hosts stopped (``STOPPED``); made worse
    needs the rise to hold against the untouched hosts too, when there are any."""
    if p.relation <= 0:
        return "unrelated"
    if before_onset:
        if precursor_part:
            return "precursor"
        if onset_part >= 0.25:
            return "trigger"
        return "no clear effect"
    if primary >= 1 / 3 and after - before >= min_rows:
        return "made worse"
    if before >= min_rows and after <= before * STOPPED:
        return "mitigation"
    return "no clear effect"


def _scope(p: _Pair) -> str:
    if p.change["node"] and len(p.explicit) == 1:
        return "node"
    if p.explicit:
        return "hosts"
    if p.name_match:
        return "component"
    return "none"


def _score_text(relation: float, parts: dict[str, float | None], score: float) -> str:
    terms = [f"{WEIGHTS['relation']:g}x{relation:.2f} relation"]
    inner = [f"{WEIGHTS[k]:g}x{v:+.2f} {k}" for k, v in parts.items() if v is not None and v]
    if inner:
        terms.append(f"{relation:.2f}x({' '.join(inner)})")
    return f"{' + '.join(terms)} = {score:.2f}"


def _factor(before: int, after: int, scale: float) -> str:
    """How the rate moved, in words: ``rate x165``, ``rate /4.0``, ``from none``."""
    if before == 0 and after == 0:
        return "none either side"
    if before == 0:
        return "from none"
    if after == 0:
        return "to none"
    ratio = after / (before * scale)
    if 0.8 <= ratio <= 1.25:
        return "rate about the same"
    return f"rate x{ratio:.1f}" if ratio >= 1 else f"rate /{1 / ratio:.1f}"


def _names(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(f"'{_short(i)}'" for i in items[:limit])
    more = len(items) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _short(text: str, limit: int = 60) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _evidence(
    row: dict,
    p: _Pair,
    *,
    window: timedelta,
    before_window: timedelta,
    diff_text: str | None,
    new: list[Signature],
) -> list[str]:
    target, change = p.target, p.change
    w = duration_text(window.total_seconds())
    wb = duration_text(before_window.total_seconds())
    scale = window / before_window
    lead = row["lead_s"]
    said = []
    if row["when"] == "before onset":
        said.append(f"made {duration_text(lead)} before the onset ({target.onset:%m-%d %H:%M})")
    else:
        said.append(f"made during the incident, {duration_text(-lead)} after the onset")
    name = change["node"] or change["name"]
    if p.relation <= 0:
        why = f"unrelated: '{name}' is not a source or component of the errors"
        if p.named:
            why += f", and none of the {len(p.named)} host(s) it touched show them"
        else:
            why += ", and it names no host"
        said.append(why)
        if diff_text:
            said.append(diff_text)
        return said
    if p.name_match:
        said.append(
            f"its target '{p.matched_name}' is the source or component of {_names(row['affected'])}"
        )
    if p.named:
        hosts = ", ".join(p.shared[:3]) + (" ..." if len(p.shared) > 3 else "")
        said.append(
            f"it touched {len(p.named)} host(s), {len(p.shared)} of them with the errors"
            + (f" ({hosts})" if p.shared else "")
            + (
                ""
                if p.explicit
                else f"; a {_kind(change)} reaches every host, so all hosts are compared"
            )
        )
    where = "on the hosts it touched" if p.explicit else "on all hosts"
    said.append(
        f"{where}, {_names(row['affected'], 2)}: {row['before']:,} rows in the {wb} before, "
        f"{row['after']:,} in the {w} after ({_factor(row['before'], row['after'], scale)})"
    )
    if row["cohort_bits"] is not None:
        ub, ua = row["untouched_before"], row["untouched_after"]
        bits = row["cohort_bits"]
        verdict = (
            "the touched hosts got worse than the others"
            if bits >= 1
            else "the touched hosts got better than the others"
            if bits <= -1
            else "touched and untouched hosts moved alike, so the change does not explain it"
        )
        said.append(
            f"cohort: {row['before']:,} -> {row['after']:,} rows on the {len(p.explicit)} "
            f"touched host(s) ({_factor(row['before'], row['after'], scale)}) against "
            f"{ub:,} -> {ua:,} on the {row['untouched_hosts']} untouched "
            f"({_factor(ub, ua, scale)}): {verdict} ({bits:+.1f} bits)"
        )
    for sig in new:
        said.append(
            f"'{_short(sig.template)}' was seen for the first time "
            f"{duration_text((sig.first_seen_at - change['ts']).total_seconds())} after it"
        )
    if row["precursor_start"] is not None:
        hosts = row["precursor_hosts"]
        said.append(
            f"precursor: a trickle of '{_short(row['precursor_signature'])}' began "
            f"{duration_text((row['precursor_start'] - change['ts']).total_seconds())} after it "
            f"({row['precursor_start']:%m-%d %H:%M}) on {len(hosts)} host(s), "
            f"{duration_text((target.onset - row['precursor_start']).total_seconds())} before the "
            f"onset; {row['precursor_rows']:,} rows before the spike"
        )
    said.append(_role_sentence(row, target))
    if diff_text:
        said.append(diff_text)
    return said


def _role_sentence(row: dict, target: Target) -> str:
    role = row["role"]
    if role == "trigger":
        return (
            f"likely trigger: the incident began {duration_text(row['lead_s'])} after it, "
            "and its errors rose right after it"
        )
    if role == "precursor":
        return "precursor: the trickle that grew into the incident started after it"
    if role == "made worse":
        return "made it worse: the errors rose after it"
    if role == "mitigation":
        return "mitigation: the errors on its hosts stopped after it"
    return "no clear effect on the incident's errors"


def _diff_summaries(diffs: pl.DataFrame | None) -> dict[int, str]:
    if diffs is None or diffs.height == 0:
        return {}
    out = {}
    counts = diffs.group_by("change_id", "status").agg(
        n=pl.len(), first=pl.col("template").sort_by("after", descending=True).first()
    )
    for change_id, group in counts.group_by("change_id"):
        by_status = {r["status"]: r for r in group.iter_rows(named=True)}
        bits = []
        for status in ("new", "vanished", "risen", "fallen"):
            if status in by_status:
                r = by_status[status]
                bits.append(f"{r['n']} {status} (e.g. '{_short(r['first'], 40)}')")
        out[change_id[0]] = "signatures around it: " + "; ".join(bits)
    return out


def _contributor_schema(id_name: str) -> dict[str, pl.DataType]:
    return {
        id_name: pl.UInt32(),
        "change_id": pl.UInt32(),
        "ts": _TS,
        "change_type": pl.String(),
        "target": pl.String(),
        "description": pl.String(),
        "inferred": pl.Boolean(),
        "lead_s": pl.Float64(),
        "when": pl.String(),
        "relation": pl.Float64(),
        "name_match": pl.Boolean(),
        "scope": pl.String(),
        "touched_hosts": pl.UInt32(),
        "shared_hosts": pl.List(pl.String),
        "host_share": pl.Float64(),
        "affected": pl.List(pl.String),
        "before": pl.Int64(),
        "after": pl.Int64(),
        "rate_bits": pl.Float64(),
        "untouched_hosts": pl.UInt32(),
        "untouched_before": pl.Int64(),
        "untouched_after": pl.Int64(),
        "cohort_bits": pl.Float64(),
        "new_signatures": pl.List(pl.String),
        "precursor_signature": pl.String(),
        "precursor_start": _TS,
        "precursor_rows": pl.UInt32(),
        "precursor_hosts": pl.List(pl.String),
        "part_relation": pl.Float64(),
        "part_onset": pl.Float64(),
        "part_effect": pl.Float64(),
        "part_cohort": pl.Float64(),
        "part_new": pl.Float64(),
        "part_precursor": pl.Float64(),
        "score": pl.Float64(),
        "score_parts": pl.String(),
        "role": pl.String(),
        "examples": pl.List(pl.String),
        "evidence": pl.List(pl.String),
    }


def _empty_contributors(id_name: str) -> pl.DataFrame:
    schema = _contributor_schema(id_name)
    return pl.DataFrame(schema={id_name: schema.pop(id_name), "rank": pl.UInt32, **schema})


# --- before/after signature diff per change -----------------------------------------------

DIFF_SCHEMA: dict[str, pl.DataType] = {
    "change_id": pl.UInt32(),
    "source": pl.String(),
    "template": pl.String(),
    "before": pl.UInt32(),
    "after": pl.UInt32(),
    "status": pl.String(),
    "first_seen_at": _TS,
}


def signature_diffs(
    frame: pl.DataFrame,
    changes: pl.DataFrame,
    *,
    window: str | timedelta = "1h",
    min_rows: int = 3,
) -> pl.DataFrame:
    """For each change, the warning and error signatures that changed around it.

    The rows counted are those in the change's scope: on the hosts it names, else from
    the sources and components its target names, else everywhere. A signature is
    ``new`` when it had never been seen before the change and appears in the ``window``
    after it, ``vanished`` when it was there in the ``window`` before and is gone after,
    ``risen`` or ``fallen`` when its count at least doubled or halved (by ``min_rows``
    rows or more). Unchanged signatures are left out.

    Returns
    -------
    pl.DataFrame
        ``DIFF_SCHEMA``: ``change_id``, ``source``, ``template``, ``before``, ``after``,
        ``status``, ``first_seen_at``.
    """
    window_td = to_timedelta(window)
    rows = (
        problem_rows(frame)
        .select("ts", "source", "component", "template", hk=host_key(pl.col("host")))
        .sort("ts")
        .collect()
    )
    if rows.height == 0 or changes.height == 0:
        return pl.DataFrame(schema=DIFF_SCHEMA)
    first_seen = rows.group_by("source", "template").agg(first_seen_at=pl.col("ts").min())
    programs = rows.select("source", "component").unique()
    times = rows["ts"]
    found = []
    for change in changes.iter_rows(named=True):
        t0 = change["ts"]
        lo = times.search_sorted(t0 - window_td, side="left")
        hi = times.search_sorted(t0 + window_td, side="left")
        part = rows.slice(lo, hi - lo)
        explicit = set()
        if node_local(change):
            explicit = {_host_key(h) for h in change["hosts"] or ()}
        if change["node"]:
            explicit.add(_host_key(change["node"]))
        if explicit:
            part = part.filter(pl.col("hk").is_in(sorted(explicit)))
        else:
            named = programs.filter(
                pl.Series(
                    [
                        names_match(change["name"], s) or names_match(change["name"], c)
                        for s, c in programs.iter_rows()
                    ],
                    dtype=pl.Boolean,
                )
            )
            if named.height:
                part = part.join(named, on=["source", "component"], how="semi", nulls_equal=True)
        if part.height == 0:
            continue
        found.append(
            part.group_by("source", "template")
            .agg(
                before=(pl.col("ts") < t0).sum().cast(pl.UInt32),
                after=(pl.col("ts") >= t0).sum().cast(pl.UInt32),
            )
            .with_columns(change_id=pl.lit(change["change_id"], pl.UInt32), _t0=pl.lit(t0, _TS))
        )
    if not found:
        return pl.DataFrame(schema=DIFF_SCHEMA)
    before, after = pl.col("before").cast(pl.Int64), pl.col("after").cast(pl.Int64)
    moved = (after - before).abs() >= min_rows
    status = (
        pl.when((before == 0) & (after > 0) & (pl.col("first_seen_at") >= pl.col("_t0")))
        .then(pl.lit("new"))
        .when((before > 0) & (after == 0) & (before >= min_rows))
        .then(pl.lit("vanished"))
        .when(moved & (after >= 2 * before))
        .then(pl.lit("risen"))
        .when(moved & (2 * after <= before))
        .then(pl.lit("fallen"))
    )
    return (
        pl.concat(found)
        .join(first_seen, on=["source", "template"], how="left")
        .with_columns(status=status)
        .filter(pl.col("status").is_not_null())
        .sort("change_id", "status", "after", descending=[False, False, True])
        .select(list(DIFF_SCHEMA))
        .cast(DIFF_SCHEMA)
    )
