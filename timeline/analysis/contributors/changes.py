"""Changes in the event frame: the rows of one action grouped into one change, with its
hosts and when it reached each.
"""

from __future__ import annotations

import re
from datetime import timedelta

import polars as pl

from parsers.changes_common import POOL_LABELS
from parsers.k8s_audit import WATCHED_GROUPS
from timeline.analysis.rates import SERIES_SCHEMA, to_timedelta
from timeline.reading.pods import host_key, node_of_host, pod_nodes
from timeline.reading.pods import host_key_of as _host_key

_TS = SERIES_SCHEMA["bucket"]

CHANGE_FIELDS: dict[str, pl.DataType] = {
    "change_type": pl.String(),
    "target": pl.String(),
    "from": pl.String(),
    "to": pl.String(),
    "actor": pl.String(),
    "inferred": pl.Boolean(),
    "host": pl.String(),
    "witness_hosts": pl.List(pl.Struct({"host": pl.String(), "ts": pl.String()})),
    #: where a change log's entry is written, where its row's span begins above it
    "entry_line": pl.UInt32(),
    #: what an audit record says of the request and of the Helm release it belongs to
    "verb": pl.String(),
    "user_agent": pl.String(),
    "by_helm": pl.Boolean(),
    "helm_release": pl.String(),
    "helm_revision": pl.Int64(),
    "helm_status": pl.String(),
    #: ``file:line`` of the same record read from other files too, left out there
    "also_in": pl.List(pl.String()),
    #: when a change that lasts ended: a host's silence, at its next line
    "until": pl.String(),
}

#: A Helm release a change belongs to: its namespace and name, its revision and what was
#: done to it (``install``, ``upgrade``, ``rollback``, ``uninstall``; null when no record
#: of the release was logged).
HELM_SCHEMA = pl.Struct(
    {
        "namespace": pl.String(),
        "release": pl.String(),
        "revision": pl.Int64(),
        "action": pl.String(),
    }
)
#: One object a change made of several wrote: its target, the change it made and the
#: ``file:line`` of its first row.
PART_SCHEMA = pl.Struct({"target": pl.String(), "change_type": pl.String(), "example": pl.String()})

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
    "automated": pl.Boolean(),
    "executors": pl.List(pl.String),
    "found": pl.String(),
    "helm": HELM_SCHEMA,
    "parts": pl.List(PART_SCHEMA),
}

#: Actors that are programs, not people: controllers, the kubelet, service accounts,
#: GitOps agents, EKS's own identities (``eks:node-manager`` cordoning a managed node
#: group's nodes). A change led by one of them alone is ``automated``.
AUTOMATED_ACTOR = (
    r"(?i)^system:|^eks:|controller|kubelet|scheduler|operator|argocd|argo-cd|flux|"
    r"serviceaccount|autoscaler|^cronjob|^helm-"
)
#: A ConfigMap's usual suffixes, removed so that ``coredns-config`` and the ``coredns``
#: that reloads it are one change.
CONFIG_SUFFIX = r"-(?:config|conf|cfg|cm|configmap|settings)$"
#: The longest one change can last; a longer chain of rows is split at this span.
MAX_SPAN = timedelta(hours=2)
#: A ReplicaSet's pod-template hash, removed so that it joins its Deployment.
REPLICASET_SUFFIX = r"-[a-z0-9]{8,10}$"


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


#: Words of a CI runner pool's name that say it runs jobs, not which jobs it takes.
RUNNER_WORDS = frozenset(
    ["runner", "runners", "agent", "agents", "actions", "arc", "set", "scale", "ci"]
    + ["gitlab", "github", "circleci", "buildkite", "self", "hosted", "controller"]
)


def names_executor(name: str | None, executor: str) -> bool:
    """Whether a change's target name is a CI runner pool that takes the jobs of
    ``executor`` (tags or labels joined by commas; a resource class ``namespace/name``):
    one of its labels is the name without the words that say it runs jobs, or a label
    of several words runs through the name. A pool's Deployment or scale set is named
    after the label its jobs ask for; a single generic label (``docker``) is not in
    ``docker-registry``.

    >>> names_executor("gitlab-runner-k8s-large", "k8s-large")
    True
    >>> names_executor("gpu-runners", "gpu"), names_executor("docker-registry", "docker")
    (True, False)
    """
    words = re.findall(r"[a-z0-9]+", (name or "").lower())
    own = [w for w in words if w not in RUNNER_WORDS]
    for label in executor.lower().split(","):
        label_words = re.findall(r"[a-z0-9]+", label.rsplit("/", 1)[-1])
        if not label_words or not own:
            continue
        if label_words == own:
            return True
        n = len(label_words)
        if n >= 2 and any(words[i : i + n] == label_words for i in range(len(words) - n + 1)):
            return True
    return False


