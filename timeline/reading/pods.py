"""Which node ran each pod, from what the cluster wrote about it.

Rows copied out of ``/var/log/pods`` or a ``kubectl logs`` dump often name a pod, not
the node it ran on. Three kinds of record tie a pod to its node:

- the scheduler's event ``Successfully assigned <namespace>/<pod> to <node>``;
- the audit log's ``pods/binding`` create, whose ``attrs`` name the node bound to
  (``binding_node``, or ``target`` as ``node/<name>``);
- a kubelet line on the node that names the pod (``pod="<namespace>/<pod>"`` or
  ``pods=["<namespace>/<pod>"]``).

:func:`pod_nodes` reads them into a table; :func:`node_of_host` turns a host column into
node names where the host is a pod the table knows, and leaves other hosts as they are.
"""

from __future__ import annotations

import re

import polars as pl

#: An IPv4 address as a host's name (a Talos node's folder): its dots are no DNS labels.
_IPV4 = r"^[0-9]{1,3}(?:\.[0-9]{1,3}){3}$"


def host_key(host: pl.Expr) -> pl.Expr:
    """The host a name stands for, for matching: its first DNS label in lower case, so
    that ``ip-10-20-1-23.ec2.internal`` and ``ip-10-20-1-23`` are one host, or the whole
    of an IPv4 address.

    >>> names = pl.Series(["IP-10-20-1-23.ec2.internal", "ip-10-20-1-23", "10.0.1.5"])
    >>> pl.select(host_key(pl.lit(names))).to_series().to_list()
    ['ip-10-20-1-23', 'ip-10-20-1-23', '10.0.1.5']
    """
    label = host.str.to_lowercase().str.split(".").list.first()
    return pl.when(host.str.contains(_IPV4)).then(host).otherwise(label)


def host_key_of(host: str | None) -> str | None:
    """:func:`host_key` of one name.

    >>> host_key_of("IP-10-20-1-23.ec2.internal"), host_key_of("10.0.1.5")
    ('ip-10-20-1-23', '10.0.1.5')
    """
    if not host:
        return None
    return host if re.match(_IPV4, host) else host.lower().split(".")[0]


__all__ = [
    "POD_NODE_SCHEMA",
    "host_key",
    "host_key_of",
    "node_of_host",
    "node_of_pod",
    "pod_log_origin",
    "pod_nodes",
    "tells_pod_node",
    "with_pod_log_origin",
]

POD_NODE_SCHEMA: dict[str, pl.DataType] = {
    "pod": pl.String(),
    "namespace": pl.String(),
    "node": pl.String(),
    "via": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "file": pl.String(),
    "line": pl.UInt32(),
}

#: ``<namespace>_<pod>_<uid>/<container>/<n>.log``: how the kubelet lays out pod logs
#: under ``/var/log/pods``, and how they look when copied out without the node's folder.
_POD_LOG = (
    r"(?:^|/)(?<namespace>[a-z0-9][a-z0-9-]*)_(?<pod>[a-z0-9][a-z0-9.-]*)_"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/"
    r"(?<container>[a-z0-9][a-z0-9-]*)/[0-9]+\.log(?:\.[0-9]+)?(?:\.gz)?$"
)
_ASSIGNED = r"Successfully assigned (?<namespace>[a-z0-9.-]+)/(?<pod>[a-z0-9.-]+) to (?<node>\S+)"
_KUBELET_POD = r"pods?=\[?\"(?<namespace>[a-z0-9.-]+)/(?<pod>[a-z0-9.-]+)\""


def tells_pod_node() -> pl.Expr:
    """Whether a row may tie a pod to its node (what :func:`pod_nodes` reads), so that a
    reader that drops most messages can keep these."""
    message = pl.col("message").fill_null("")
    kubelet = pl.when(pl.col("component") == "kubelet").then(pl.col("message"))
    return (
        message.str.contains("Successfully assigned ", literal=True)
        | pl.col("attrs").fill_null("").str.contains('"binding"', literal=True)
        # the regex looks at kubelet's rows only: it costs time on every row it is given
        | kubelet.str.contains(r"pods?=\[?\"").fill_null(False)
    )


