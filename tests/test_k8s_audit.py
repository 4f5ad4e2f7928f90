"""Kubernetes audit log: writes become change rows with from/to images, the rest is kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

import parsers
from parsers.k8s_audit import container_images, sniff
from tests.lines import read_real

EKS = "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy"
KUBECTL = "kubectl/v1.24.10 (linux/amd64) kubernetes/5c1d2d4"


def audit(
    verb: str,
    uri: str,
    ref: dict,
    *,
    when: str,
    audit_id: str,
    stage: str = "ResponseComplete",
    level: str = "RequestResponse",
    user: str = "kubernetes-admin",
    user_agent: str = KUBECTL,
    code: int | None = 200,
    status: dict | None = None,
    request: object = None,
    response: object = None,
) -> str:
    """One audit line, with the fields in the order kube-apiserver writes them."""
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": audit_id,
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": ["system:masters", "system:authenticated"]},
        "sourceIPs": ["10.0.12.7"],
        "userAgent": user_agent,
        "objectRef": {**ref, "apiVersion": "v1"},
    }
    if stage != "RequestReceived":
        event["responseStatus"] = {"metadata": {}, **(status or {}), "code": code}
    if request is not None:
        event["requestObject"] = request
    if response is not None and stage != "RequestReceived":
        event["responseObject"] = response
    event["requestReceivedTimestamp"] = when
    event["stageTimestamp"] = when if stage == "RequestReceived" else later(when, 917)
    event["annotations"] = {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": "",
    }
    return json.dumps(event, separators=(",", ":"))


def later(when: str, microseconds: int) -> str:
    """An audit time ``microseconds`` after ``when``, written the same way."""
    moved = datetime.fromisoformat(when) + timedelta(microseconds=microseconds)
    return moved.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


KUBE_PROXY = {
    "resource": "daemonsets",
    "namespace": "kube-system",
    "name": "kube-proxy",
    "apiGroup": "apps",
}
DS_URI = "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy"


def daemonset(image: str) -> dict:
    return {
        "kind": "DaemonSet",
        "apiVersion": "apps/v1",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-proxy"}},
                "spec": {
                    "containers": [
                        {
                            "name": "kube-proxy",
                            "image": image,
                            "command": [
                                "kube-proxy",
                                "--v=2",
                                "--config=/var/lib/kube-proxy-config/config",
                            ],
                        }
                    ],
                    "hostNetwork": True,
                },
            },
        },
    }


def set_image(image: str) -> dict:
    return {
        "spec": {"template": {"spec": {"containers": [{"image": image, "name": "kube-proxy"}]}}}
    }


def undo(image: str) -> dict:
    template = daemonset(image)["spec"]["template"]
    return {"spec": {"template": {"$patch": "replace", **template}}}


def kube_proxy_history() -> list[str]:
    """Addon install at v1.23.6, upgrade, a refused patch, rollback by undo, upgrade again."""
    return [
        audit(
            "update",
            DS_URI,
            KUBE_PROXY,
            when="2023-03-06T10:00:00.101000Z",
            audit_id="0b7e1a52-1111-4c1e-9b2a-5d6e7f8a9b01",
            user="eks:addon-manager",
            user_agent="eks-addon-manager/v1.24.0",
            request=daemonset(f"{EKS}:v1.23.6-minimal-eksbuild.2"),
            response=daemonset(f"{EKS}:v1.23.6-minimal-eksbuild.2"),
        ),
        audit(
            "patch",
            DS_URI + "?fieldManager=kubectl-set",
            KUBE_PROXY,
            when="2023-03-13T14:05:12.200000Z",
            audit_id="0b7e1a52-2222-4c1e-9b2a-5d6e7f8a9b02",
            stage="RequestReceived",
            request=set_image(f"{EKS}:v1.24.10-minimal-eksbuild.1"),
        ),
        audit(
            "patch",
            DS_URI + "?fieldManager=kubectl-set",
            KUBE_PROXY,
            when="2023-03-13T14:05:12.200000Z",
            audit_id="0b7e1a52-2222-4c1e-9b2a-5d6e7f8a9b02",
            request=set_image(f"{EKS}:v1.24.10-minimal-eksbuild.1"),
            response=daemonset(f"{EKS}:v1.24.10-minimal-eksbuild.1"),
        ),
        audit(
            "patch",
            DS_URI + "?fieldManager=kubectl-set",
            KUBE_PROXY,
            when="2023-03-13T16:30:00.000000Z",
            audit_id="0b7e1a52-3333-4c1e-9b2a-5d6e7f8a9b03",
            code=422,
            status={
                "status": "Failure",
                "message": 'DaemonSet.apps "kube-proxy" is invalid',
                "reason": "Invalid",
            },
            request=set_image(f"{EKS}:v1.25.6-minimal-eksbuild.1"),
        ),
        audit(
            "patch",
            DS_URI + "?fieldManager=kubectl-rollout",
            KUBE_PROXY,
            when="2023-03-13T16:40:03.500000Z",
            audit_id="0b7e1a52-4444-4c1e-9b2a-5d6e7f8a9b04",
            request=undo(f"{EKS}:v1.23.6-minimal-eksbuild.2"),
            response=daemonset(f"{EKS}:v1.23.6-minimal-eksbuild.2"),
        ),
        audit(
            "patch",
            DS_URI + "?fieldManager=kubectl-set",
            KUBE_PROXY,
            when="2023-03-14T17:40:02.118000Z",
            audit_id="0b7e1a52-5555-4c1e-9b2a-5d6e7f8a9b05",
            request=set_image(f"{EKS}:v1.24.10-minimal-eksbuild.1"),
            response=daemonset(f"{EKS}:v1.24.10-minimal-eksbuild.1"),
        ),
    ]


def changes(loaded) -> list[dict]:
    rows = loaded.events.filter(pl.col("kind") == "change").sort("line")
    return [{**json.loads(r["attrs"]), "_row": r} for r in rows.iter_rows(named=True)]


def text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def test_image_history_reads_as_upgrade_rollback_upgrade(read):
    loaded = read("kube-apiserver-audit.log", text(kube_proxy_history()))
    got = changes(loaded)
    assert [(c["change_type"], c.get("failed")) for c in got] == [
        ("deploy", None),
        ("upgrade", None),
        ("upgrade", True),
        ("rollback", None),
        ("upgrade", None),
    ]
    upgrade, refused, rollback, again = got[1:]
    assert upgrade["from"] == f"{EKS}:v1.23.6-minimal-eksbuild.2"
    assert upgrade["to"] == f"{EKS}:v1.24.10-minimal-eksbuild.1"
    assert upgrade["target"] == "daemonset/kube-system/kube-proxy"
    assert upgrade["actor"] == "kubernetes-admin"
    assert upgrade["container"] == "kube-proxy"
    assert upgrade["field_manager"] == "kubectl-set"
    assert rollback["rollout_undo"] is True
    assert rollback["from"] == f"{EKS}:v1.24.10-minimal-eksbuild.1"
    assert rollback["to"] == f"{EKS}:v1.23.6-minimal-eksbuild.2"
    # the refused patch did not change what ran, so the next change starts from the rollback
    assert refused["_row"]["level"] == "warning" and refused["code"] == 422
    assert again["from"] == f"{EKS}:v1.23.6-minimal-eksbuild.2"
    assert rollback["_row"]["ts"].isoformat() == "2023-03-13T16:40:03.500917+00:00"
    assert "rollback daemonset/kube-system/kube-proxy kube-proxy:" in rollback["_row"]["message"]


def test_one_change_per_request_and_other_stages_kept_at_debug(read):
    loaded = read("audit.log", text(kube_proxy_history()))
    events = loaded.events
    assert events.height == 6
    received = events.filter(pl.col("line") == 2).row(0, named=True)
    assert received["kind"] == "log" and received["level"] == "debug"
    assert json.loads(received["attrs"])["stage"] == "RequestReceived"
    assert changes(loaded)[1]["_row"]["line"] == 3
    assert loaded.summary.unparsed_lines == 0


def test_reads_are_counted_as_debug_rows_not_changes(read):
    pods = {"resource": "pods", "namespace": "kube-system"}
    lines = [
        audit(
            "list",
            "/api/v1/namespaces/kube-system/pods?limit=500",
            pods,
            when="2023-03-14T18:00:00.100000Z",
            audit_id="7d1e0c3a-0001-4a4a-8b8b-000000000001",
            level="Metadata",
        ),
        audit(
            "watch",
            "/api/v1/namespaces/kube-system/pods?allowWatchBookmarks=true&watch=true",
            pods,
            when="2023-03-14T18:00:00.200000Z",
            audit_id="7d1e0c3a-0002-4a4a-8b8b-000000000002",
            level="Metadata",
            user="system:serviceaccount:kube-system:coredns",
        ),
        audit(
            "get",
            "/api/v1/namespaces/kube-system/pods/kube-proxy-x7k2p",
            {**pods, "name": "kube-proxy-x7k2p"},
            when="2023-03-14T18:00:00.300000Z",
            audit_id="7d1e0c3a-0003-4a4a-8b8b-000000000003",
            level="Metadata",
            code=404,
        ),
        audit(
            "update",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/ip-10-0-1-5",
            {"resource": "leases", "namespace": "kube-node-lease", "name": "ip-10-0-1-5"},
            when="2023-03-14T18:00:00.400000Z",
            audit_id="7d1e0c3a-0004-4a4a-8b8b-000000000004",
            level="Metadata",
            user="system:node:ip-10-0-1-5",
        ),
    ]
    loaded = read("audit.log", text(lines))
    events = loaded.events.sort("line")
    assert events["kind"].to_list() == ["log"] * 4
    assert events["level"].to_list() == ["debug"] * 4
    assert events["template"].to_list() == [
        "list pods 200",
        "watch pods 200",
        "get pods 404",
        "update leases 200",
    ]
    assert (
        events["message"][2] == "get pods kube-system/kube-proxy-x7k2p -> 404 by kubernetes-admin"
    )


def test_pods_nodes_configuration_and_scale(read):
    pod = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "coredns-5d8f7b9c6d-7xk2q", "namespace": "kube-system"},
        "spec": {
            "nodeName": "ip-10-0-1-5.ec2.internal",
            "containers": [{"name": "coredns", "image": "coredns/coredns:1.9.3"}],
        },
    }
    lines = [
        audit(
            "create",
            "/api/v1/namespaces/kube-system/pods",
            {"resource": "pods", "namespace": "kube-system"},
            when="2023-03-14T20:05:00.100000Z",
            audit_id="5e6f7a8b-0001-4c4c-9d9d-000000000001",
            user="system:serviceaccount:kube-system:replicaset-controller",
            code=201,
            request={**pod, "metadata": {"generateName": "coredns-5d8f7b9c6d-"}},
            response=pod,
        ),
        audit(
            "update",
            "/api/v1/namespaces/kube-system/configmaps/coredns",
            {"resource": "configmaps", "namespace": "kube-system", "name": "coredns"},
            when="2023-03-14T20:02:11.200000Z",
            audit_id="5e6f7a8b-0002-4c4c-9d9d-000000000002",
            level="Metadata",
        ),
        audit(
            "patch",
            "/api/v1/nodes/ip-10-0-1-5.ec2.internal",
            {"resource": "nodes", "name": "ip-10-0-1-5.ec2.internal"},
            when="2023-03-14T21:00:00.300000Z",
            audit_id="5e6f7a8b-0003-4c4c-9d9d-000000000003",
            request={"spec": {"unschedulable": True}},
        ),
        audit(
            "patch",
            "/api/v1/nodes/ip-10-0-1-5.ec2.internal",
            {"resource": "nodes", "name": "ip-10-0-1-5.ec2.internal"},
            when="2023-03-14T21:09:19.000000Z",
            audit_id="5e6f7a8b-0008-4c4c-9d9d-000000000008",
            request={"spec": {"unschedulable": None}},
        ),
        audit(
            "create",
            "/api/v1/namespaces/messaging/pods/rmq-0/eviction",
            {
                "resource": "pods",
                "namespace": "messaging",
                "name": "rmq-0",
                "subresource": "eviction",
            },
            when="2023-03-14T21:00:05.000000Z",
            audit_id="5e6f7a8b-0004-4c4c-9d9d-000000000004",
            code=201,
        ),
        audit(
            "patch",
            "/apis/apps/v1/namespaces/kube-system/deployments/coredns/scale",
            {
                "resource": "deployments",
                "namespace": "kube-system",
                "name": "coredns",
                "apiGroup": "apps",
                "subresource": "scale",
            },
            when="2023-03-14T21:10:00.000000Z",
            audit_id="5e6f7a8b-0005-4c4c-9d9d-000000000005",
            request={"spec": {"replicas": 4}},
        ),
        audit(
            "patch",
            "/apis/apps/v1/namespaces/kube-system/deployments/coredns?fieldManager=kubectl-rollout",
            {
                "resource": "deployments",
                "namespace": "kube-system",
                "name": "coredns",
                "apiGroup": "apps",
            },
            when="2023-03-14T20:31:00.000000Z",
            audit_id="5e6f7a8b-0006-4c4c-9d9d-000000000006",
            request={
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {
                                "kubectl.kubernetes.io/restartedAt": "2023-03-14T20:31:00Z"
                            }
                        }
                    }
                }
            },
        ),
        audit(
            "patch",
            "/api/v1/nodes/ip-10-0-1-5.ec2.internal/status",
            {"resource": "nodes", "name": "ip-10-0-1-5.ec2.internal", "subresource": "status"},
            when="2023-03-14T21:10:01.000000Z",
            audit_id="5e6f7a8b-0007-4c4c-9d9d-000000000007",
            user="system:node:ip-10-0-1-5.ec2.internal",
            level="Metadata",
        ),
    ]
    loaded = read("audit.log", text(lines))
    got = {c["_row"]["line"]: c for c in changes(loaded)}
    assert sorted(got) == [1, 2, 3, 4, 5, 6, 7]
    created = got[1]
    assert (created["change_type"], created["target"]) == (
        "create",
        "pod/kube-system/coredns-5d8f7b9c6d-7xk2q",
    )
    assert created["_row"]["host"] == "ip-10-0-1-5.ec2.internal"
    assert created["to"] == "coredns/coredns:1.9.3"
    assert created["actor"] == "system:serviceaccount:kube-system:replicaset-controller"
    assert (got[2]["change_type"], got[2]["target"]) == ("config", "configmap/kube-system/coredns")
    assert (got[3]["change_type"], got[3]["to"]) == ("other", "cordoned")
    assert got[3]["_row"]["host"] == "ip-10-0-1-5.ec2.internal"
    assert (got[4]["change_type"], got[4]["to"]) == ("other", "uncordoned")
    assert (got[5]["change_type"], got[5]["target"]) == ("delete", "pod/messaging/rmq-0")
    assert (got[6]["change_type"], got[6]["to"]) == ("scale", 4)
    assert got[7]["change_type"] == "restart"
    status = loaded.events.filter(pl.col("line") == 8).row(0, named=True)
    assert (status["kind"], status["level"]) == ("log", "debug")


def test_deployment_rollout_undo_by_json_patch_is_a_rollback(read):
    line = audit(
        "patch",
        "/apis/apps/v1/namespaces/ci/deployments/dispatcher?fieldManager=kubectl-rollout",
        {"resource": "deployments", "namespace": "ci", "name": "dispatcher", "apiGroup": "apps"},
        when="2023-03-15T03:05:00.000000Z",
        audit_id="6a7b8c9d-0001-4e4e-afaf-000000000001",
        request=[
            {
                "op": "replace",
                "path": "/spec/template",
                "value": {
                    "metadata": {"labels": {"app": "dispatcher"}},
                    "spec": {
                        "containers": [{"name": "dispatcher", "image": "ci/dispatcher:2.14.1"}]
                    },
                },
            },
            {
                "op": "replace",
                "path": "/metadata/annotations",
                "value": {"deployment.kubernetes.io/revision": "41"},
            },
        ],
    )
    (change,) = changes(read("audit.log", line + "\n"))
    assert change["change_type"] == "rollback"
    assert change["to"] == "ci/dispatcher:2.14.1" and "from" not in change
    assert change["rollout_undo"] is True


def test_cut_short_and_foreign_lines_are_unparsed_and_the_rest_loads(read):
    history = kube_proxy_history()
    lines = [*history[:3], history[3][:180], '{"msg":"not an audit event"}', *history[4:]]
    loaded = read("audit.log", text(lines))
    warnings = loaded.summary.warnings.sort("line")
    assert warnings["line"].to_list() == [4, 5]
    assert "cut short" in warnings["reason"][0]
    assert "auditID" in warnings["reason"][1]
    assert [c["change_type"] for c in changes(loaded)] == [
        "deploy",
        "upgrade",
        "rollback",
        "upgrade",
    ]
    files = loaded.summary.files.row(0, named=True)
    assert files["first_lines"] + files["unparsed_lines"] == files["lines"] == 7


def test_sniff_tells_audit_lines_from_other_json():
    lines = kube_proxy_history()
    assert sniff(lines).score >= 0.9
    assert parsers.registry.rank(lines)[0][0].name == "k8s-audit"
    assert (
        sniff(['{"ts":1678816801.123,"caller":"proxier.go:1520","msg":"Sync failed"}']).score == 0
    )


def test_container_images_from_each_request_shape():
    assert container_images(set_image("a:1")) == {"kube-proxy": "a:1"}
    assert container_images(undo("a:2")) == {"kube-proxy": "a:2"}
    assert container_images(None) == {}
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/1/image", "value": "b:3"}]
    assert container_images(patch) == {"#1": "b:3"}


ARGO_CD = "argocd-application-controller/v2.11.3+3f344d5"


def ref(resource: str, namespace: str, name: str, *, subresource: str | None = None) -> dict:
    """An ``objectRef`` as kube-apiserver writes it (the ``apps`` group for workloads)."""
    group = (
        {"apiGroup": "apps"} if resource in ("deployments", "statefulsets", "daemonsets") else {}
    )
    return {
        "resource": resource,
        "namespace": namespace,
        "name": name,
        **group,
        **({"subresource": subresource} if subresource else {}),
    }


def test_each_write_to_a_workload_or_configuration_has_the_kind_a_review_names(read):
    """Deployments, StatefulSets and DaemonSets are deployed whatever the verb, and also
    when the level left the request out; a patch of labels alone or of a pod rolls
    nothing out; ConfigMaps and Secrets are configuration from their creation on."""
    apps, core = "/apis/apps/v1/namespaces", "/api/v1/namespaces"
    ledger = {
        "kind": "StatefulSet",
        "apiVersion": "apps/v1",
        "metadata": {"name": "ledger-db", "namespace": "payments"},
        "spec": {
            "replicas": 3,
            "serviceName": "ledger-db",
            "template": {
                "metadata": {"labels": {"app": "ledger-db"}},
                "spec": {"containers": [{"name": "postgres", "image": "postgres:16.3"}]},
            },
        },
    }
    lines = [
        # Argo CD's sync at Metadata level: no request object to read
        audit(
            "patch",
            f"{apps}/storefront/deployments/cart",
            ref("deployments", "storefront", "cart"),
            when="2024-05-02T08:41:07.512000Z",
            audit_id="7d1e0c4a-0001-4a3b-8c9d-0e1f2a3b4c01",
            level="Metadata",
            user="system:serviceaccount:argocd:argocd-application-controller",
            user_agent=ARGO_CD,
        ),
        audit(
            "create",
            f"{apps}/storefront/deployments?fieldManager=kubectl-client-side-apply",
            ref("deployments", "storefront", "search-indexer"),
            when="2024-05-02T08:52:30.004000Z",
            audit_id="7d1e0c4a-0002-4a3b-8c9d-0e1f2a3b4c02",
            code=201,
            request={
                "kind": "Deployment",
                "metadata": {"name": "search-indexer"},
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "indexer", "image": "acme/indexer:3.2.0"}]}
                    }
                },
            },
        ),
        # a whole object written back (kubectl replace): the first the file shows of it
        audit(
            "update",
            f"{apps}/payments/statefulsets/ledger-db",
            ref("statefulsets", "payments", "ledger-db"),
            when="2024-05-02T09:03:12.250000Z",
            audit_id="7d1e0c4a-0003-4a3b-8c9d-0e1f2a3b4c03",
            request=ledger,
            response=ledger,
        ),
        audit(
            "patch",
            f"{apps}/payments/statefulsets/ledger-db",
            ref("statefulsets", "payments", "ledger-db"),
            when="2024-05-02T09:20:45.000000Z",
            audit_id="7d1e0c4a-0004-4a3b-8c9d-0e1f2a3b4c04",
            request={"spec": {"replicas": 5}},
        ),
        audit(
            "patch",
            f"{apps}/payments/statefulsets/ledger-db?fieldManager=kubectl-rollout",
            ref("statefulsets", "payments", "ledger-db"),
            when="2024-05-02T09:31:02.000000Z",
            audit_id="7d1e0c4a-0005-4a3b-8c9d-0e1f2a3b4c05",
            request={"spec": {"template": {"$patch": "replace", **ledger["spec"]["template"]}}},
        ),
        audit(
            "patch",
            f"{apps}/monitoring/daemonsets/node-exporter?fieldManager=kubectl-label",
            ref("daemonsets", "monitoring", "node-exporter"),
            when="2024-05-02T09:44:19.000000Z",
            audit_id="7d1e0c4a-0006-4a3b-8c9d-0e1f2a3b4c06",
            request={"metadata": {"labels": {"team": "observability"}}},
        ),
        audit(
            "patch",
            f"{apps}/monitoring/daemonsets/node-exporter?fieldManager=kubectl-rollout",
            ref("daemonsets", "monitoring", "node-exporter"),
            when="2024-05-02T09:47:00.000000Z",
            audit_id="7d1e0c4a-0007-4a3b-8c9d-0e1f2a3b4c07",
            request={
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {
                                "kubectl.kubernetes.io/restartedAt": "2024-05-02T09:47:00Z"
                            }
                        }
                    }
                }
            },
        ),
        audit(
            "patch",
            f"{core}/storefront/pods/cart-6d4cf56db6-qx8zt",
            ref("pods", "storefront", "cart-6d4cf56db6-qx8zt"),
            when="2024-05-02T09:58:33.000000Z",
            audit_id="7d1e0c4a-0008-4a3b-8c9d-0e1f2a3b4c08",
            request={"metadata": {"labels": {"quarantine": "true"}}},
        ),
        audit(
            "create",
            f"{core}/payments/secrets",
            ref("secrets", "payments", "ledger-db-credentials"),
            when="2024-05-02T10:05:00.000000Z",
            audit_id="7d1e0c4a-0009-4a3b-8c9d-0e1f2a3b4c09",
            level="Metadata",
            code=201,
        ),
    ]
    got = [(c["change_type"], c["target"]) for c in changes(read("audit.log", text(lines)))]
    assert got == [
        ("deploy", "deployment/storefront/cart"),
        ("deploy", "deployment/storefront/search-indexer"),
        ("deploy", "statefulset/payments/ledger-db"),
        ("scale", "statefulset/payments/ledger-db"),
        ("rollback", "statefulset/payments/ledger-db"),
        ("other", "daemonset/monitoring/node-exporter"),
        ("restart", "daemonset/monitoring/node-exporter"),
        ("other", "pod/storefront/cart-6d4cf56db6-qx8zt"),
        ("config", "secret/payments/ledger-db-credentials"),
    ]


HELM = "Helm/3.13.2"


def release_record(revision: int, status: str) -> dict:
    """Helm's record of one revision of a release, as a Secret logged whole."""
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {
            "name": f"sh.helm.release.v1.rabbitmq.v{revision}",
            "namespace": "messaging",
            "labels": {
                "name": "rabbitmq",
                "owner": "helm",
                "status": status,
                "version": str(revision),
            },
        },
        "type": "helm.sh/release.v1",
    }