#: When rows of one change disagree on its type, the first of these wins.
TYPE_PRECEDENCE = (
    "rollback",
    "upgrade",
    "deploy",
    "silence",
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
#: The objects around the workloads the audit log's changes name (a NetworkPolicy, a
#: webhook, a role), singular and plural: ``gateway/shop/main`` names no ``auth-gateway``.
_WATCHED_WORDS = [w for group in WATCHED_GROUPS.values() for item in group.items() for w in item]
#: Kinds of target that are a group of nodes: a change to one reaches its nodes.
POOL_KINDS = ("nodepool", "node-pool", "nodegroup", "node-group", "agentpool", "agent-pool")
#: Target path parts that name a kind of object, not a program.
KIND_WORDS = frozenset(
    [
        *(k + s for k in (*_KINDS, *POOL_KINDS) for s in ("", "s")),
        *_WATCHED_WORDS,
        *("ingresses", "cluster", "all"),
    ]
)
#: Kinds of target whose change reaches the whole cluster, wherever its pods run: the
#: hosts their rows name do not bound the effect, so no cohort is compared.
CLUSTER_KINDS = KIND_WORDS - {
    "pod",
    "pods",
    "daemonset",
    "daemonsets",
    "node",
    "all",
    *(k + s for k in POOL_KINDS for s in ("", "s")),
}
#: Kinds of target that act on every pod of their namespace, whatever its program: a
#: change to one reaches the programs whose pods run there.
NAMESPACE_KINDS = frozenset(
    (  # noqa: SIM905
        "networkpolicy ciliumnetworkpolicy resourcequota limitrange role rolebinding "
        "peerauthentication authorizationpolicy"
    ).split()
)
#: A pod's generated suffixes (ReplicaSet hash and pod suffix), removed to name its owner.
POD_SUFFIX = r"-(?:[a-z0-9]{8,10}-)?[a-z0-9]{5}$"


def _split_at_first_person(rows: pl.DataFrame) -> pl.DataFrame:
    """Start a new run at the first row of a run made by a person, when programs' rows
    came before it: a person's deploy must not be taken for the tail of a chain of
    routine syncs. What follows it (controllers, the change-log line) stays with it. A Helm
    operation run by a program (a CI pipeline's account) is one action with what tells of
    it: the team's line about it is no new run."""
    person = ~pl.col("_auto") & pl.col("_op").is_null()
    earlier = person.cast(pl.Int32).cum_sum().shift(1).over("_key", "_run").fill_null(0)
    first_person = person & (earlier == 0) & (pl.int_range(pl.len()).over("_key", "_run") > 0)
    return rows.with_columns(
        _run=pl.col("_run").cast(pl.UInt64) * 2
        + first_person.cast(pl.UInt64).cum_sum().over("_key", "_run")
    )


def _split_long_runs(rows: pl.DataFrame, *, longest: timedelta) -> pl.DataFrame:
    """Start a new run where one has lasted ``longest``: routine actions on one program
    every few minutes (a GitOps sync, a controller's pods) would otherwise chain into one
    change that lasts all day."""
    first = pl.col("ts").min().over("_key", "_run")
    part = ((pl.col("ts") - first) / longest).floor().cast(pl.UInt32)
    return rows.with_columns(_run=pl.col("_run").cast(pl.UInt64) * 1_000_000 + part)


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
    owner rather than a pod. Its hosts are the hosts its rows name (a pod as its node,
    where known), each with the time the change reached it. The writes of one Helm
    install, upgrade, rollback or uninstall (:func:`helm_operations`) are one change
    whatever objects they name, with what tells of them; its type is its strongest
    part's, and it is shown as its workload rather than as Helm's record of the release.

    Returns
    -------
    pl.DataFrame
        ``CHANGE_SCHEMA``: ``change_id`` (by time), ``ts`` (first row), ``last_ts``,
        ``change_type``, ``target``, ``name`` (the target's last path part), ``names``
        (every program name its rows mention), ``node`` (the host a ``node/...`` target
        names), ``from``, ``to``, ``actor``, ``inferred`` (every row inferred),
        ``hosts``, ``host_times``, ``n_rows``, ``sources``, ``note`` (the message of its
        leading row), ``examples`` (``file:line``; one of each part of a Helm release's
        change first, then where else the same record was read), a one-line
        ``description``, and for a Helm release's change ``helm`` (:data:`HELM_SCHEMA`) and
        ``parts`` (:data:`PART_SCHEMA`, each object it wrote).
    """
    gap = to_timedelta(group_gap)
    field = pl.col("_c").struct.field
    pods = pod_nodes(frame)
    parsed = (
        frame.lazy()
        .filter((pl.col("kind") == "change") & pl.col("ts").is_not_null())
        .with_columns(_c=pl.col("attrs").str.json_decode(pl.Struct(CHANGE_FIELDS)))
        .with_columns(
            change_type=field("change_type").fill_null("other"),
            target=pl.coalesce(field("target"), pl.col("component"), pl.col("source")),
            actor=field("actor"),
            inferred=field("inferred").fill_null(False),
            host=node_of_host(pl.coalesce(pl.col("host"), field("host")), pods),
            _witness=field("witness_hosts"),
            _entry_line=field("entry_line"),
            _agent=field("user_agent"),
            _verb=field("verb"),
            _by_helm=field("by_helm").fill_null(False),
            _release=field("helm_release"),
            _revision=field("helm_revision"),
            _status=field("helm_status"),
            _also_in=field("also_in"),
            _until=field("until")
            .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", strict=False)
            .dt.convert_time_zone("UTC")
            .cast(_TS),
            **{"from": field("from"), "to": field("to")},
        )
        .with_columns(
            _last=pl.col("target").str.split("/").list.last().str.to_lowercase(),
            _kind=pl.col("target").str.split("/").list.first().str.to_lowercase(),
        )
        .with_columns(
            # a host's silence is an episode of its own: its coming back folds into it
            # (:func:`fold_cascades`), what was done to the node before it does not
            _key=pl.when(pl.col("change_type") == "silence")
            .then(pl.format("silence/{}", host_key(pl.col("_last"))))
            .when(pl.col("_kind") == "node")
            .then(pl.format("node/{}", host_key(pl.col("_last"))))
            .when(pl.col("_kind") == "pod")
            .then(pl.col("_last").str.replace(POD_SUFFIX, ""))
            .when(pl.col("_kind").is_in(["replicaset", "replicasets"]))
            .then(pl.col("_last").str.replace(REPLICASET_SUFFIX, ""))
            .when(
                pl.col("_kind").is_in(["configmap", "configmaps"])
                # a change log's "config ledger-api-config" is the ConfigMap's own change
                | (~pl.col("target").str.contains("/") & (pl.col("change_type") == "config"))
            )
            .then(pl.col("_last").str.replace(CONFIG_SUFFIX, ""))
            .otherwise(pl.col("_last")),
            _auto=pl.col("actor").fill_null("").str.contains(AUTOMATED_ACTOR)
            | pl.col("actor").is_null(),
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
    parsed = helm_operations(parsed, gap=gap).with_columns(
        _key=pl.coalesce("_op", "_key"),
        _record=pl.col("_part") & pl.col("_revision").is_not_null(),
    )
    step = pl.col("ts").diff().over("_key")
    # A pod being created, deleted or started from its image is how any change of its
    # owner looks from the node: those rows name the type only when nothing else does.
    lead = ["_echo", "_prec", "_pod", "_depth"]
    lead_desc = [False, False, False, True]
    # Helm's record of a release is shown only when the release changed nothing else
    shown = ["_record", "_pod", "_depth", "_prec"]
    shown_desc = [False, False, True, False]
    chosen = pl.col("change_type").sort_by(lead, descending=lead_desc).first()
    example = pl.format("{}:{}", pl.col("file").fill_null("?"), pl.coalesce("_entry_line", "line"))
    # every part of a Helm release's change keeps its evidence, the first row of each first
    n_examples = pl.max_horizontal(pl.lit(5), pl.col("_first_part").sum().clip(upper_bound=12))
    grouped = (
        parsed.sort("ts", "file", "line")
        .with_row_index("_n")
        .with_columns(
            _first_part=pl.col("_part") & pl.col("target").is_first_distinct().over("_op")
        )
        .with_columns(_new=(step.is_null() | (step > gap)).cast(pl.UInt32))
        .with_columns(_run=pl.col("_new").cum_sum().over("_key"))
        .pipe(_split_at_first_person)
        .pipe(_split_long_runs, longest=MAX_SPAN)
        .group_by("_key", "_run")
        .agg(
            ts=pl.col("ts").min(),
            last_ts=pl.max_horizontal(pl.col("ts").max(), pl.col("_until").max()),
            change_type=chosen,
            target=pl.col("target").sort_by(shown, descending=shown_desc).first(),
            names=pl.when(pl.col("_pod"))
            .then(pl.concat_list(pl.col("_last").str.replace(POD_SUFFIX, "")))
            .when(pl.col("_record"))
            .then(pl.concat_list(pl.col("_release").str.to_lowercase()))
            .otherwise(pl.col("target").str.to_lowercase().str.split("/"))
            .list.explode()
            .unique()
            .sort(),
            actor=pl.col("actor")
            .sort_by(["_auto", *shown], descending=[False, *shown_desc])
            .drop_nulls()
            .first(),
            automated=pl.col("_auto").all(),
            # what people wrote of it (a change log's description) before what a
            # program logged of it
            note=pl.col("message")
            .sort_by([pl.col("source") != "changelog", *shown], descending=[False, *shown_desc])
            .drop_nulls()
            .first(),
            inferred=pl.col("inferred").all(),
            hosts=pl.col("host").drop_nulls().unique().sort(),
            host_times=pl.struct(pl.col("host"), pl.col("ts")).filter(
                pl.col("host").is_not_null() & pl.col("host").is_first_distinct()
            ),
            _witness=pl.col("_witness").drop_nulls().list.explode(),
            n_rows=pl.len().cast(pl.UInt32),
            sources=pl.col("source").drop_nulls().unique().sort(),
            # each row where it was read (the first of each Helm part first), then where
            # else the same record was read
            examples=pl.concat_list(
                example.sort_by(pl.col("_first_part").not_(), "_n"),
                pl.col("_also_in")
                .sort_by(pl.col("_first_part").not_(), "_n")
                .fill_null(pl.lit([], pl.List(pl.String))),
            )
            .explode()
            .head(n_examples),
            helm=helm_release_of_rows(),
            parts=pl.struct(target="target", change_type="change_type", example=example).filter(
                "_first_part"
            ),
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
        .with_columns(
            change_id=pl.int_range(pl.len(), dtype=pl.UInt32),
            parts=pl.when(pl.col("helm").is_not_null()).then("parts"),
        )
        .pipe(_with_witness_hosts, pods)
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
    grouped = fold_cascades(read_pool_targets(read_word_targets(grouped, frame), frame), gap=gap)
    descriptions = [_describe_change(row) for row in grouped.iter_rows(named=True)]
    grouped = grouped.with_columns(description=pl.Series(descriptions, dtype=pl.String))
    return grouped.select(list(CHANGE_SCHEMA)).cast(CHANGE_SCHEMA)


def _with_witness_hosts(grouped: pl.DataFrame, pods: pl.DataFrame) -> pl.DataFrame:
    """A change to a Kubernetes object whose rows name no host takes the hosts its log
    witnesses showed it on (``witness_hosts``, :func:`timeline.reading.changes.reconcile`),
    a pod as its node, each with the time it showed there: the DaemonSet patch recorded in
    the audit log reached the nodes whose kube-proxy restarted after it."""
    witnessed = (
        grouped.select("change_id", "_witness")
        .explode("_witness")
        .drop_nulls("_witness")
        .select(
            "change_id",
            host=node_of_host(pl.col("_witness").struct.field("host"), pods),
            ts=pl.col("_witness")
            .struct.field("ts")
            .str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
            .cast(_TS),
        )
        .drop_nulls()
        .sort("ts")
        .unique(["change_id", "host"], keep="first", maintain_order=True)
        .group_by("change_id")
        .agg(_times=pl.struct("host", "ts"), _hosts=pl.col("host").unique().sort())
    )
    # only a Kubernetes object's kind says what its witnesses' hosts are: all a node pool's
    # DaemonSet reached, or where a Deployment's or ConfigMap's pods run (shown, not
    # compared); a "rabbitmq/cluster" restart goes on to hosts its first witnesses miss
    kind = pl.col("target").str.split("/").list.first().str.to_lowercase()
    none = (
        (pl.col("hosts").list.len() == 0)
        & pl.col("target").str.contains("/")
        & kind.is_in(sorted(KIND_WORDS))
    )
    return (
        grouped.join(witnessed, on="change_id", how="left")
        .with_columns(
            hosts=pl.when(none & pl.col("_hosts").is_not_null()).then("_hosts").otherwise("hosts"),
            host_times=pl.when(none & pl.col("_times").is_not_null())
            .then("_times")
            .otherwise("host_times"),
            _witnessed=none & pl.col("_hosts").is_not_null(),
        )
        .drop("_witness", "_times", "_hosts")
    )


# --- Helm releases: the parts of one helm upgrade ------------------------------------------

#: How long before the first record of a Helm operation, or after its last, a write by the
#: same account and client may be one of its parts.
HELM_SLACK = timedelta(minutes=1)
#: A record of a new revision this soon after the release's last record is the same
#: operation going on (Helm prunes old revisions just before it records the new one).
HELM_PRUNE = timedelta(seconds=5)

_OP_COLUMNS = {
    "_op": pl.String(),
    "_op_ns": pl.String(),
    "_op_release": pl.String(),
    "_part": pl.Boolean(),
}


def helm_operations(rows: pl.DataFrame, *, gap: timedelta) -> pl.DataFrame:
    """``rows`` (change rows with ``_agent``, ``_verb``, ``_by_helm``, ``_release``,
    ``_revision``, ``_key``) with the Helm operation each belongs to, so that the parts of
    one ``helm upgrade`` (install, rollback, uninstall) become one change: ``_op`` names
    the operation, ``_op_ns`` and ``_op_release`` its release, ``_part`` whether the row is
    a write of it (not a mention).

    Helm writes, seconds apart and with one account and client, its record of the new
    revision (``sh.helm.release.v1.RELEASE.vN``), the chart's objects, and the previous
    record (superseded); with ``--wait``, the records' last updates come after the
    rollout. So an operation is a release's records one after another (a new revision
    recorded starts the next), and its parts are the writes by the same account and
    client from :data:`HELM_SLACK` before its first record to as long after its last.
    Where two operations could claim a write, the one its ``meta.helm.sh/release-name``
    annotation names takes it, then one whose records enclose it, one in its namespace,
    one whose release its name contains, the nearest. Writes Helm sent where no record
    of their release was logged are one operation per namespace, release (when
    annotated) and account. A change log's line, a controller's event or action and a
    change inferred from logs about an object of the operation, or its release, within
    ``gap`` of it is a mention of it and joins it; a person's own write of the same
    object with another client stays a change of its own.
    """
    rows = rows.with_row_index("_i")
    helm = rows.filter(pl.col("_revision").is_not_null() | pl.col("_by_helm"))
    if helm.height == 0:
        return rows.drop("_i").with_columns(
            pl.lit(False if name == "_part" else None, dtype).alias(name)
            for name, dtype in _OP_COLUMNS.items()
        )
    path = pl.col("target").str.split("/")
    namespace = pl.when(path.list.len() >= 3).then(path.list.get(1))
    records = _helm_records(
        helm.filter(pl.col("_revision").is_not_null()).with_columns(_ns=namespace), gap=gap
    )
    ops = records.group_by("_op").agg(
        _op_ns=pl.col("_ns").first(),
        _op_release=pl.col("_release").first(),
        _op_actor=pl.col("actor").drop_nulls().first(),
        _op_agent=pl.col("_agent").drop_nulls().first(),
        _op_first=pl.col("ts").min(),
        _op_last=pl.col("ts").max(),
    )
    writes = rows.filter(
        pl.col("_revision").is_null()
        & pl.col("_agent").is_not_null()
        & pl.col("actor").is_not_null()
    ).with_columns(_ns=namespace)
    parts = _claimed_parts(writes, ops)
    lone = (
        writes.join(parts, on="_i", how="anti")
        .filter("_by_helm")
        .select(
            "_i",
            _op=pl.format(
                "helm/{}/{}/by {}",
                pl.col("_ns").fill_null(""),
                pl.col("_release").fill_null("?"),
                pl.col("actor"),
            ),
            _op_ns="_ns",
            _op_release="_release",
        )
    )
    own = pl.concat(
        [records.select("_i", "_op", _op_ns="_ns", _op_release="_release"), parts, lone],
        how="vertical_relaxed",
    ).with_columns(_part=pl.lit(True))
    mentions = _helm_mentions(rows.join(own, on="_i", how="anti"), rows.join(own, on="_i"), gap=gap)
    found = pl.concat([own, mentions.with_columns(_part=pl.lit(False))], how="vertical_relaxed")
    return (
        rows.join(found.cast(_OP_COLUMNS | {"_i": pl.UInt32()}), on="_i", how="left")
        .with_columns(pl.col("_part").fill_null(False))
        .sort("_i")
        .drop("_i")
    )


def _helm_records(records: pl.DataFrame, *, gap: timedelta) -> pl.DataFrame:
    """Helm's records of a release (with ``_ns``) in operations: one after another
    within ``gap``, a new revision recorded (not just after a prune) starting the next."""
    step = pl.col("ts").diff().over("_ns", "_release")
    start = step.is_null() | (step > gap) | ((pl.col("_verb") == "create") & (step > HELM_PRUNE))
    return records.sort("_ns", "_release", "ts").with_columns(
        _op=pl.format(
            "helm/{}/{}/{}",
            pl.col("_ns").fill_null(""),
            "_release",
            start.cast(pl.UInt32).cum_sum().over("_ns", "_release"),
        )
    )


def _claimed_parts(writes: pl.DataFrame, ops: pl.DataFrame) -> pl.DataFrame:
    """``_i``, ``_op``, ``_op_ns``, ``_op_release`` of each write one operation claims:
    by the operation's account and client, near its records (see :func:`helm_operations`
    for the order of claims)."""
    inside = pl.col("ts").is_between("_op_first", "_op_last")
    distance = (
        pl.when(pl.col("ts") < pl.col("_op_first"))
        .then(pl.col("_op_first") - pl.col("ts"))
        .otherwise(pl.col("ts") - pl.col("_op_last"))
        .clip(lower_bound=timedelta(0))
    )
    release = pl.col("_op_release").str.to_lowercase()
    name = pl.col("target").str.split("/").list.last().str.to_lowercase()
    return (
        writes.join(ops, left_on=["actor", "_agent"], right_on=["_op_actor", "_op_agent"])
        .filter(
            pl.col("ts").is_between(
                pl.col("_op_first") - HELM_SLACK, pl.col("_op_last") + HELM_SLACK
            ),
            pl.col("_release").is_null() | (pl.col("_release") == pl.col("_op_release")),
        )
        .sort(
            pl.col("_release").is_not_null(),
            inside,
            (pl.col("_ns") == pl.col("_op_ns")).fill_null(False),
            name.str.contains(release, literal=True),
            distance,
            descending=[True, True, True, True, False],
            nulls_last=True,
        )
        .group_by("_i", maintain_order=True)
        .first()
        .select("_i", "_op", "_op_ns", "_op_release")
    )


def _helm_mentions(rows: pl.DataFrame, owned: pl.DataFrame, *, gap: timedelta) -> pl.DataFrame:
    """``_i``, ``_op``, ``_op_ns``, ``_op_release`` of each row that tells of a Helm
    operation rather than being a change of its own: a change log's line, a controller's
    event or act or a change inferred from logs, about one of its objects (the same
    ``_key``) or its release, within ``gap`` of it; the nearest operation takes it."""
    keys = pl.concat(
        [
            owned.select("_op", "_op_ns", "_op_release", "ts", "_key"),
            owned.select("_op", "_op_ns", "_op_release", "ts", _key="_op_release"),
        ],
        how="vertical_relaxed",
    ).drop_nulls("_key")
    spans = keys.group_by("_op", "_key").agg(
        pl.col("_op_ns").first(),
        pl.col("_op_release").first(),
        _op_first=pl.col("ts").min(),
        _op_last=pl.col("ts").max(),
    )
    own_act = (pl.col("source") == "k8s-audit") & ~pl.col("_auto") & ~pl.col("inferred")
    distance = (
        pl.when(pl.col("ts") < pl.col("_op_first"))
        .then(pl.col("_op_first") - pl.col("ts"))
        .otherwise(pl.col("ts") - pl.col("_op_last"))
        .clip(lower_bound=timedelta(0))
    )
    return (
        rows.filter(~own_act)
        .join(spans, on="_key")
        .filter(pl.col("ts").is_between(pl.col("_op_first") - gap, pl.col("_op_last") + gap))
        .sort(distance, pl.col("_op_first"), descending=[False, True])
        .group_by("_i", maintain_order=True)
        .first()
        .select("_i", "_op", "_op_ns", "_op_release")
    )


def helm_release_of_rows() -> pl.Expr:
    """The Helm release a group of change rows (with ``_part``, ``_op_ns``, ``_op_release``,
    ``_record``, ``_verb``, ``_status``, ``_revision``) changed, as :data:`HELM_SCHEMA`; null
    for a group with no write of a Helm operation. The action is what its records say: a record
    labelled ``pending-rollback`` a rollback, ``pending-install`` or a first revision
    recorded an install, records deleted and none created an uninstall, else an upgrade;
    none when no record was logged."""
    record = pl.col("_record")
    created = record & (pl.col("_verb") == "create")
    status = pl.col("_status").fill_null("")
    rollback = record & ((status == "pending-rollback") | (pl.col("change_type") == "rollback"))
    install = (record & (status == "pending-install")) | (created & (pl.col("_revision") == 1))
    uninstall = (record & (pl.col("_verb") == "delete")).any() & ~created.any()
    action = (
        pl.when(~record.any())
        .then(pl.lit(None, pl.String))
        .when(rollback.any())
        .then(pl.lit("rollback"))
        .when(install.any())
        .then(pl.lit("install"))
        .when(uninstall | (record & status.str.starts_with("uninstall")).any())
        .then(pl.lit("uninstall"))
        .otherwise(pl.lit("upgrade"))
    )
    return pl.when(pl.col("_part").any()).then(
        pl.struct(
            namespace=pl.col("_op_ns").drop_nulls().first(),
            release=pl.col("_op_release").drop_nulls().first(),
            revision=pl.col("_revision").filter(record).max(),
            action=action,
        )
    )


# --- cascades: one action and what followed from it ----------------------------------------


def _follower(change: dict) -> bool:
    """A change that follows from another rather than being decided: rows a program wrote
    (a controller, the kubelet) or inferred from logs (a restart seen in its log). A Helm
    release's change is decided whoever ran it: a pipeline's account runs the command a
    person or a commit asked for."""
    follows = bool(change["automated"] or change["inferred"])
    return follows and not change["node"] and not change.get("helm")


def _node_follower(change: dict) -> bool:
    """A node's own change that no person decided: its kubelet starting (inferred from
    its log), its Node object created or labelled by the kubelet or a controller. It
    follows only from a change to the node's pool (:func:`_in_pool`)."""
    return bool(change["node"]) and bool(change["automated"] or change["inferred"])


