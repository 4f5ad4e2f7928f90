"""What the changes are scored against: incidents and spikes as :class:`Target`, and the
hosts that could have shown each source's errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from parsers.layouts import hints_from_path
from parsers.routing import NAMESPACE_KEY
from timeline.analysis.contributors.changes import _host_key, host_key
from timeline.analysis.incidents import CI_METRICS
from timeline.reading.pods import node_of_host, pod_nodes


def host_population(
    frame: pl.DataFrame, *, pods: pl.DataFrame | None = None
) -> dict[str, frozenset[str]]:
    """The hosts (as :func:`host_key`, a pod read as its node where ``pods`` knows it)
    that wrote any log row, and the executors that ran any CI job, per source, and per
    component (``component:<name>``: the hosts a program runs on, where a source such as
    ``journald`` holds many): who could have shown a signature, for comparing touched
    hosts with untouched ones."""
    pods = pods if pods is not None else pod_nodes(frame)
    executor = pl.col("attrs").str.json_path_match("$.executor").fill_null("unknown")
    where = pl.when(pl.col("kind") == "job").then(executor).otherwise(pl.col("host"))
    seen = (
        frame.lazy()
        .filter(pl.col("kind").is_in(["log", "job"]))
        .select("source", "component", host=where)
        .filter(pl.col("host").is_not_null())
        .unique()
        .collect()
        .with_columns(host=host_key(node_of_host(pl.col("host"), pods)))
    )
    return _per_source_and_component(seen, "host")


def _per_source_and_component(seen: pl.DataFrame, column: str) -> dict[str, frozenset[str]]:
    """The values of ``column`` each source's rows of ``seen`` hold, and each component's
    (``component:<name>``)."""
    by_source = seen.group_by("source").agg(pl.col(column).unique())
    by_component = seen.drop_nulls("component").group_by("component").agg(pl.col(column).unique())
    return {r["source"]: frozenset(r[column]) for r in by_source.iter_rows(named=True)} | {
        f"component:{r['component']}": frozenset(r[column])
        for r in by_component.iter_rows(named=True)
    }


def program_namespaces(frame: pl.DataFrame | pl.LazyFrame) -> dict[str, frozenset[str]]:
    """The namespaces whose pods wrote each source's log rows, and each component's
    (``component:<name>``): what a change to a whole namespace (a NetworkPolicy, a quota)
    could have reached.

    A row's namespace is the one its collector's record states (Fluent Bit's
    ``kubernetes.namespace_name``, a Loki ``namespace`` label, Cloud Logging's
    ``resource.labels.namespace_name``...: ``attrs``' first key,
    :data:`parsers.routing.NAMESPACE_KEY`), else the one its file's path says (a
    kubelet's pod folder, a ``kubectl logs`` dump named ``<namespace>_<pod>.log``). Where
    both say one and they differ, the record's wins: it was written beside the line, and
    a file may hold several pods' records. The stated namespace is read from the start
    of ``attrs`` with a regex, no JSON decoded; the rows are brought to their distinct
    (file, source, component, namespace) first, and each path is read once."""
    stated = stated_namespace(pl.col("attrs"))
    seen = (
        frame.lazy()
        .filter(pl.col("kind") == "log")
        .select(pl.col("file").cast(pl.String), "source", "component", stated=stated)
        .unique()
        .collect()
    )
    files = seen.filter(pl.col("stated").is_null())["file"].drop_nulls().unique().to_list()
    from_path = {f: hints_from_path(f).namespace for f in files}
    by_path = pl.col("file").replace_strict(from_path, default=None, return_dtype=pl.String)
    seen = seen.with_columns(namespace=pl.coalesce("stated", by_path)).drop_nulls("namespace")
    return _per_source_and_component(seen, "namespace")


#: The namespace a row's collector stated, at the start of its ``attrs``.
_STATED_NAMESPACE = rf'^\{{"{NAMESPACE_KEY}":"([^"\\]+)"'


def stated_namespace(attrs: pl.Expr) -> pl.Expr:
    """The namespace of the pod that wrote each row, as its collector's record stated it
    (the first key of ``attrs``, :data:`parsers.routing.NAMESPACE_KEY`), else null; a
    regex at the start of the text, no JSON decoded.

    >>> pl.select(stated_namespace(pl.Series(['{"pod_namespace":"shop","pid":"7"}',
    ...     '{"namespace":"shop"}']))).to_series().to_list()
    ['shop', None]
    """
    return attrs.str.extract(_STATED_NAMESPACE, 1)


def namespace_attrs(namespace: pl.Expr | str) -> pl.Expr:
    """``attrs`` that hold only a stated ``namespace`` (``{}`` where it is null), as
    :func:`stated_namespace` reads them: what the analysis keeps of a log row's ``attrs``.

    >>> pl.select(namespace_attrs(pl.Series(["shop", None]))).to_series().to_list()
    ['{"pod_namespace":"shop"}', '{}']
    """
    namespace = pl.col(namespace) if isinstance(namespace, str) else namespace
    return pl.format(f'{{{{"{NAMESPACE_KEY}":"{{}}"}}}}', namespace).fill_null("{}")


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
    #: The CI executors whose jobs this signature counts (``<executor> jobs``).
    executors: frozenset[str] = frozenset()
    #: A CI series whose spikes are all of failed jobs: a change is judged by the share of
    #: its jobs that failed, not by their count.
    failing_share: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """``(source, template)``, as the row counter keys its rows."""
        return (self.source, self.template)


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
    """The log signatures of some spikes, then their CI series (``<executor> jobs``)."""
    is_ci = pl.col("metric").is_in(CI_METRICS)
    ci = (
        spikes.filter(is_ci)
        .sort("start")
        .with_columns(
            _failing=(pl.col("metric") == "failed_jobs").all().over("source", "signature")
        )
        .unique(["source", "signature"], maintain_order=True)
    )
    # a series is named after its executor (``<executor> jobs``); its hosts are the nodes
    # its runners are known to have run on, if any, never executors
    jobs = tuple(
        Signature(
            source=r["source"],
            template=r["signature"],
            executors=frozenset([r["signature"].removesuffix(" jobs")]),
            failing_share=r["_failing"],
        )
        for r in ci.iter_rows(named=True)
    )
    logs = spikes.filter(~is_ci)
    if logs.height == 0:
        return jobs
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
    return (
        tuple(
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
        + jobs
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
                # an incident still going when the logs end lasts at least until then
                end=row["recovery"] if row["recovery"] is not None else row.get("logs_end"),
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
