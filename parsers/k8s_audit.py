"""Kubernetes API server audit log: JSON lines of ``audit.k8s.io/v1`` ``Event``.

Each request is logged once per stage (``RequestReceived``, ``ResponseStarted``,
``ResponseComplete``, ``Panic``), all with the same ``auditID``. A request that writes
(``create``, ``update``, ``patch``, ``delete``, ``deletecollection``) to a workload
(deployments, daemonsets, statefulsets, replicasets, pods), to configuration (configmaps,
secrets) or to a node is a *change*: its ``ResponseComplete`` line (or ``Panic``, or the
last stage the file holds for it) becomes a row with ``kind = change``. So is a write
Helm sends (its user agent, :data:`HELM_AGENT`) to any object of a chart, a Service or a
ServiceAccount too: it is a part of a release's upgrade, and the analysis lists every
part. Every other line, reads (``get``, ``list``, ``watch``) and the other stages
included, becomes an ordinary row at debug level, so it is counted and never lost.

Outages are also caused by writes to the objects around the workloads
(:data:`WATCHED_GROUPS`): a NetworkPolicy that cuts a namespace off from DNS, an admission
webhook that is down and fails closed, a Service's selector, an HPA's maximum, a removed
RBAC rule, a person's Job. The cluster's own controllers write many of them all day (HPA
status, a cert injector's ``caBundle``, an operator's own CRDs), so a write to one of
them is a change only when a person made it (a user that is no account of the cluster's
own, :data:`CLUSTER_ACCOUNT`) or a deployer sent it (kubectl, Helm, a GitOps agent, an IaC
tool: :data:`DEPLOYER_AGENT`). A patch of an admission webhook's ``caBundle`` alone is
certificate rotation, never a change, whoever sends it.

What kind of change a write is follows from the object and the request: to a
Deployment, DaemonSet or StatefulSet, a create, an update or a patch is a deploy (also
when the log level left the request out, as Argo CD's and Helm's patches are often
logged), a new image an upgrade or rollback, ``kubectl rollout undo`` a rollback,
``kubectl rollout restart`` (the ``restartedAt`` annotation) a restart, the ``scale``
subresource or a patch of the replica count alone a scale, and a patch of labels or
annotations alone another change; to a ConfigMap or Secret, a config change; a cordon
of a node another change; a delete or an eviction a delete. A CronJob or Job is read as
a workload; a write to the other watched objects (a policy, a webhook, a Service, a
role) is a config change.

Helm keeps each revision of a release in a Secret (a ConfigMap with
``HELM_DRIVER=configmap``) named ``sh.helm.release.v1.RELEASE.vN``, labelled with its
``status``. Such a write says ``helm_release``, ``helm_revision`` and, where the object was
logged, ``helm_status``; one labelled ``pending-rollback`` is a rollback. An object of a
chart logged whole names its release in its ``meta.helm.sh/release-name`` annotation,
kept as ``helm_release``; a write Helm sent says ``by_helm``. The analysis puts the parts
of one ``helm upgrade`` together.

An image set in the request (``requestObject``, logged at ``Request`` and
``RequestResponse`` level: a whole object, a strategic merge patch or a JSON patch) is
the change's ``to``. Its ``from`` is the last image the file showed for the same
container of the same object, so the change reads as an upgrade or a rollback by the
image tags' versions. ``kubectl rollout undo`` patches the whole pod template: when no
earlier image is known it is still a rollback. A request the server refused
(``responseStatus.code`` >= 400) is marked ``failed`` at level warning, and does not
move the last known image.

A write to a node whose object carries a pool's label (an EKS node group's, GKE's node
pool's, an AKS agent pool's) names that pool as ``node_pool``: EKS node names do not.

Lines are decoded as whole columns with polars; only the change rows (few) are walked in
Python to read their request objects and carry the last known image forward.
"""

from __future__ import annotations

import json
import re

import polars as pl

from parsers import json_text, registry
from parsers.changes_common import POOL_LABELS, change_attrs, compare_versions, dumps, image_tag
from parsers.common import json_object, records
from parsers.registry import Parser, Sample, Score

NAME = "k8s-audit"
DESCRIPTION = (
    "Kubernetes API server audit log (audit.k8s.io/v1 Events: JSON lines, EventList "
    "batches, pretty-printed)"
)

MUTATING = ("create", "update", "patch", "delete", "deletecollection")
READS = ("get", "list", "watch")
FINAL_STAGES = ("ResponseComplete", "Panic")