def test_helm_writes_are_changes_that_name_their_release(read):
    """Whatever Helm writes is a part of a release's upgrade, a Service too (a person's own
    Service patch with kubectl is a change of its own, no part of the release). Helm's
    record of a revision names the release and the revision, and its status where it was
    logged (pending-rollback: a rollback); an object logged whole names its release by its
    annotation."""
    core = "/api/v1/namespaces/messaging"
    annotated = {
        "metadata": {
            "name": "rabbitmq",
            "namespace": "messaging",
            "annotations": {
                "meta.helm.sh/release-name": "rabbitmq",
                "meta.helm.sh/release-namespace": "messaging",
            },
        }
    }
    lines = [
        audit(
            "create",
            f"{core}/secrets",
            ref("secrets", "messaging", "sh.helm.release.v1.rabbitmq.v4"),
            when="2024-06-03T11:02:40.101000Z",
            audit_id="5e0c1f7a-0001-4d2e-9a3b-6c7d8e9f0a01",
            level="Metadata",
            code=201,
            user_agent=HELM,
        ),
        audit(
            "patch",
            f"{core}/services/rabbitmq?fieldManager=helm",
            ref("services", "messaging", "rabbitmq"),
            when="2024-06-03T11:02:40.388000Z",
            audit_id="5e0c1f7a-0002-4d2e-9a3b-6c7d8e9f0a02",
            user_agent=HELM,
            request={"spec": {"ports": [{"name": "amqp", "port": 5672}]}},
            response={"kind": "Service", **annotated},
        ),
        audit(
            "patch",
            f"{core}/services/rabbitmq?fieldManager=kubectl-edit",
            ref("services", "messaging", "rabbitmq"),
            when="2024-06-03T11:05:00.000000Z",
            audit_id="5e0c1f7a-0003-4d2e-9a3b-6c7d8e9f0a03",
            request={"spec": {"sessionAffinity": "ClientIP"}},
        ),
        audit(
            "update",
            f"{core}/secrets/sh.helm.release.v1.rabbitmq.v3",
            ref("secrets", "messaging", "sh.helm.release.v1.rabbitmq.v3"),
            when="2024-06-03T11:02:41.720000Z",
            audit_id="5e0c1f7a-0004-4d2e-9a3b-6c7d8e9f0a04",
            user_agent=HELM,
            request=release_record(3, "superseded"),
            response=release_record(3, "superseded"),
        ),
        audit(
            "create",
            f"{core}/secrets",
            ref("secrets", "messaging", "sh.helm.release.v1.rabbitmq.v5"),
            when="2024-06-03T12:30:02.500000Z",
            audit_id="5e0c1f7a-0005-4d2e-9a3b-6c7d8e9f0a05",
            code=201,
            user_agent="helm/v0.0.0 (linux/amd64) kubernetes/$Format",
            request=release_record(5, "pending-rollback"),
            response=release_record(5, "pending-rollback"),
        ),
    ]
    loaded = read("audit.log", text(lines))
    got = {(c["target"], c["verb"], c.get("by_helm", False)): c for c in changes(loaded)}
    assert set(got) == {
        ("secret/messaging/sh.helm.release.v1.rabbitmq.v4", "create", True),
        ("service/messaging/rabbitmq", "patch", True),
        ("service/messaging/rabbitmq", "patch", False),
        ("secret/messaging/sh.helm.release.v1.rabbitmq.v3", "update", True),
        ("secret/messaging/sh.helm.release.v1.rabbitmq.v5", "create", True),
    }
    created = got[("secret/messaging/sh.helm.release.v1.rabbitmq.v4", "create", True)]
    assert created["change_type"] == "config" and created["by_helm"]
    assert (created["helm_release"], created["helm_revision"]) == ("rabbitmq", 4)
    assert "helm_status" not in created
    service = got[("service/messaging/rabbitmq", "patch", True)]
    assert service["change_type"] == "config" and service["helm_release"] == "rabbitmq"
    edited = got[("service/messaging/rabbitmq", "patch", False)]
    assert (edited["change_type"], edited["actor"]) == ("config", "kubernetes-admin")
    assert edited["field_manager"] == "kubectl-edit" and "helm_release" not in edited
    superseded = got[("secret/messaging/sh.helm.release.v1.rabbitmq.v3", "update", True)]
    assert superseded["helm_status"] == "superseded" and superseded["helm_revision"] == 3
    rollback = got[("secret/messaging/sh.helm.release.v1.rabbitmq.v5", "create", True)]
    assert rollback["change_type"] == "rollback" and rollback["by_helm"]
    assert "Helm release rabbitmq revision 5 pending-rollback" in rollback["_row"]["message"]
    assert loaded.events.filter(pl.col("kind") == "log").height == 0