def _in_pool(row: dict, cand: dict, hosts: set[str]) -> bool:
    """Whether ``row`` (on ``hosts``, and its node) happens on nodes a node-pool change
    ``cand`` reached, within :data:`POOL_SPAN` after it: the pool's upgrade going on node
    by node, its new nodes' kubelets and programs starting as it replaces them."""
    if not cand.get("_pool") or not cand["hosts"]:
        return False
    where = hosts | ({_host_key(row["node"])} if row["node"] else set())
    reached = {_host_key(h) for h in cand["hosts"]}
    return bool(where) and where <= reached and cand["ts"] <= row["ts"] <= cand["ts"] + POOL_SPAN


def _back_from_silence(row: dict, cand: dict, gap: timedelta) -> bool:
    """Whether a node's own change ``row`` (its kubelet starting) is the node coming back
    from the silence ``cand`` of the same node: from the silence's start until ``gap``
    after its end."""
    return (
        cand["change_type"] == "silence"
        and _host_key(row["node"]) == _host_key(cand["node"])
        and cand["ts"] <= row["ts"] <= cand["last_ts"] + gap
    )


def fold_cascades(changes: pl.DataFrame, *, gap: timedelta) -> pl.DataFrame:
    """Fold each change that follows from another into it: a restart inferred from logs,
    or a controller's or kubelet's action, that begins within ``gap`` after a decided
    change (a person's, a node's reboot, a change-log line) and happens mostly on the
    hosts that change touched (pods restarting on a rebooted node, a DaemonSet's pods on
    the nodes it rolled to), or names the same program as a change that names no host
    (or only the hosts its witnesses showed it on: a rollout goes on after them). One that
    names no host itself (a StatefulSet controller's pod delete in the audit log) follows
    a decided change of its program. A change to a node pool is followed, for as long as
    a change lasts, by what happens on its nodes alone without a person: its nodes'
    kubelets starting (the nodes it replaced) and their programs starting after them.
    A host's silence (a node that died) is followed by its coming back: its kubelet
    starting and the programs that start on it within ``gap`` after its next line are one
    episode with it, not changes that outrank it. The leader keeps its type, target and
    actor, and gains the follower's hosts (each with the time it was reached), rows,
    sources and examples. Changes are then numbered again by time.
    """
    if changes.height == 0:
        return changes
    rows = _split_by_leader(changes.sort("ts").to_dicts(), gap=gap)
    leaders: list[dict] = []
    for row in rows:
        hosts = {_host_key(h) for h in row["hosts"] or ()}
        leader = None
        if not _follower(row) and _node_follower(row):
            leader = next(
                (
                    c
                    for c in reversed(leaders)
                    if _in_pool(row, c, hosts) or _back_from_silence(row, c, gap)
                ),
                None,
            )
        elif _follower(row):
            for cand in reversed(leaders):
                if _in_pool(row, cand, hosts):
                    leader = cand
                    break
                if row["ts"] - cand["last_ts"] > gap:
                    continue
                reached = {_host_key(h) for h in cand["hosts"] or ()}
                reached.add(_host_key(cand["node"]))
                same_program = any(
                    names_match(a, b) for a in row["names"] or () for b in cand["names"] or ()
                )
                # hosts only its witnesses showed are where it had reached so far
                open_ended = not cand["hosts"] or cand.get("_witnessed")
                if hosts:
                    follows = len(hosts & reached) * 2 >= len(hosts) or (
                        same_program and open_ended
                    )
                else:
                    # a controller's act that names no host (a StatefulSet's pod deleted
                    # to roll it) is where a decided rollout of its program went on
                    follows = same_program and not _follower(cand)
                if follows:
                    leader = cand
                    break
        if leader is None:
            leaders.append(row)
            continue
        known = {_host_key(h["host"]) for h in leader["host_times"] or ()}
        extra = [h for h in row["host_times"] or () if _host_key(h["host"]) not in known]
        leader["host_times"] = [*(leader["host_times"] or ()), *extra]
        leader["hosts"] = sorted({*(leader["hosts"] or ()), *(h["host"] for h in extra)})
        leader["last_ts"] = max(leader["last_ts"], row["last_ts"])
        leader["n_rows"] += row["n_rows"]
        leader["sources"] = sorted({*leader["sources"], *row["sources"]})
        kept = max(8, len(leader["examples"]))  # a Helm release's keeps one of each part
        leader["examples"] = [*leader["examples"], *row["examples"]][:kept]
        leader["inferred"] = leader["inferred"] and row["inferred"]
    folded = pl.DataFrame(leaders, schema=changes.schema)
    return folded.with_columns(change_id=pl.int_range(pl.len(), dtype=pl.UInt32))