#: Resources whose every write is a change (the controllers' echoes of a rollout, a pod
#: created or a node's label, are grouped with it by the analysis), by what they are, each
#: with the kind a target names it by.
CHANGED_BY_ANYONE: dict[str, dict[str, str]] = {
    "workloads": {
        "deployments": "deployment",
        "daemonsets": "daemonset",
        "statefulsets": "statefulset",
        "replicasets": "replicaset",
        "pods": "pod",
    },
    "configuration": {"configmaps": "configmap", "secrets": "secret"},
    "nodes": {"nodes": "node"},
}
#: Resources whose writes are changes when a person or a deployer makes them (controllers
#: keep them up to date all day), by what they are; whatever the API group (Kubernetes',
#: Cilium's and Calico's ``networkpolicies``, Gateway API's and Istio's ``gateways``).
WATCHED_GROUPS: dict[str, dict[str, str]] = {
    "batch": {"cronjobs": "cronjob", "jobs": "job"},
    "network": {
        "services": "service",
        "ingresses": "ingress",
        "ingressclasses": "ingressclass",
        "networkpolicies": "networkpolicy",
        "ciliumnetworkpolicies": "ciliumnetworkpolicy",
        "ciliumclusterwidenetworkpolicies": "ciliumclusterwidenetworkpolicy",
        "globalnetworkpolicies": "globalnetworkpolicy",
        "httproutes": "httproute",
        "grpcroutes": "grpcroute",
        "gateways": "gateway",
        "virtualservices": "virtualservice",
        "destinationrules": "destinationrule",
        "peerauthentications": "peerauthentication",
        "authorizationpolicies": "authorizationpolicy",
    },
    "admission": {
        "validatingwebhookconfigurations": "validatingwebhookconfiguration",
        "mutatingwebhookconfigurations": "mutatingwebhookconfiguration",
        "validatingadmissionpolicies": "validatingadmissionpolicy",
        "validatingadmissionpolicybindings": "validatingadmissionpolicybinding",
    },
    "access": {
        "roles": "role",
        "rolebindings": "rolebinding",
        "clusterroles": "clusterrole",
        "clusterrolebindings": "clusterrolebinding",
        "serviceaccounts": "serviceaccount",
    },
    "scheduling": {
        "horizontalpodautoscalers": "horizontalpodautoscaler",
        "poddisruptionbudgets": "poddisruptionbudget",
        "resourcequotas": "resourcequota",
        "limitranges": "limitrange",
        "priorityclasses": "priorityclass",
        "runtimeclasses": "runtimeclass",
    },
    "extensions": {
        "customresourcedefinitions": "customresourcedefinition",
        "storageclasses": "storageclass",
    },
}
#: Resources whose writes are changes, and the kind a target names them by.
CHANGE_RESOURCES = {
    resource: kind
    for groups in (CHANGED_BY_ANYONE, WATCHED_GROUPS)
    for group in groups.values()
    for resource, kind in group.items()
}
#: The watched resources (:data:`WATCHED_GROUPS`) a person or a deployer changes.
WATCHED = tuple(r for group in WATCHED_GROUPS.values() for r in group)
#: Watched resources whose writes are settings of the cluster: a config change.
SETTINGS = tuple(r for g, group in WATCHED_GROUPS.items() if g != "batch" for r in group)
#: The admission webhooks, whose ``caBundle`` cert injectors patch every few minutes.
WEBHOOKS = ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")
#: The cluster's own accounts: its controllers, nodes and service accounts (``system:``)
#: and EKS's own components (``eks:addon-manager``, ``eks:node-manager``).
CLUSTER_ACCOUNT = r"^(?:system|eks):"
#: The clients of people and of deployers: kubectl (``kubectl/v1.28.2 (linux/amd64)
#: kubernetes/89a4ea3``; ``kubectl.exe`` on Windows), Helm and Flux's helm-controller,
#: Argo CD, Flux's kustomize-controller, Terraform's and Pulumi's Kubernetes providers.
#: A CI pipeline's or GitOps' account writes through one of them; a controller does not.
DEPLOYER_AGENT = (
    r"(?i)^(?:kubectl(?:\.exe)?/|helm(?:-controller)?/|argocd-|kustomize-controller/|pulumi)"
    r"|Terraform/"
)
#: The user agents of Helm: ``Helm/3.13.2`` (``version.GetUserAgent()``), ``helm/v0.0.0
#: (linux/amd64) kubernetes/$Format`` (client-go's default, named after the binary, before
#: Helm set its own) and Flux's ``helm-controller/...`` (the same default). Their writes to
#: any object are changes.
HELM_AGENT = r"(?i)^helm(?:-controller)?/"
#: Helm's record of one revision of a release.
HELM_RECORD = re.compile(r"^sh\.helm\.release\.v1\.(?P<release>.+)\.v(?P<revision>[0-9]+)$")
#: The annotation Helm puts on every object of a release, naming it.
HELM_RELEASE_ANNOTATION = "meta.helm.sh/release-name"
#: Subresources whose writes are changes (a status update is not one).
CHANGE_SUBRESOURCES = ("scale", "eviction")
#: Kinds whose writes change configuration, whatever the verb (a delete aside).
CONFIGURATION = ("configmap", "secret")
#: Kinds whose creation rolls a program out: a new Deployment is a deploy, a new pod (the
#: controllers' echo of a rollout) or ReplicaSet a create.
ROLLED_OUT = ("deployment", "daemonset", "statefulset")