REAL = Path(__file__).parent / "data" / "real" / "k8s-audit"


def test_real_audit_events_without_their_api_version_are_audit_events():
    """Events a minikube API server sent Falco's audit webhook in 2018, one a line as
    falcosecurity/falco keeps them (``test/trace_files/k8s_audit``): no ``apiVersion`` of
    their own (the webhook's ``EventList`` carried it), ``timestamp`` beside the stage
    times. They are audit events (a Deployment created and deleted as changes, an exec as
    a debug row at ``stageTimestamp``), where they were read as a change log's JSON of
    changes of kind ``other``."""
    path = REAL / "minikube-v1beta1.jsonl"
    assert sniff(path.read_text().splitlines()).score > 0.9
    loaded = read_real(path)
    assert loaded.summary.files["format"].to_list() == ["k8s-audit"]
    rows = loaded.events.sort("line")
    assert rows["line"].to_list() == [1, 2, 3]
    assert set(rows["source"]) == {"k8s-audit"}
    assert rows["kind"].to_list() == ["change", "change", "log"]
    assert rows["level"].to_list() == ["info", "info", "debug"]
    assert rows["ts"].to_list() == [
        datetime(2018, 10, 26, 13, 7, 36, 911442, tzinfo=UTC),
        datetime(2018, 10, 26, 13, 9, 27, 548380, tzinfo=UTC),
        datetime(2018, 10, 26, 13, 38, 34, 902914, tzinfo=UTC),
    ]
    created, deleted, _exec = (json.loads(a) for a in rows["attrs"])
    assert (created["change_type"], created["target"]) == (
        "deploy",
        "deployment/default/nginx-deployment",
    )
    assert (deleted["change_type"], deleted["actor"]) == ("delete", "minikube-user")