def _split_by_leader(rows: list[dict], *, gap: timedelta) -> list[dict]:
    """Rows with each follower whose hosts several decided changes reached (kube-proxy's
    restarts on two nodes rebooted ten minutes apart, which one change groups) split into
    one part per such change, each with its own hosts: each part then folds into the
    change that reached its hosts, not all of them into the first."""
    decided = [r for r in rows if not _follower(r)]
    reach = [{_host_key(h) for h in (*(d["hosts"] or ()), d["node"]) if h} for d in decided]
    out = []
    for row in rows:
        times = row["host_times"] or ()
        if not _follower(row) or len(times) < 2:
            out.append(row)
            continue
        by_leader: dict[int, list[dict]] = {}
        for ht in times:
            host = _host_key(ht["host"])
            reached = [
                k
                for k, d in enumerate(decided)
                if host in reach[k] and d["ts"] <= ht["ts"] <= d["last_ts"] + gap
            ]
            by_leader.setdefault(reached[-1] if reached else -1, []).append(ht)
        if len(by_leader.keys() - {-1}) < 2:
            out.append(row)
            continue
        for part in by_leader.values():
            hosts = {_host_key(ht["host"]) for ht in part}
            examples = [e for e in row["examples"] if any(h in e.lower() for h in hosts)]
            out.append(
                row
                | {
                    "ts": min(ht["ts"] for ht in part),
                    "last_ts": max(ht["ts"] for ht in part),
                    "hosts": sorted(ht["host"] for ht in part),
                    "host_times": part,
                    "n_rows": max(1, round(row["n_rows"] * len(part) / len(times))),
                    "examples": examples or row["examples"][:1],
                }
            )
    return sorted(out, key=lambda r: r["ts"])