_STRING = pl.String
_EVENT = pl.Struct(
    {
        "kind": _STRING,
        "apiVersion": _STRING,
        "level": _STRING,
        "auditID": _STRING,
        "stage": _STRING,
        "requestURI": _STRING,
        "verb": _STRING,
        "user": pl.Struct({"username": _STRING}),
        "impersonatedUser": pl.Struct({"username": _STRING}),
        "userAgent": _STRING,
        "objectRef": pl.Struct(
            {
                "resource": _STRING,
                "namespace": _STRING,
                "name": _STRING,
                "apiGroup": _STRING,
                "subresource": _STRING,
            }
        ),
        "responseStatus": pl.Struct({"code": pl.Int64, "reason": _STRING, "message": _STRING}),
        "requestReceivedTimestamp": _STRING,
        "stageTimestamp": _STRING,
    }
)
#: The decoded fields as flat columns, with the JSON path each comes from.
_FIELDS = {
    "audit_kind": "$.kind",
    "api_version": "$.apiVersion",
    "audit_level": "$.level",
    "audit_id": "$.auditID",
    "stage": "$.stage",
    "uri": "$.requestURI",
    "verb": "$.verb",
    "user": "$.user.username",
    "impersonated": "$.impersonatedUser.username",
    "user_agent": "$.userAgent",
    "resource": "$.objectRef.resource",
    "namespace": "$.objectRef.namespace",
    "name": "$.objectRef.name",
    "api_group": "$.objectRef.apiGroup",
    "subresource": "$.objectRef.subresource",
    "code": "$.responseStatus.code",
    "status_reason": "$.responseStatus.reason",
    "status_message": "$.responseStatus.message",
    "received": "$.requestReceivedTimestamp",
    "stage_ts": "$.stageTimestamp",
}
_RFC3339_UTC = "%Y-%m-%dT%H:%M:%S%.fZ"

_PATCH_SET_IMAGE = (
    '{"spec":{"template":{"spec":{"containers":[{"image":"602401143452.dkr.ecr.us-east-1.'
    'amazonaws.com/eks/kube-proxy:v1.24.10-minimal-eksbuild.2","name":"kube-proxy"}]}}}}'
)
SAMPLES = (
    Sample(
        text=(
            '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse",'
            '"auditID":"3f1c2b9e-7a4d-4c1e-9b2a-5d6e7f8a9b0c","stage":"ResponseComplete",'
            '"requestURI":"/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy?'
            'fieldManager=kubectl-set","verb":"patch","user":{"username":"kubernetes-admin",'
            '"groups":["system:masters","system:authenticated"]},"sourceIPs":["10.0.12.7"],'
            '"userAgent":"kubectl/v1.24.10 (linux/amd64) kubernetes/5c1d2d4","objectRef":'
            '{"resource":"daemonsets","namespace":"kube-system","name":"kube-proxy",'
            '"apiGroup":"apps","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},'
            f'"requestObject":{_PATCH_SET_IMAGE},'
            '"requestReceivedTimestamp":"2023-03-14T17:40:02.118462Z",'
            '"stageTimestamp":"2023-03-14T17:40:02.131877Z","annotations":'
            '{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}\n'
        ),
        expect={
            "kind": "change",
            "level": "info",
            "ts": "2023-03-14T17:40:02.131877+00:00",
            "attrs.change_type": "deploy",
            "attrs.target": "daemonset/kube-system/kube-proxy",
            "attrs.to": (
                "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy:"
                "v1.24.10-minimal-eksbuild.2"
            ),
            "attrs.actor": "kubernetes-admin",
            "attrs.inferred": False,
        },
        rows=1,
    ),
    Sample(
        text=(
            '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",'
            '"auditID":"9b2e4f60-1c3d-4e5f-8a7b-0c1d2e3f4a5b","stage":"ResponseComplete",'
            '"requestURI":"/api/v1/namespaces/kube-system/pods/kube-proxy-x7k2p","verb":"get",'
            '"user":{"username":"system:node:ip-10-0-1-5.ec2.internal","groups":'
            '["system:nodes","system:authenticated"]},"sourceIPs":["10.0.1.5"],'
            '"userAgent":"kubelet/v1.24.10 (linux/amd64) kubernetes/5c1d2d4","objectRef":'
            '{"resource":"pods","namespace":"kube-system","name":"kube-proxy-x7k2p",'
            '"apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},'
            '"requestReceivedTimestamp":"2023-03-14T18:00:01.004512Z",'
            '"stageTimestamp":"2023-03-14T18:00:01.006127Z","annotations":'
            '{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}\n'
            '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",'
            '"auditID":"c4d5e6f7-0a1b-4c2d-9e3f-4a5b6c7d8e9f","stage":"ResponseComplete",'
            '"requestURI":"/api/v1/namespaces/kube-system/configmaps/coredns","verb":"update",'
            '"user":{"username":"eks:addon-manager","groups":["system:authenticated"]},'
            '"sourceIPs":["10.0.0.2"],"userAgent":"eks-addon-manager/v1.24.0",'
            '"objectRef":{"resource":"configmaps","namespace":"kube-system","name":"coredns",'
            '"uid":"0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a","apiVersion":"v1",'
            '"resourceVersion":"7741"},"responseStatus":{"metadata":{},"status":"Failure",'
            '"message":"Operation cannot be fulfilled on configmaps \\"coredns\\": the object '
            'has been modified; please apply your changes to the latest version and try again",'
            '"reason":"Conflict","details":{"name":"coredns","kind":"configmaps"},"code":409},'
            '"requestReceivedTimestamp":"2023-03-14T20:02:11.220871Z",'
            '"stageTimestamp":"2023-03-14T20:02:11.224002Z","annotations":'
            '{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}\n'
        ),
        expect={
            "kind": "log",
            "level": "debug",
            "host": None,
            "template": "get pods 200",
            "attrs.verb": "get",
            "attrs.user": "system:node:ip-10-0-1-5.ec2.internal",
        },
        rows=2,
    ),
)


