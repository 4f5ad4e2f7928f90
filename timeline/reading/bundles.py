"""The node of a bundle whose folder names it by something else: an EKS log collector's
bundle is named by the EC2 instance id, while change records and Kubernetes events name
the node by its hostname (``ip-192-168-12-34.ec2.internal``).

Like the year and zone of :mod:`timeline.reading.settle`, it is found in three steps, so
that files are still read apart: :func:`node_evidence` takes the hostname from the
bundle's kubelet journal where that file is read (and only there:
:data:`parsers.layouts.BUNDLE_NODE_FILES`); :func:`bundle_nodes` gives each file of the
bundle that name, or says that the instance id stands for the node where nothing names
it; :func:`timeline.reading.settle.apply` puts it in place of the instance id, which
:func:`parsers.layouts.hints_from_path` gave the rows that name no host of their own.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from parsers import layouts
from timeline.reading.settle import assumption

#: The keys of a partial's evidence that :func:`node_evidence` fills.
_NAMED, _NAMING = "node_named", "node_named_records"


def node_evidence(records: pl.DataFrame, path: str) -> dict[str, Any]:
    """The hostname most of the records name, and by how many, where ``path`` is the file
    of a bundle whose records name its node; nothing for any other file, whose records
    are not looked at.

    >>> rows = pl.DataFrame({"host": ["ip-192-168-12-34.ec2.internal"] * 2 + [None]})
    >>> node_evidence(rows, "eks_i-0abc1234_2023-03-14_1805-UTC_0.7.6/kubelet/kubelet.log")
    {'node_named': 'ip-192-168-12-34.ec2.internal', 'node_named_records': 2}
    >>> node_evidence(rows, "ip-10-0-1-5/var/log/kubelet.log")
    {}
    """
    bundle = layouts.bundle_of(path)
    if bundle is None or not bundle.names_node:
        return {}
    host = pl.col("host")
    named = (
        records.filter(host.is_not_null() & (host != bundle.stand_in))
        .group_by("host")
        .len()
        .sort("len", "host", descending=[True, False])
    )
    if named.height == 0:
        return {}
    return {_NAMED: named["host"][0], _NAMING: named["len"][0]}


def bundle_nodes(
    evidences: dict[str, list[dict[str, Any]]],
) -> tuple[dict[str, tuple[str, str]], list[dict[str, Any]]]:
    """For each file in a bundle that names its node by a stand-in, the stand-in and the
    node's name (``{path: (instance id, hostname)}``), from the evidence of every file
    (``{path: [evidence of each part]}``), and the assumptions that say so: one a bundle,
    on its kubelet journal, or on its first file with records where it has none or its
    journal names no host (the instance id then stays the host)."""
    bundles = {path: layouts.bundle_of(path) for path, parts in evidences.items() if parts}
    named: dict[str, dict[str, int]] = {}
    for path, bundle in bundles.items():
        if bundle is not None and bundle.names_node:
            counts = named.setdefault(bundle.root, {})
            for part in evidences[path]:
                if part.get(_NAMED):
                    counts[part[_NAMED]] = counts.get(part[_NAMED], 0) + part[_NAMING]
    hosts, said, unnamed = {}, [], set()
    for path, bundle in sorted(bundles.items()):
        if bundle is None:
            continue
        counts = named.get(bundle.root)
        if counts:
            node = max(sorted(counts), key=counts.__getitem__)
            hosts[path] = (bundle.stand_in, node)
            if bundle.names_node:
                said.append(_named(path, node, bundle, counts[node]))
        elif bundle.root not in unnamed:
            unnamed.add(bundle.root)
            said.append(_unnamed(path, bundle))
    return hosts, said


def _folder(bundle: layouts.Bundle) -> str:
    return bundle.root.rsplit("/", 1)[-1]


def _named(path: str, node: str, bundle: layouts.Bundle, records: int) -> dict[str, Any]:
    return assumption(
        path,
        "host",
        node,
        f"records of the kubelet journal of the bundle {_folder(bundle)} name its node so: "
        f"its files' rows that name no host of their own are this node's, not "
        f"{bundle.stand_in}'s",
        "stated",
        records=records,
    )


def _unnamed(path: str, bundle: layouts.Bundle) -> dict[str, Any]:
    return assumption(
        path,
        "host",
        bundle.stand_in,
        f"no kubelet journal of the bundle {_folder(bundle)} names its node: the instance "
        "id the bundle is named by stands for it",
        "guess",
    )