JANE = "jane@corp.example"
KUBECTL_128 = "kubectl/v1.28.2 (linux/amd64) kubernetes/89a4ea3"
CONTROLLER_MANAGER = "kube-controller-manager/v1.28.2 (linux/amd64) kubernetes/89a4ea3/"
NETPOL_URI = "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies"
WEBHOOK_URI = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"

DENY_EGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny-egress", "namespace": "shop"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "checkout"}},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "postgres"}}}]}],
    },
}
POLICY_WEBHOOK = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "ValidatingWebhookConfiguration",
    "metadata": {"name": "policy-webhook"},
    "webhooks": [
        {
            "name": "validate.policy.corp.example",
            "failurePolicy": "Fail",
            "clientConfig": {"service": {"name": "policy", "namespace": "policy-system"}},
            "rules": [
                {
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE"],
                    "resources": ["pods"],
                }
            ],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        }
    ],
}


def group_ref(resource: str, group: str, name: str, namespace: str | None = None, **more) -> dict:
    """An ``objectRef`` of a resource outside the core and apps groups."""
    return {
        "resource": resource,
        **({"namespace": namespace} if namespace else {}),
        "name": name,
        "apiGroup": group,
        **more,
    }


def test_a_persons_and_a_deployers_writes_to_policies_webhooks_and_roles_are_changes(read):
    """A NetworkPolicy applied, an admission webhook created, a ClusterRoleBinding deleted,
    a Job started by a person; an HPA lowered by Argo CD: each is a change naming its kind,
    namespace (none for cluster-scoped objects) and name, by whom it was made."""
    lines = [
        audit(
            "patch",
            f"{NETPOL_URI}/deny-egress?fieldManager=kubectl-client-side-apply",
            group_ref("networkpolicies", "networking.k8s.io", "deny-egress", "shop"),
            when="2024-09-12T14:02:31.118000Z",
            audit_id="a1c3e5f7-0001-4b2d-8e6f-1a2b3c4d5e01",
            user=JANE,
            user_agent=KUBECTL_128,
            request={
                "metadata": {
                    "annotations": {
                        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(DENY_EGRESS)
                    }
                },
                "spec": DENY_EGRESS["spec"],
            },
            response=DENY_EGRESS,
        ),
        audit(
            "create",
            f"{WEBHOOK_URI}?fieldManager=kubectl-client-side-apply",
            group_ref("validatingwebhookconfigurations", "admissionregistration.k8s.io", ""),
            when="2024-09-12T14:05:00.400000Z",
            audit_id="a1c3e5f7-0002-4b2d-8e6f-1a2b3c4d5e02",
            user=JANE,
            user_agent=KUBECTL_128,
            code=201,
            request=POLICY_WEBHOOK,
            response=POLICY_WEBHOOK,
        ),
        audit(
            "delete",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/external-dns-viewer",
            group_ref("clusterrolebindings", "rbac.authorization.k8s.io", "external-dns-viewer"),
            when="2024-09-12T14:07:12.000000Z",
            audit_id="a1c3e5f7-0003-4b2d-8e6f-1a2b3c4d5e03",
            level="Metadata",
            user=JANE,
            user_agent=KUBECTL_128,
        ),
        audit(
            "patch",
            "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/checkout"
            "?fieldManager=argocd-controller",
            group_ref("horizontalpodautoscalers", "autoscaling", "checkout", "shop"),
            when="2024-09-12T14:09:45.000000Z",
            audit_id="a1c3e5f7-0004-4b2d-8e6f-1a2b3c4d5e04",
            user="system:serviceaccount:argocd:argocd-application-controller",
            user_agent=ARGO_CD,
            request={"spec": {"maxReplicas": 2}},
        ),
        audit(
            "create",
            "/apis/batch/v1/namespaces/shop/jobs?fieldManager=kubectl-create",
            group_ref("jobs", "batch", "reindex-manual-7x2", "shop"),
            when="2024-09-12T14:11:00.000000Z",
            audit_id="a1c3e5f7-0005-4b2d-8e6f-1a2b3c4d5e05",
            level="Metadata",
            user=JANE,
            user_agent=KUBECTL_128,
            code=201,
        ),
    ]
    got = changes(read("audit.log", text(lines)))
    assert [(c["change_type"], c["target"], c["actor"]) for c in got] == [
        ("config", "networkpolicy/shop/deny-egress", JANE),
        ("config", "validatingwebhookconfiguration/policy-webhook", JANE),
        ("delete", "clusterrolebinding/external-dns-viewer", JANE),
        (
            "config",
            "horizontalpodautoscaler/shop/checkout",
            "system:serviceaccount:argocd:argocd-application-controller",
        ),
        ("create", "job/shop/reindex-manual-7x2", JANE),
    ]
    netpol = got[0]
    assert netpol["field_manager"] == "kubectl-client-side-apply"
    assert netpol["resource"] == "networkpolicies" and netpol["verb"] == "patch"
    assert netpol["_row"]["level"] == "info" and netpol["_row"]["host"] is None
    assert netpol["_row"]["message"] == (
        "config networkpolicy/shop/deny-egress (patch by jane@corp.example)"
    )
    assert netpol["_row"]["template"] == "config networkpolicy"