#: Every audit event names its API group in ``apiVersion``.
AUDIT_LITERAL = "audit.k8s.io/"
#: The keys every audit event has, whatever its ``apiVersion``: the events of an audit
#: webhook's ``EventList`` name none of their own, and are saved so, one a line.
AUDIT_KEYS = ('"auditID"', '"stage"', '"requestURI"', '"verb"', '"user"')
#: How sure an event without its ``apiVersion`` is, below one that names it and above a
#: change log's JSON (``time``, ``type``), which such an event also looks like.
KEYED_SCORE = 0.95


def sniff(sample: list[str]) -> Score:
    """Audit events are JSON lines naming ``audit.k8s.io`` and carrying an ``auditID``
    (pretty-printed JSON and ``EventList`` batches are read as their events), or, without
    an ``apiVersion``, carrying every key of :data:`AUDIT_KEYS`."""
    sample = json_text.compact_sample(sample)
    if not any(AUDIT_LITERAL in s for s in sample):
        line = pl.col("line")
        keyed = line.str.contains(r"^\s*\{")
        for key in AUDIT_KEYS:
            keyed = keyed & line.str.contains(key, literal=True)
        share = registry.shares_of(sample, {"keyed": keyed})["keyed"]
        if share == 0.0:
            return Score(0.0, "no audit.k8s.io apiVersion in the sample")
        return Score(
            KEYED_SCORE * share,
            f"{share:.0%} of sample lines are audit events without their apiVersion "
            "(auditID, stage, requestURI, verb, user)",
        )
    share = registry.share_matching(
        sample, r'^\s*\{.*"apiVersion":\s*"audit\.k8s\.io/v1(?:beta1)?".*"auditID":'
    )
    if share == 0.0:
        share = registry.share_matching(sample, r'^\s*\{.*"auditID":\s*"') * 0.9
    return Score(share, f"{share:.0%} of sample lines are audit.k8s.io Event JSON lines")


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Audit events as rows: writes to workloads, configuration and nodes as changes,
    everything else as debug rows; unreadable lines as unparsed records."""
    lines = json_text.compact_lines(lines)
    frame = lines.select("line", "end_line", "text", "prefix_ts").collect()
    decoded, bad = _decode(frame)
    decoded = _without_ca_bundle_rotations(_classify(decoded))
    rows = [
        _log_records(decoded.filter(~pl.col("is_change")).lazy()),
        _change_records(decoded.filter(pl.col("is_change"))),
        _unparsed_records(bad.lazy()),
    ]
    return pl.concat(rows, how="vertical").sort("line")


# --- decoding ---------------------------------------------------------------------------


def _decode(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Decoded audit events, and the lines that are not one (with why)."""
    looks_whole = pl.col("text").str.contains(r"^\s*\{.*\}\s*$")
    candidates = frame.filter(looks_whole)
    try:
        decoded = _decode_struct(candidates)
    except pl.exceptions.PolarsError:
        valid = candidates.filter(pl.col("text").str.json_path_match("$.auditID").is_not_null())
        try:
            decoded = _decode_struct(valid)
        except pl.exceptions.PolarsError:
            decoded = _decode_paths(valid)
    good = decoded.filter(pl.col("audit_id").is_not_null())
    bad = frame.join(good.select("line"), on="line", how="anti").with_columns(
        unparsed=pl.when(looks_whole)
        .then(pl.lit("not an audit event: valid JSON needs an auditID"))
        .otherwise(pl.lit("not a whole JSON object: the line is cut short or is not JSON"))
    )
    return good, bad


def _decode_struct(frame: pl.DataFrame) -> pl.DataFrame:
    """Each line decoded once, then its fields taken out of the struct."""
    decoded = frame.with_columns(_event=pl.col("text").str.json_decode(_EVENT))
    columns = {}
    for name, path in _FIELDS.items():
        expr = pl.col("_event")
        for key in path.removeprefix("$.").split("."):
            expr = expr.struct.field(key)
        columns[name] = expr
    return (
        decoded.with_columns(**columns).drop("_event").with_columns(pl.col("code").cast(pl.Int64))
    )


def _decode_paths(frame: pl.DataFrame) -> pl.DataFrame:
    """The slow way, one JSON path per field, for files holding odd but valid JSON."""
    return frame.with_columns(
        **{name: pl.col("text").str.json_path_match(path) for name, path in _FIELDS.items()}
    ).with_columns(pl.col("code").cast(pl.Int64, strict=False))


