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

import polars as pl

__all__ = ["POD_NODE_SCHEMA", "node_of_host", "pod_nodes", "tells_pod_node"]

POD_NODE_SCHEMA: dict[str, pl.DataType] = {
    "pod": pl.String(),
    "namespace": pl.String(),
    "node": pl.String(),
    "via": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "file": pl.String(),
    "line": pl.UInt32(),
}

_ASSIGNED = r"Successfully assigned (?<namespace>[a-z0-9.-]+)/(?<pod>[a-z0-9.-]+) to (?<node>\S+)"
_KUBELET_POD = r"pods?=\[?\"(?<namespace>[a-z0-9.-]+)/(?<pod>[a-z0-9.-]+)\""


def tells_pod_node() -> pl.Expr:
    """Whether a row may tie a pod to its node (what :func:`pod_nodes` reads), so that a
    reader that drops most messages can keep these."""
    message = pl.col("message").fill_null("")
    return (
        message.str.contains("Successfully assigned ", literal=True)
        | pl.col("attrs").fill_null("").str.contains('"binding"', literal=True)
        | ((pl.col("component") == "kubelet") & message.str.contains(r"pods?=\[?\""))
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