def test_controllers_keeping_objects_up_to_date_make_no_changes(read):
    """What the cluster writes on its own all day: an HPA's status, endpoints and leases,
    cert-manager's CA injector patching a webhook's caBundle, the Cilium operator
    re-applying its CRDs, the CronJob controller's Jobs. A caBundle-only patch is no
    change even sent with kubectl by a rotation job's account."""
    ca_bundle = {
        "webhooks": [
            {
                "name": "validate.policy.corp.example",
                "clientConfig": {"caBundle": "LS0tLS1CRUdJTg=="},
            }
        ]
    }
    lines = [
        audit(
            "update",
            "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/checkout/status",
            group_ref(
                "horizontalpodautoscalers", "autoscaling", "checkout", "shop", subresource="status"
            ),
            when="2024-09-12T14:00:15.000000Z",
            audit_id="b2d4f6a8-0001-4c3e-9f7a-2b3c4d5e6f01",
            level="Metadata",
            user="system:serviceaccount:kube-system:horizontal-pod-autoscaler",
            user_agent=CONTROLLER_MANAGER
            + "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
        ),
        audit(
            "update",
            "/api/v1/namespaces/shop/endpoints/checkout",
            {"resource": "endpoints", "namespace": "shop", "name": "checkout"},
            when="2024-09-12T14:00:16.000000Z",
            audit_id="b2d4f6a8-0002-4c3e-9f7a-2b3c4d5e6f02",
            level="Metadata",
            user="system:serviceaccount:kube-system:endpoint-controller",
            user_agent=CONTROLLER_MANAGER + "system:serviceaccount:kube-system:endpoint-controller",
        ),
        audit(
            "update",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager",
            group_ref("leases", "coordination.k8s.io", "kube-controller-manager", "kube-system"),
            when="2024-09-12T14:00:17.000000Z",
            audit_id="b2d4f6a8-0003-4c3e-9f7a-2b3c4d5e6f03",
            level="Metadata",
            user="system:kube-controller-manager",
            user_agent=CONTROLLER_MANAGER + "leader-election",
        ),
        audit(
            "patch",
            f"{WEBHOOK_URI}/policy-webhook",
            group_ref(
                "validatingwebhookconfigurations", "admissionregistration.k8s.io", "policy-webhook"
            ),
            when="2024-09-12T14:00:18.000000Z",
            audit_id="b2d4f6a8-0004-4c3e-9f7a-2b3c4d5e6f04",
            user="system:serviceaccount:cert-manager:cert-manager-cainjector",
            user_agent="cainjector/v1.13.2 (linux/amd64) cert-manager/0e5f5d9f5a",
            request=ca_bundle,
        ),
        audit(
            "update",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/ciliumnetworkpolicies.cilium.io",
            group_ref(
                "customresourcedefinitions",
                "apiextensions.k8s.io",
                "ciliumnetworkpolicies.cilium.io",
            ),
            when="2024-09-12T14:00:19.000000Z",
            audit_id="b2d4f6a8-0005-4c3e-9f7a-2b3c4d5e6f05",
            level="Metadata",
            user="system:serviceaccount:kube-system:cilium-operator",
            user_agent="cilium-operator-generic/v1.14.5 (linux/amd64) kubernetes/$Format",
        ),
        audit(
            "create",
            "/apis/batch/v1/namespaces/batch/jobs",
            group_ref("jobs", "batch", "cache-warmer-28771200", "batch"),
            when="2024-09-12T14:00:20.000000Z",
            audit_id="b2d4f6a8-0006-4c3e-9f7a-2b3c4d5e6f06",
            level="Metadata",
            user="system:serviceaccount:kube-system:cronjob-controller",
            user_agent=CONTROLLER_MANAGER + "system:serviceaccount:kube-system:cronjob-controller",
            code=201,
        ),
        audit(
            "patch",
            f"{WEBHOOK_URI}/policy-webhook",
            group_ref(
                "validatingwebhookconfigurations", "admissionregistration.k8s.io", "policy-webhook"
            ),
            when="2024-09-12T14:00:21.000000Z",
            audit_id="b2d4f6a8-0007-4c3e-9f7a-2b3c4d5e6f07",
            user="system:serviceaccount:policy-system:cert-rotator",
            user_agent=KUBECTL_128,
            request=[
                {
                    "op": "replace",
                    "path": "/webhooks/0/clientConfig/caBundle",
                    "value": "LS0tLS1CRUdJTg==",
                }
            ],
        ),
    ]
    loaded = read("audit.log", text(lines))
    events = loaded.events.sort("line")
    assert events["kind"].to_list() == ["log"] * 7
    assert events["template"].to_list() == [
        "update horizontalpodautoscalers/status 200",
        "update endpoints 200",
        "update leases 200",
        "patch validatingwebhookconfigurations 200",
        "update customresourcedefinitions 200",
        "create jobs 201",
        "patch validatingwebhookconfigurations 200",
    ]
    assert loaded.summary.unparsed_lines == 0