def _classify(frame: pl.DataFrame) -> pl.DataFrame:
    """Mark the line that stands for each request, and whether that request is a change."""
    final = pl.col("stage").is_in(FINAL_STAGES)
    has_final = final.any().over("audit_id")
    is_last = pl.col("line") == pl.col("line").max().over("audit_id")
    primary = final | (~has_final & is_last)
    by_helm = pl.col("user_agent").str.contains(HELM_AGENT) & pl.col("resource").is_not_null()
    resource = pl.col("resource")
    writes = pl.col("verb").is_in(MUTATING) & (
        resource.is_in([r for group in CHANGED_BY_ANYONE.values() for r in group])
        | (resource.is_in(WATCHED) & _by_person_or_deployer())
        | by_helm
    )
    sub_ok = pl.col("subresource").is_null() | pl.col("subresource").is_in(CHANGE_SUBRESOURCES)
    ts = pl.coalesce("stage_ts", "received").str.to_datetime(
        _RFC3339_UTC, time_unit="us", strict=False
    )
    return frame.with_columns(
        primary=primary,
        is_change=(primary & writes & sub_ok).fill_null(False),
        failed=(pl.col("code") >= 400).fill_null(False) | (pl.col("stage") == "Panic"),
        # change rows are walked in Python: a time it cannot hold (year 0) is none
        ts=pl.when(ts.dt.year().is_between(1, 9999)).then(ts),
    )


def _by_person_or_deployer() -> pl.Expr:
    """Whether a request was made by a person (a user that is no account of the cluster's
    own) or sent by a deployer's client, rather than by one of the cluster's controllers."""
    actor = pl.coalesce("impersonated", "user").fill_null("")
    return ~actor.str.contains(CLUSTER_ACCOUNT) | pl.col("user_agent").fill_null("").str.contains(
        DEPLOYER_AGENT
    )