def pod_nodes(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The node each pod ran on, one row per pod, from scheduler events, audit bindings
    and kubelet lines (the earliest record wins).

    Parameters
    ----------
    frame
        The event frame.

    Returns
    -------
    pl.DataFrame
        ``POD_NODE_SCHEMA``: ``pod``, ``namespace``, ``node``, ``via`` (``event``,
        ``audit`` or ``kubelet``), and the ``ts``, ``file`` and ``line`` of the record.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> rows = pl.DataFrame({
    ...     "ts": [datetime(2024, 1, 2, 3, 4, tzinfo=UTC)], "source": ["k8s-event"],
    ...     "host": [None], "component": ["default-scheduler"], "kind": ["log"],
    ...     "message": ["Scheduled: Successfully assigned web/api-7d4f9-x2kq9 to node-3"],
    ...     "attrs": ["{}"], "file": ["events.json"], "line": [7],
    ... })
    >>> pod_nodes(rows).select("pod", "node", "via").row(0)
    ('api-7d4f9-x2kq9', 'node-3', 'event')
    """
    lazy = frame.lazy()
    message = pl.col("message").fill_null("")
    assigned = (
        lazy.filter(message.str.contains("Successfully assigned "))
        .with_columns(_m=message.str.extract_groups(_ASSIGNED))
        .select(
            "ts",
            "file",
            "line",
            pod=pl.col("_m").struct.field("pod"),
            namespace=pl.col("_m").struct.field("namespace"),
            node=pl.col("_m").struct.field("node"),
            via=pl.lit("event"),
        )
    )
    attrs = pl.col("attrs").fill_null("{}")
    bound = (
        lazy.filter(attrs.str.contains('"binding"'))
        .with_columns(
            _sub=attrs.str.json_path_match("$.subresource"),
            _node=pl.coalesce(
                attrs.str.json_path_match("$.binding_node"),
                attrs.str.json_path_match("$.target").str.extract(r"^node/(.+)$"),
            ),
        )
        .filter((pl.col("_sub") == "binding") & pl.col("_node").is_not_null())
        .select(
            "ts",
            "file",
            "line",
            pod=attrs.str.json_path_match("$.name"),
            namespace=attrs.str.json_path_match("$.namespace"),
            node=pl.col("_node"),
            via=pl.lit("audit"),
        )
    )
    kubelet = (
        lazy.filter(
            (pl.col("component") == "kubelet")
            & pl.col("host").is_not_null()
            & message.str.contains(r"pods?=\[?\"")
        )
        .with_columns(_m=message.str.extract_groups(_KUBELET_POD))
        .select(
            "ts",
            "file",
            "line",
            pod=pl.col("_m").struct.field("pod"),
            namespace=pl.col("_m").struct.field("namespace"),
            node=pl.col("host"),
            via=pl.lit("kubelet"),
        )
    )
    return (
        pl.concat([assigned, bound, kubelet], how="vertical_relaxed")
        .filter(pl.col("pod").is_not_null() & pl.col("node").is_not_null())
        .sort("ts", nulls_last=True)
        .unique("pod", keep="first", maintain_order=True)
        .select([pl.col(c).cast(t) for c, t in POD_NODE_SCHEMA.items()])
        .collect()
    )


def node_of_host(host: pl.Expr, pods: pl.DataFrame) -> pl.Expr:
    """The node behind a host: the pod's node where the host is a pod in ``pods``
    (:func:`pod_nodes`), else the host itself.

    >>> pods = pl.DataFrame({"pod": ["api-7d4f9-x2kq9"], "node": ["node-3"]})
    >>> pl.select(node_of_host(pl.lit("api-7d4f9-x2kq9"), pods)).item()
    'node-3'
    >>> pl.select(node_of_host(pl.lit("node-1"), pods)).item()
    'node-1'
    """
    if pods.height == 0:
        return host
    mapping = dict(zip(pods["pod"].to_list(), pods["node"].to_list(), strict=True))
    return host.replace(mapping)


def node_of_pod(name: pl.Expr, pods: pl.DataFrame) -> pl.Expr:
    """The node ``name`` ran on where it is a pod in ``pods`` (:func:`pod_nodes`), else
    null: what ties a name that is no host of its own (a CI runner, which on a
    self-hosted fleet is a pod) to a node, and only where the data says so.

    >>> pods = pl.DataFrame({"pod": ["arc-runner-set-7x9kq-runner-2fj8d"], "node": ["n-3"]})
    >>> pl.select(node_of_pod(pl.lit("arc-runner-set-7x9kq-runner-2fj8d"), pods)).item()
    'n-3'
    >>> pl.select(node_of_pod(pl.lit("GitHub Actions 7"), pods)).item() is None
    True
    """
    if pods.height == 0:
        return pl.lit(None, pl.String)
    mapping = dict(zip(pods["pod"].to_list(), pods["node"].to_list(), strict=True))
    return name.replace_strict(mapping, default=None, return_dtype=pl.String)


def pod_log_origin(file: pl.Expr) -> pl.Expr:
    """The namespace, pod and container a pod log's path names, as a struct (nulls where
    the path is not laid out as ``<namespace>_<pod>_<uid>/<container>/<n>.log``).

    >>> path = "pods/shop_cart-6f7d8c9b5-x2kq9_0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/cart/0.log"
    >>> pl.select(pod_log_origin(pl.lit(path))).item()
    {'namespace': 'shop', 'pod': 'cart-6f7d8c9b5-x2kq9', 'container': 'cart'}
    """
    return file.str.extract_groups(_POD_LOG)


def with_pod_log_origin(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Rows that know no host but come from a pod log laid out as the kubelet writes it:
    their host becomes the pod and their source and component the container, so that the
    pod's node can be found (:func:`pod_nodes`) and its program named. Other rows are
    left as they are.
    """
    lazy = frame.lazy()
    files = (
        lazy.select("file").unique().with_columns(_o=pod_log_origin(pl.col("file").cast(pl.String)))
    )
    origin = pl.col("_o").struct.field
    from_pod = pl.col("host").is_null() & origin("pod").is_not_null()
    return (
        lazy.join(files, on="file", how="left", nulls_equal=True)
        .with_columns(
            host=pl.when(from_pod).then(origin("pod")).otherwise(pl.col("host")),
            source=pl.when(from_pod & (pl.col("kind") == "log"))
            .then(origin("container"))
            .otherwise(pl.col("source")),
            component=pl.when(from_pod & (pl.col("kind") == "log"))
            .then(origin("container"))
            .otherwise(pl.col("component")),
        )
        .drop("_o")
    )