# --- change-log targets in words ------------------------------------------------------------

_STOP = (
    "the a an of to for and or on in at by with from all every each remaining rest other "
    "one two by restart restarted restarting rolling roll rolled reboot rebooted rebooting "
    "deploy deployed upgrade upgraded rollback reverted revert config change changed fix "
    "fixed pool cluster service services node nodes test theory rule out enable disable "
    "resume resumed step smaller blast radius missing since adds logging infrastructure "
    "queue queues job jobs"
)
#: Words of a change-log line that name no program.
STOP_WORDS = frozenset(_STOP.split())
_ALL_NODES = r"(?i)\b(?:all|every|each)\b[^.;]*\bnodes?\b|^nodes?/(?:all|\*)"

#: Words of a change-log line that say it changed how CI jobs run, not a program the logs
#: show: a workflow or pipeline file (``.github/workflows/ci.yml``, ``.gitlab-ci.yml``,
#: ``Jenkinsfile``, ``.circleci/config.yml``), a runner or its image (``runs-on``), an
#: orb, or the word CI itself (``ci registry credentials``). Such a change is tied to the
#: failing jobs of an incident (:func:`ci_side_word`).
CI_SIDE = (
    r"(?i)(?:^|[^a-z0-9])(\.github/workflows|\.gitlab-ci\.ya?ml|jenkinsfile|\.circleci|"
    r"circleci|gitlab-ci|github actions|workflows?|pipelines?|runs-on|runners?|orbs?|"
    r"buildkite|ci)(?=$|[^a-z0-9])"
)