def test_a_webhook_patch_that_writes_more_than_its_ca_bundle_is_a_change(read):
    """The same webhook patched by a person to fail closed, and a caBundle sent along with
    a new failure policy by a rotation job: both change what admission does."""
    ref_ = group_ref(
        "validatingwebhookconfigurations", "admissionregistration.k8s.io", "policy-webhook"
    )
    lines = [
        audit(
            "patch",
            f"{WEBHOOK_URI}/policy-webhook?fieldManager=kubectl-patch",
            ref_,
            when="2024-09-12T15:00:00.000000Z",
            audit_id="c3e5a7b9-0001-4d4f-8a8b-3c4d5e6f7a01",
            user=JANE,
            user_agent=KUBECTL_128,
            request=[{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Fail"}],
        ),
        audit(
            "patch",
            f"{WEBHOOK_URI}/policy-webhook",
            ref_,
            when="2024-09-12T15:10:00.000000Z",
            audit_id="c3e5a7b9-0002-4d4f-8a8b-3c4d5e6f7a02",
            user="system:serviceaccount:policy-system:cert-rotator",
            user_agent=KUBECTL_128,
            request={
                "webhooks": [
                    {
                        "name": "validate.policy.corp.example",
                        "failurePolicy": "Ignore",
                        "clientConfig": {"caBundle": "LS0tLS1CRUdJTg=="},
                    }
                ]
            },
        ),
    ]
    got = changes(read("audit.log", text(lines)))
    assert [(c["change_type"], c["target"], c["actor"]) for c in got] == [
        ("config", "validatingwebhookconfiguration/policy-webhook", JANE),
        (
            "config",
            "validatingwebhookconfiguration/policy-webhook",
            "system:serviceaccount:policy-system:cert-rotator",
        ),
    ]


def test_a_refused_write_to_a_policy_is_a_failed_change_as_any_refused_write(read):
    """A person's NetworkPolicy patch the API server refused (RBAC's 403, a 422 for an
    invalid spec) is kept as every refused write is: a change marked failed, at warning."""
    ref_ = group_ref("networkpolicies", "networking.k8s.io", "deny-egress", "shop")
    refused = [
        (403, "Forbidden", 'networkpolicies.networking.k8s.io "deny-egress" is forbidden'),
        (422, "Invalid", 'NetworkPolicy.networking.k8s.io "deny-egress" is invalid'),
    ]
    lines = [
        audit(
            "patch",
            f"{NETPOL_URI}/deny-egress?fieldManager=kubectl-client-side-apply",
            ref_,
            when=f"2024-09-12T16:0{i}:00.000000Z",
            audit_id=f"d4f6b8c0-000{i}-4e5a-9b9c-4d5e6f7a8b0{i}",
            user=JANE,
            user_agent=KUBECTL_128,
            code=code,
            status={"status": "Failure", "message": message, "reason": reason},
            request={"spec": DENY_EGRESS["spec"]},
        )
        for i, (code, reason, message) in enumerate(refused)
    ]
    got = changes(read("audit.log", text(lines)))
    assert [(c["target"], c["failed"], c["code"], c["_row"]["level"]) for c in got] == [
        ("networkpolicy/shop/deny-egress", True, 403, "warning"),
        ("networkpolicy/shop/deny-egress", True, 422, "warning"),
    ]
    assert got[0]["_row"]["template"] == "config networkpolicy failed"