def _without_ca_bundle_rotations(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with patches of an admission webhook that write its ``caBundle`` alone
    (:func:`writes_only_ca_bundle`) marked as no change: a cert injector rotating the
    webhook's certificate, however it is run."""
    rotated = (
        frame.filter(
            pl.col("is_change") & pl.col("resource").is_in(WEBHOOKS) & (pl.col("verb") == "patch")
        )
        .select("line", request=pl.col("text").str.json_path_match("$.requestObject"))
        .filter(
            pl.col("request").map_elements(
                lambda text: writes_only_ca_bundle(_loads(text)), return_dtype=pl.Boolean
            )
        )
    )
    return frame.with_columns(
        is_change=pl.col("is_change") & ~pl.col("line").is_in(rotated["line"].to_list())
    )


# --- ordinary rows ----------------------------------------------------------------------


def _log_level() -> pl.Expr:
    code = pl.col("code")
    return (
        pl.when(pl.col("stage") == "Panic")
        .then(pl.lit("error"))
        .when(code >= 500)
        .then(pl.lit("error"))
        .when((code >= 400) & ~(pl.col("verb").is_in(READS) & (code == 404)))
        .then(pl.lit("warning"))
        .otherwise(pl.lit("debug"))
    )


def _object_path() -> pl.Expr:
    """``pods/status kube-system/kube-proxy-x7k2p``: what a request is about."""
    return pl.concat_str(
        [
            pl.concat_str(
                [pl.col("resource"), pl.lit("/") + pl.col("subresource")], ignore_nulls=True
            ),
            pl.concat_str([pl.col("namespace"), pl.col("name")], separator="/", ignore_nulls=True),
        ],
        separator=" ",
        ignore_nulls=True,
    )


def _log_records(frame: pl.LazyFrame) -> pl.LazyFrame:
    resource = pl.concat_str(
        [pl.col("resource"), pl.lit("/") + pl.col("subresource")], ignore_nulls=True
    )
    code = pl.col("code").cast(pl.String)
    return records(
        frame,
        ts="ts",
        utc_offset_s=pl.when(pl.col("ts").is_not_null()).then(pl.lit(0)),
        source=pl.lit(NAME),
        component=pl.lit("kube-apiserver"),
        host=pl.lit(None, pl.String),
        level=_log_level(),
        kind=pl.lit("log"),
        message=pl.concat_str(
            [
                pl.col("verb"),
                _object_path(),
                pl.lit("-> ") + code,
                pl.lit("by ") + pl.col("user"),
                pl.when(pl.col("stage").is_in(FINAL_STAGES).not_()).then(
                    pl.lit("(") + pl.col("stage") + pl.lit(")")
                ),
            ],
            separator=" ",
            ignore_nulls=True,
        ),
        template=pl.concat_str([pl.col("verb"), resource, code], separator=" ", ignore_nulls=True),
        attrs=json_object(
            verb=pl.col("verb"),
            resource=pl.col("resource"),
            subresource=pl.col("subresource"),
            namespace=pl.col("namespace"),
            name=pl.col("name"),
            code=pl.col("code"),
            user=pl.col("user"),
            stage=pl.col("stage"),
            audit_id=pl.col("audit_id"),
            failed=pl.when(pl.col("failed")).then(pl.lit(True)),
            status_reason=pl.col("status_reason"),
            binding_node=pl.when(pl.col("subresource") == "binding").then(
                pl.col("text").str.json_path_match("$.requestObject.target.name")
            ),
        ),
        unparsed=pl.lit(None, pl.String),
    )


def _unparsed_records(frame: pl.LazyFrame) -> pl.LazyFrame:
    return records(
        frame,
        source=pl.lit(NAME),
        message="text",
        unparsed="unparsed",
        ts=pl.lit(None),
    )


# --- change rows ------------------------------------------------------------------------


def _change_records(frame: pl.DataFrame) -> pl.LazyFrame:
    """Change rows, walked in time order so each knows the image it replaced."""
    if frame.height == 0:
        return _empty_records()
    frame = frame.with_columns(
        request=pl.col("text").str.json_path_match("$.requestObject"),
        response=pl.col("text").str.json_path_match("$.responseObject"),
    ).sort("ts", "line", nulls_last=True)
    state = _LastKnown()
    out = [state.change(row) for row in frame.iter_rows(named=True)]
    result = pl.DataFrame(out, schema=_CHANGE_SCHEMA, orient="row")
    return records(
        result.lazy(),
        utc_offset_s=pl.when(pl.col("ts").is_not_null()).then(pl.lit(0)),
        source=pl.lit(NAME),
        component=pl.lit("kube-apiserver"),
        kind=pl.lit("change"),
    )


_CHANGE_SCHEMA = {
    "line": pl.UInt32,
    "end_line": pl.UInt32,
    "ts": pl.Datetime("us"),
    "prefix_ts": pl.Datetime("us", "UTC"),
    "host": pl.String,
    "level": pl.String,
    "message": pl.String,
    "template": pl.String,
    "attrs": pl.String,
}


def _empty_records() -> pl.LazyFrame:
    return records(pl.DataFrame(schema=_CHANGE_SCHEMA).lazy(), source=pl.lit(NAME))


def _loads(text: str | None) -> object:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


_JSON_PATCH_IMAGE = re.compile(r"/containers/(?P<index>[0-9]+)/image$")


def container_images(obj: object) -> dict[str, str]:
    """Container name to image, from an object, a strategic merge patch or a JSON patch.

    >>> container_images({"spec": {"template": {"spec": {"containers": [
    ...     {"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.24.10"}]}}}})
    {'kube-proxy': 'registry.k8s.io/kube-proxy:v1.24.10'}
    >>> container_images([{"op": "replace", "path": "/spec/template/spec/containers/0/image",
    ...                    "value": "coredns/coredns:1.9.3"}])
    {'#0': 'coredns/coredns:1.9.3'}
    """
    found: dict[str, str] = {}
    if isinstance(obj, list) and all(isinstance(op, dict) and "op" in op for op in obj):
        for op in obj:
            path, value = str(op.get("path", "")), op.get("value")
            match = _JSON_PATCH_IMAGE.search(path)
            if match and isinstance(value, str):
                found[f"#{match.group('index')}"] = value
            elif isinstance(value, dict | list):
                found.update(container_images(value))
        return found
    _walk_containers(obj, found)
    return found


def _walk_containers(obj: object, found: dict[str, str]) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "containers" and isinstance(value, list):
                for c in value:
                    if isinstance(c, dict) and isinstance(c.get("image"), str):
                        found[str(c.get("name", f"#{len(found)}"))] = c["image"]
            else:
                _walk_containers(value, found)
    elif isinstance(obj, list):
        for value in obj:
            _walk_containers(value, found)


def _dig(obj: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _replaces_template(request: object) -> bool:
    """True for the patch ``kubectl rollout undo`` sends: the whole pod template replaced."""
    if isinstance(request, list):
        return any(isinstance(op, dict) and op.get("path") == "/spec/template" for op in request)
    return _dig(request, "spec", "template", "$patch") == "replace"


def written_fields(request: object) -> frozenset[str] | None:
    """The fields a request writes, ``spec`` by its own fields (``spec.replicas``,
    ``spec.template``) and the rest by their top key (``metadata``), from a whole object,
    a strategic merge patch or a JSON patch; None when the request was not logged.

    >>> sorted(written_fields({"spec": {"replicas": 3}, "metadata": {"labels": {}}}))
    ['metadata', 'spec.replicas']
    >>> sorted(written_fields([{"op": "replace", "path": "/spec/template/spec", "value": {}}]))
    ['spec.template']
    >>> written_fields(None) is None
    True
    """
    if isinstance(request, list):
        parts = [
            str(op.get("path", "")).strip("/").split("/") for op in request if isinstance(op, dict)
        ]
    elif isinstance(request, dict):
        parts = [
            [key, *([sub] if key == "spec" else [])]
            for key, value in request.items()
            if key not in ("kind", "apiVersion")
            for sub in (value if key == "spec" and isinstance(value, dict) and value else [""])
        ]
    else:
        return None
    return frozenset(".".join(p[:2]) if p[0] == "spec" else p[0] for p in parts if p and p[0])


#: The fields a patch names only to say which object and which webhook it writes.
IDENTIFYING_FIELDS = frozenset(
    ["apiVersion", "kind", "metadata.name", "metadata.resourceVersion", "webhooks.name"]
)


def writes_only_ca_bundle(request: object) -> bool:
    """Whether a patch writes an admission webhook's ``caBundle`` and nothing else (a JSON
    patch, a merge patch or a server-side apply): what cert-manager's CA injector, istiod
    or Kyverno send every time they rotate a certificate.

    >>> writes_only_ca_bundle({"webhooks": [{"name": "v.example.com",
    ...                                      "clientConfig": {"caBundle": "LS0t"}}]})
    True
    >>> writes_only_ca_bundle([{"op": "replace", "path": "/webhooks/0/failurePolicy",
    ...                         "value": "Fail"}])
    False
    >>> writes_only_ca_bundle(None)
    False
    """
    if isinstance(request, list):
        paths = [str(op.get("path", "")) for op in request if isinstance(op, dict)]
        return bool(paths) and all(path.endswith("/caBundle") for path in paths)
    leaves = set(_leaf_paths(request))
    written = {path for path in leaves if path.rsplit(".", 1)[-1] != "caBundle"}
    return leaves != written and written <= IDENTIFYING_FIELDS


def _leaf_paths(obj: object, prefix: str = ""):
    """The dotted path of each value an object holds, list positions left out."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _leaf_paths(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, list):
        for value in obj:
            yield from _leaf_paths(value, prefix)
    elif prefix:
        yield prefix


class _LastKnown:
    """What the file has shown so far of each target: its images and replica count."""

    def __init__(self) -> None:
        self.images: dict[str, dict[str, str]] = {}
        self.replicas: dict[str, int] = {}

    def change(self, row: dict[str, object]) -> dict[str, object]:
        request, response = _loads(row["request"]), _loads(row["response"])
        target = _target(row, request, response)
        kind = object_kind(row["resource"])
        helm = helm_attrs(kind, target.rsplit("/", 1)[-1], request, response)
        host = _host(row, request, response)
        failed = bool(row["failed"])
        known = self.images.get(target, {})
        requested = container_images(request)
        if len(known) == 1 and set(requested) == {"#0"}:
            requested = {next(iter(known)): requested["#0"]}
        decided = self._decide(row, kind, request, requested, known, target)
        change_type, container, old, new = decided
        if helm.get("helm_status") == "pending-rollback":
            change_type = "rollback"
        if not failed:
            self._remember(target, requested, response, request)
        field_manager = re.search(r"[?&]fieldManager=([^&]+)", row["uri"] or "")
        attrs = change_attrs(
            change_type,
            target,
            old=old,
            new=new,
            actor=row["impersonated"] or row["user"],
            container=container,
            failed=True if failed else None,
            code=row["code"],
            status_reason=row["status_reason"] if failed else None,
            verb=row["verb"],
            resource=row["resource"],
            subresource=row["subresource"],
            audit_id=row["audit_id"],
            stage=row["stage"],
            authenticated_as=row["user"] if row["impersonated"] else None,
            user_agent=row["user_agent"],
            by_helm=True if re.match(HELM_AGENT, row["user_agent"] or "") else None,
            field_manager=field_manager.group(1) if field_manager else None,
            rollout_undo=True if _replaces_template(request) else None,
            node_pool=_node_pool(response, request) if kind == "node" else None,
            **helm,
        )
        return {
            "line": row["line"],
            "end_line": row["end_line"],
            "ts": row["ts"],
            "prefix_ts": row["prefix_ts"],
            "host": host,
            "level": "warning" if failed else "info",
            "message": _describe(attrs, row),
            "template": f"{change_type} {kind}" + (" failed" if failed else ""),
            "attrs": dumps(attrs),
        }

    def _decide(
        self,
        row: dict[str, object],
        kind: str,
        request: object,
        requested: dict[str, str],
        known: dict[str, str],
        target: str,
    ) -> tuple[str, str | None, object, object]:
        """The change type, and the container and values it moved from and to."""
        verb, sub = row["verb"], row["subresource"]
        if sub == "eviction" or verb in ("delete", "deletecollection"):
            return "delete", None, None, None
        if kind in CONFIGURATION or row["resource"] in SETTINGS:
            return "config", None, None, None
        if verb == "create":
            image = next(iter(requested.items()), (None, None))
            return ("deploy" if kind in ROLLED_OUT else "create"), image[0], None, image[1]
        if row["resource"] not in CHANGE_RESOURCES:
            return "other", None, None, None
        if kind == "node":
            spec = _dig(request, "spec")
            if isinstance(spec, dict) and "unschedulable" in spec:
                return "other", None, None, "cordoned" if spec["unschedulable"] else "uncordoned"
            return "config", None, None, None
        replicas = _dig(request, "spec", "replicas")
        if sub == "scale":
            return "scale", None, self.replicas.get(target), replicas
        for container, image in requested.items():
            before = known.get(container)
            if before is not None and before != image:
                direction = compare_versions(image_tag(before), image_tag(image))
                if direction in ("upgrade", "rollback"):
                    return direction, container, before, image
                return "deploy", container, before, image
        new_images = [(c, i) for c, i in requested.items() if c not in known]
        if new_images:
            container, image = new_images[0]
            change = "rollback" if _replaces_template(request) else "deploy"
            return change, container, None, image
        if _replaces_template(request):
            return "rollback", None, None, None
        restarted = _dig(
            request,
            "spec",
            "template",
            "metadata",
            "annotations",
            "kubectl.kubernetes.io/restartedAt",
        )
        if restarted:
            return "restart", None, None, None
        if kind == "pod":
            return "other", None, None, None
        return self._workload_edit(request, replicas, target)

    def _workload_edit(
        self, request: object, replicas: object, target: str
    ) -> tuple[str, str | None, object, object]:
        """A write to a Deployment, DaemonSet, StatefulSet or ReplicaSet that sets no
        image: a scale when it sets the replica count alone (or a whole object whose count
        moved), a deploy when it writes the spec or was logged without its request
        (``Metadata`` level: Argo CD's and Helm's patches), else (labels, annotations) an
        edit that rolls nothing out."""
        before = self.replicas.get(target)
        moved = isinstance(replicas, int) and before is not None and replicas != before
        written = written_fields(request)
        if written is None:
            return "deploy", None, None, None
        spec = {f for f in written if f.startswith("spec")}
        if spec == {"spec.replicas"} or (moved and "spec.template" in spec):
            return "scale", None, before, replicas
        if spec:
            return "deploy", None, None, None
        return "other", None, None, None

    def _remember(
        self, target: str, requested: dict[str, str], response: object, request: object
    ) -> None:
        images = self.images.setdefault(target, {})
        images.update(container_images(response) or requested)
        for obj in (response, request):
            replicas = _dig(obj, "spec", "replicas")
            if isinstance(replicas, int):
                self.replicas[target] = replicas
                break


def object_kind(resource: str) -> str:
    """The kind a target names an object by: its resource in the singular.

    >>> object_kind("statefulsets"), object_kind("ingresses"), object_kind("networkpolicies")
    ('statefulset', 'ingress', 'networkpolicy')
    """
    if resource in CHANGE_RESOURCES:
        return CHANGE_RESOURCES[resource]
    if resource.endswith("ies"):
        return resource[:-3] + "y"
    if resource.endswith(("sses", "shes", "ches", "xes")):
        return resource[:-2]
    return resource.removesuffix("s")


def helm_attrs(kind: str, name: str, request: object, response: object) -> dict[str, object]:
    """What a write says of the Helm release it belongs to: for Helm's record of a
    revision (``sh.helm.release.v1.RELEASE.vN``), the release, the revision and, where
    the object was logged, its ``status`` label; for any other object logged whole, the
    release its ``meta.helm.sh/release-name`` annotation names.

    >>> helm_attrs("secret", "sh.helm.release.v1.rabbitmq.v4", None,
    ...            {"metadata": {"labels": {"status": "pending-upgrade"}}})
    {'helm_release': 'rabbitmq', 'helm_revision': 4, 'helm_status': 'pending-upgrade'}
    >>> helm_attrs("configmap", "rabbitmq-config", None, None)
    {}
    """
    record = HELM_RECORD.match(name) if kind in CONFIGURATION else None
    if record:
        labels = [_dig(obj, "metadata", "labels") for obj in (response, request)]
        status = next(
            (lb["status"] for lb in labels if isinstance(lb, dict) and lb.get("status")), None
        )
        found = {
            "helm_release": record.group("release"),
            "helm_revision": int(record.group("revision")),
            "helm_status": status,
        }
        return {k: v for k, v in found.items() if v is not None}
    for obj in (response, request):
        release = _dig(obj, "metadata", "annotations", HELM_RELEASE_ANNOTATION)
        if isinstance(release, str) and release:
            return {"helm_release": release}
    return {}


def _target(row: dict[str, object], request: object, response: object) -> str:
    """``daemonset/kube-system/kube-proxy``; a created object's name from the response."""
    name = (
        row["name"]
        or _dig(response, "metadata", "name")
        or _dig(request, "metadata", "name")
        or (
            f"{_dig(request, 'metadata', 'generateName')}*"
            if _dig(request, "metadata", "generateName")
            else None
        )
        or "*"
    )
    parts = [object_kind(row["resource"]), row["namespace"], name]
    return "/".join(p for p in parts if p)


def _host(row: dict[str, object], request: object, response: object) -> str | None:
    """The node a change happens on: the node itself, or the node a pod runs on."""
    if row["resource"] == "nodes":
        return (
            row["name"] or _dig(response, "metadata", "name") or _dig(request, "metadata", "name")
        )
    if row["resource"] == "pods":
        return _dig(response, "spec", "nodeName") or _dig(request, "spec", "nodeName")
    return None


def _node_pool(*objects: object) -> str | None:
    """The pool a Node object's labels put it in (:data:`POOL_LABELS`): what ties an EKS
    node, whose name does not say its node group, to a change of that group."""
    for obj in objects:
        labels = _dig(obj, "metadata", "labels")
        if isinstance(labels, dict):
            found = next((labels[k] for k in POOL_LABELS if isinstance(labels.get(k), str)), None)
            if found:
                return found
    return None


def _describe(attrs: dict[str, object], row: dict[str, object]) -> str:
    """One line: what changed, from what to what, by whom, and whether it failed."""
    text = f"{attrs['change_type']} {attrs['target']}"
    if "container" in attrs and ("from" in attrs or "to" in attrs):
        text += f" {attrs['container']}:"
    if "from" in attrs or "to" in attrs:
        text += f" {attrs.get('from', '?')} -> {attrs.get('to', '?')}"
    text += " ("
    if "helm_revision" in attrs:
        text += f"Helm release {attrs['helm_release']} revision {attrs['helm_revision']}"
        text += f" {attrs['helm_status']}; " if "helm_status" in attrs else "; "
    text += f"{row['verb']}"
    if row["subresource"]:
        text += f" {row['subresource']}"
    text += f" by {attrs.get('actor', '?')})"
    if attrs.get("failed"):
        text += f" failed: {row['code']} {row['status_reason'] or ''}".rstrip()
    return text


registry.register(
    Parser(
        name=NAME,
        description=DESCRIPTION,
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
        literals=(AUDIT_LITERAL, AUDIT_KEYS[0]),
    )
)