def ci_side_word(text: str | None) -> str | None:
    """The first word of ``text`` (a change-log line's target and note) that says the
    change is a CI-side one (:data:`CI_SIDE`), else None.

    >>> ci_side_word(".github/workflows/ci.yml Moved runs-on to ubuntu-24.04")
    '.github/workflows'
    >>> ci_side_word("ci registry credentials"), ci_side_word("circleci orbs")
    ('ci', 'circleci')
    >>> ci_side_word("grafana dashboards Added panels for checkout latency") is None
    True
    """
    hit = re.search(CI_SIDE, text or "")
    return hit.group(1).lower() if hit else None


def read_word_targets(changes: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """What a change written only in the change log touches, read from its words: "all
    (remaining) nodes" are the nodes (less those changed in the 6 hours before, for
    "remaining"), each reached when its own node change followed; a word that names a
    source or component of the logs ("DNS") joins ``names``; a CI executor's name
    ("macOS", "machine") joins ``executors``. ``found`` says how the target was known:
    ``target`` (it names a program, host or executor the logs show), ``words`` (its
    words do), ``ci`` (they name nothing the logs show, but say it is a CI-side change:
    :func:`ci_side_word`), ``named`` (a ``kind/namespace/name`` the logs do not show),
    ``not found`` (nothing in the logs matches its words), or null for changes that
    other records show.
    """
    universe = _universe(frame)
    node_changes = changes.filter(pl.col("node").is_not_null()).select("ts", "node")
    rows = []
    for change in changes.iter_rows(named=True):
        extra = {"executors": [], "found": None}
        if "changelog" in change["sources"]:
            extra = _read_words(change, universe, node_changes)
            if change["sources"] != ["changelog"] and extra["found"] == "not found":
                extra["found"] = None
        rows.append(extra)
    found = pl.DataFrame(
        rows,
        schema={
            "executors": pl.List(pl.String),
            "found": pl.String,
            "names": pl.List(pl.String),
            "hosts": pl.List(pl.String),
            "host_times": CHANGE_SCHEMA["host_times"],
        },
        orient="row",
    )
    out = changes.with_columns(executors=found["executors"], found=found["found"])
    for column in ("names", "hosts", "host_times"):
        out = out.with_columns(
            pl.when(found[column].is_not_null()).then(found[column]).otherwise(pl.col(column))
        )
    return out


def _universe(frame: pl.DataFrame) -> dict[str, set[str]]:
    """What the logs show: program names (sources and components), CI executors, hosts,
    and per source (``source:<name>``) the hosts that wrote it."""
    logs = frame.lazy().filter(pl.col("kind") == "log")
    # host keys of the distinct hosts, not of every row: a key is a regex and a split
    seen = (
        logs.select("source", "component", "host")
        .unique()
        .with_columns(host=host_key(pl.col("host")))
        .collect()
    )
    executors = (
        frame.lazy()
        .filter(pl.col("kind") == "job")
        .select(name=pl.col("attrs").str.json_path_match("$.executor"))
        .unique()
        .collect()
    )
    by_source: dict[str, set[str]] = {}
    for source, host in seen.select("source", "host").drop_nulls().unique().iter_rows():
        by_source.setdefault(source, set()).add(host)
    programs = set(seen["source"].drop_nulls()) | set(seen["component"].drop_nulls())
    return {
        "programs": programs,
        "executors": set(executors["name"].drop_nulls()),
        "hosts": set().union(*by_source.values()),
        **{f"source:{k}": v for k, v in by_source.items()},
    }


def _nodes(universe: dict[str, set[str]], node_changes: pl.DataFrame) -> list[str]:
    """The hosts that are nodes: those a ``node/...`` change names, and every host that
    runs a program one of them runs (not, say, a database host); all hosts when no
    change names a node."""
    named = {_host_key(n) for n in node_changes["node"]}
    if not named:
        return sorted(universe["hosts"])
    alike = [
        hosts for key, hosts in universe.items() if key.startswith("source:") and hosts & named
    ]
    return sorted(named.union(*alike))


def _read_words(change: dict, universe: dict[str, set[str]], node_changes: pl.DataFrame) -> dict:
    text = f"{change['target'] or ''} {change['note'] or ''}"
    words = {w for w in re.findall(r"[a-z0-9][a-z0-9_-]*", text.lower()) if w not in STOP_WORDS}
    executors = sorted(e for e in universe["executors"] if e.lower() in words)
    programs = sorted(
        w for w in words if any(names_match(w, p) for p in universe["programs"]) and len(w) >= 3
    )
    known_target = any(names_match(n, p) for n in change["names"] for p in universe["programs"])
    hosts = [*(change["hosts"] or ()), change["node"]]
    known_target |= any(_host_key(h) in universe["hosts"] for h in hosts if h)
    # A target written as kind/namespace/name is a named object: if the logs do not show
    # it, it is unrelated rather than not found.
    kind, _, rest = (change["target"] or "").lower().partition("/")
    structured = kind in KIND_WORDS and rest.rsplit("/", 1)[-1] not in KIND_WORDS
    out: dict = {"executors": executors, "found": "target" if known_target else None}
    if re.search(_ALL_NODES, text):
        t0 = change["ts"]
        nodes = _nodes(universe, node_changes)
        if "remaining" in text.lower() or "rest of" in text.lower():
            done = node_changes.filter(
                (pl.col("ts") < t0) & (pl.col("ts") >= t0 - timedelta(hours=6))
            )
            nodes = [n for n in nodes if n not in {_host_key(d) for d in done["node"]}]
        later = node_changes.filter(
            (pl.col("ts") >= t0 - timedelta(minutes=5)) & (pl.col("ts") <= t0 + timedelta(hours=6))
        )
        when = {}
        for row in later.iter_rows(named=True):
            when.setdefault(_host_key(row["node"]), row["ts"])
        times = [{"host": n, "ts": when.get(n, t0)} for n in nodes]
        out |= {"hosts": nodes, "host_times": sorted(times, key=lambda h: h["ts"])}
    if programs:
        out["names"] = sorted(set(change["names"]) | set(programs))
    if out["found"] is None:
        found = programs or executors or out.get("hosts")
        out["found"] = "words" if found else ("named" if structured else "not found")
    if out["found"] == "not found" and ci_side_word(text):
        # a CI-side change: tied to the failing jobs of an incident, whatever executor
        out["found"] = "ci"
    return out


# --- node pools: a change to a pool reaches the nodes that carry its name ------------------

#: A target that names a node pool as clouds' records and people write it: GKE's resource
#: name (``projects/p/locations/z/clusters/ci/nodePools/ci-runners-v2``), an AKS agent
#: pool's ID (``.../managedClusters/ci/agentPools/runners``), a change log's
#: ``nodepool/ci-runners-v2``.
POOL_PATH = (
    r"(?i)(?:^|/)(?:(?:managed)?clusters/(?P<cluster>[a-z0-9][a-z0-9_.-]*)/)?"
    r"(?:node[_-]?pools?|node[_-]?groups?|agent[_-]?pools?)[/:](?P<pool>[a-z0-9][a-z0-9_.-]*)"
)
_POOL_WORD = r"(?:node|agent)[ _-]?(?:pool|group)s?"
#: A pool in words, its name after the words or before them (``node pool ci-runners``,
#: ``the ci-runners-v2 node pool``); a stop word there (``to``, ``upgraded``) is no name.
POOL_WORDS = (
    rf"(?i)(?:^|\s){_POOL_WORD} (?P<after>[a-z0-9][a-z0-9_.-]*)",
    rf"(?i)(?:^|\s)(?P<before>[a-z0-9][a-z0-9_.-]*) {_POOL_WORD}(?:$|[\s.,;:])",
)
#: An EKS managed node group's ARN: ``arn:aws:eks:REGION:ACCOUNT:nodegroup/CLUSTER/NAME/ID``.
EKS_ARN = r"(?i)^arn:aws[a-z-]*:eks:[^:]*:[0-9]*:nodegroup/(?P<cluster>[^/]+)/(?P<pool>[^/]+)"
#: How far from a node-pool change its nodes may be reached: an upgrade replaces them one
#: or a few at a time, for as long as a change may last.
POOL_SPAN = MAX_SPAN
#: A node whose last row is this long before a pool's change was gone before it: an
#: analysis keeps a host's everyday rows one an hour, so its last kept row may be that early.
POOL_ALIVE = timedelta(hours=1)
_POOL_SCHEMA = pl.Struct({"pool": pl.String, "cluster": pl.String})


def node_pool(target: pl.Expr) -> pl.Expr:
    """The node pool a change's target (or a change log's words) names, as a struct of
    ``pool`` and ``cluster`` (null where not said), lower case; null where it names none.

    >>> gke = "projects/acme/locations/us-central1/clusters/ci/nodePools/ci-runners-v2"
    >>> pl.select(node_pool(pl.lit(gke))).item()
    {'pool': 'ci-runners-v2', 'cluster': 'ci'}
    >>> arn = "arn:aws:eks:us-east-1:123456789012:nodegroup/prod/ci-runners/8ec7e1a2"
    >>> pl.select(node_pool(pl.lit(arn))).item()
    {'pool': 'ci-runners', 'cluster': 'prod'}
    >>> pl.select(node_pool(pl.lit("Upgraded the gpu node pool to 1.29"))).item()
    {'pool': 'gpu', 'cluster': None}
    >>> pl.select(node_pool(pl.lit("upgrade node pool ci-runners-v2"))).item()
    {'pool': 'ci-runners-v2', 'cluster': None}
    >>> pl.select(node_pool(pl.lit("daemonset/kube-system/kube-proxy"))).item() is None
    True
    """
    arn, path = target.str.extract_groups(EKS_ARN), target.str.extract_groups(POOL_PATH)
    stop = sorted(STOP_WORDS)
    words = [target.str.extract(pattern, 1).str.to_lowercase() for pattern in POOL_WORDS]
    pool = pl.coalesce(
        arn.struct.field("pool"),
        path.struct.field("pool"),
        *(pl.when(~w.is_in(stop)).then(w) for w in words),
    )
    cluster = pl.coalesce(arn.struct.field("cluster"), path.struct.field("cluster"))
    return pl.when(pool.is_not_null()).then(
        pl.struct(pool=pool.str.to_lowercase(), cluster=cluster.str.to_lowercase())
    )


def pool_node_names(pool: str, cluster: str | None = None) -> str:
    """A regex of the node names (as :func:`host_key`) that carry ``pool`` in a cloud's
    naming scheme: GKE's ``gke-CLUSTER-POOL-HASH-SUFFIX``, AKS's
    ``aks-POOL-NNNNNNNN-vmssXXXXXX`` (or ``-N`` on availability sets). EKS node names
    (``ip-10-0-1-5``) carry no pool: only the data's labels tie them to one.

    >>> import re
    >>> names = pool_node_names("ci-runners-v2")
    >>> bool(re.match(names, "gke-ci-ci-runners-v2-5f1b7c6a-9k2x"))
    True
    >>> bool(re.match(names, "gke-ci-ci-runners-5f1b7c6a-9k2x"))  # another pool
    False
    >>> bool(re.match(pool_node_names("runners"), "aks-runners-41276345-vmss00000a"))
    True
    """
    p = re.escape(pool.lower())
    c = re.escape(cluster.lower()) + "-" if cluster else "(?:[a-z0-9-]+-)?"
    gke = f"gke-{c}{p}-[0-9a-f]{{8}}-[0-9a-z]{{4}}"
    aks = f"aks-{p}-[0-9]{{6,10}}-(?:vmss[0-9a-z]{{6}}|[0-9]+)"
    return f"^(?:{gke}|{aks})$"


#: A pool's label and value, as a kubelet's flags or a record's text write them
#: (``--node-labels=eks.amazonaws.com/nodegroup=ci-runners``, ``"agentpool": "runners"``),
#: or as the audit log's node rows name it (``"node_pool":"ci-runners"``).
POOL_LABEL = (
    r"(?:"
    + "|".join(re.escape(k) for k in (*POOL_LABELS, "node_pool"))
    + r")[\\\"']*\s*[:=]\s*[\\\"']*(?P<pool>[A-Za-z0-9][A-Za-z0-9_.-]*)"
)


def _pool_members(frame: pl.DataFrame) -> pl.DataFrame:
    """The hosts the data says are in a pool (``key``, ``pool``): a node whose kubelet's
    flags or whose Node object's labels name it (what ties an EKS node to its group)."""
    text = pl.concat_str(
        [pl.col("message").fill_null(""), pl.col("attrs").fill_null("")], separator=" "
    )
    # a literal test first: the regex looks only at the few rows that may hold a label
    maybe = text.str.contains(r"nodegroup|nodepool|agentpool|node_pool")
    return (
        frame.lazy()
        .filter(pl.col("host").is_not_null() & maybe)
        .select(
            key=host_key(pl.col("host")),
            pool=text.str.extract_all(POOL_LABEL)
            .list.eval(pl.element().str.extract(POOL_LABEL, 1).str.to_lowercase())
            .list.unique(),
        )
        .explode("pool")
        .drop_nulls()
        .unique()
        .collect()
    )


def _host_span(frame: pl.DataFrame) -> pl.DataFrame:
    """Each host (``key``, as written ``host``) with its ``first`` and ``last`` row."""
    return (
        frame.lazy()
        .filter(pl.col("host").is_not_null() & pl.col("ts").is_not_null())
        .group_by(key=host_key(pl.col("host")))
        .agg(host=pl.col("host").min(), first=pl.col("ts").min(), last=pl.col("ts").max())
        .collect()
    )


def read_pool_targets(changes: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """What a change to a node pool (:func:`node_pool`) touches: the nodes that carry the
    pool's name in their cloud's scheme (:func:`pool_node_names`) or that the data labels
    with it (:func:`_pool_members`), among those alive while it lasted (:data:`POOL_SPAN`).
    Each is reached when its own node change followed (a new node's kubelet starting), or
    when it first wrote (a node new since the change), else at the change. Such a change
    is marked ``_pool`` (what :func:`fold_cascades` folds the nodes' restarts into), names
    only its pool, and is ``found`` as a ``target`` when nodes are.
    """
    if changes.height == 0:
        return changes.with_columns(_pool=pl.lit(None, pl.String))
    from_words = pl.when(pl.col("sources").list.contains("changelog")).then(
        node_pool(pl.col("note"))
    )
    pooled = changes.with_columns(
        _named=pl.coalesce(node_pool(pl.col("target")), from_words).cast(_POOL_SCHEMA)
    ).with_columns(_pool=pl.col("_named").struct.field("pool"))
    asked = pooled.filter(pl.col("_pool").is_not_null())
    if asked.height == 0:
        return pooled.drop("_named")
    spans, members = _host_span(frame), _pool_members(frame)
    node_times = (
        changes.filter(pl.col("node").is_not_null())
        .select(key=host_key(pl.col("node")), ts="ts")
        .sort("ts")
    )
    found = []
    for change in asked.iter_rows(named=True):
        pool, cluster = change["_named"]["pool"], change["_named"]["cluster"]
        t0 = change["ts"]
        labelled = members.filter(pl.col("pool") == pool)["key"].to_list()
        alive = spans.filter(
            (
                pl.col("key").str.contains(pool_node_names(pool, cluster))
                | pl.col("key").is_in(labelled)
            )
            & (pl.col("first") <= t0 + POOL_SPAN)
            & (pl.col("last") >= t0 - POOL_ALIVE)
        )
        reached = (
            node_times.filter(pl.col("ts").is_between(t0, t0 + POOL_SPAN))
            .group_by("key")
            .agg(_node_ts=pl.col("ts").min())
        )
        timed = (
            alive.join(reached, on="key", how="left")
            .with_columns(
                ts=pl.coalesce(
                    "_node_ts",
                    pl.when(pl.col("first") > t0).then("first"),
                    pl.lit(t0, _TS),
                )
            )
            .sort("ts", "host")
        )
        found.append(
            {
                "change_id": change["change_id"],
                "_pool_hosts": sorted(timed["host"]),
                "_pool_times": timed.select("host", "ts").to_dicts(),
            }
        )
    hits = pl.DataFrame(
        found,
        schema={
            "change_id": pl.UInt32,
            "_pool_hosts": pl.List(pl.String),
            "_pool_times": CHANGE_SCHEMA["host_times"],
        },
    ).filter(pl.col("_pool_hosts").list.len() > 0)
    has = pl.col("_pool_hosts").is_not_null()
    return (
        pooled.join(hits, on="change_id", how="left")
        .with_columns(
            hosts=pl.when(has).then("_pool_hosts").otherwise("hosts"),
            host_times=pl.when(has).then("_pool_times").otherwise("host_times"),
            names=pl.when(pl.col("_pool").is_not_null())
            .then(pl.concat_list(pl.col("_pool")))
            .otherwise("names"),
            found=pl.when(has & pl.col("found").is_not_null())
            .then(pl.lit("target"))
            .otherwise("found"),
            _witnessed=pl.when(has).then(pl.lit(False)).otherwise("_witnessed"),
        )
        .drop("_named", "_pool_hosts", "_pool_times")
    )


def _kind(change: dict) -> str:
    target = change["target"] or ""
    return target.split("/", 1)[0].lower() if "/" in target else ""


def namespace_wide(change: dict) -> str | None:
    """The namespace a change acts on as a whole (:data:`NAMESPACE_KINDS`), or None.

    >>> namespace_wide({"target": "networkpolicy/shop/deny-egress"})
    'shop'
    >>> namespace_wide({"target": "deployment/shop/checkout"}) is None
    True
    """
    parts = (change["target"] or "").split("/")
    return parts[1] if len(parts) == 3 and _kind(change) in NAMESPACE_KINDS else None


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
    if change["change_type"] == "silence" and change["note"]:
        # what fell silent, for how long, and its last and next lines
        return f"{change['ts']:%Y-%m-%d %H:%M} {change['note']}"
    text = f"{change['change_type']} {change['target']}"
    if change["from"] or change["to"]:
        text += f" {_version(change['from'])} -> {_version(change['to'])}"
    hosts = change["hosts"] or []
    if len(hosts) == 1 and hosts[0] != change["name"]:
        text += f" on {hosts[0]}"
    elif len(hosts) > 1:
        text += f" on {len(hosts)} hosts"
    if change["actor"]:
        text += f" by {change['actor']}"
    if change["inferred"]:
        text += " (inferred from logs)"
    if change.get("helm"):
        text = f"{helm_words(change['helm'])}: {text}"
        others = [
            p["target"]
            for p in change.get("parts") or ()
            if p["target"] != change["target"] and not _HELM_RECORD.search(p["target"] or "")
        ]
        if others:
            more = (
                f" and {len(others) - MAX_PARTS_SAID} more" if len(others) > MAX_PARTS_SAID else ""
            )
            text += f"; also {', '.join(others[:MAX_PARTS_SAID])}{more}"
    return f"{change['ts']:%Y-%m-%d %H:%M} {text}"


#: At most this many other objects of a Helm release's change are named in its description.
MAX_PARTS_SAID = 6
_HELM_RECORD = re.compile(r"/sh\.helm\.release\.v1\.[^/]+\.v[0-9]+$")


def helm_words(helm: dict) -> str:
    """What was done to a Helm release, in words.

    >>> helm_words({"release": "rabbitmq", "revision": 4, "action": "upgrade"})
    'Helm upgrade of rabbitmq to revision 4'
    >>> helm_words({"release": "rabbitmq", "revision": 5, "action": "rollback"})
    'Helm rollback of rabbitmq (revision 5)'
    >>> helm_words({"release": None, "revision": None, "action": None})
    'Helm release (its name not logged)'
    """
    release, revision, action = helm["release"], helm["revision"], helm["action"]
    if action is None:
        return f"Helm release {release}" if release else "Helm release (its name not logged)"
    if action == "upgrade" and revision is not None:
        return f"Helm upgrade of {release} to revision {revision}"
    text = f"Helm {action} of {release}"
    return text + (f" (revision {revision})" if revision is not None else "")
