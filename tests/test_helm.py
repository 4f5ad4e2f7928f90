"""A Helm release's install, upgrade or rollback in the Kubernetes audit log is one change.

One ``helm upgrade RELEASE`` writes, seconds apart and with one account and Helm's user
agent, its record of the new revision (the Secret ``sh.helm.release.v1.RELEASE.vN``), the
chart's changed objects (ConfigMap, Secret, Service, the Deployment or StatefulSet) and
the previous revision's record (superseded). The fixtures below are audit lines as
kube-apiserver writes them, with the secrets at Metadata level as audit policies advise.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import timeline
from tests.rca.judge import judge
from tests.rca.scenarios import build
from tests.rca.world import helm_release_secret
from timeline.analysis import contributors as contrib

#: What Helm 3 sends (``version.GetUserAgent()``), and what it sent before it set its own:
#: client-go's default, named after the binary.
HELM = "Helm/3.13.2"
OLD_HELM = "helm/v0.0.0 (linux/amd64) kubernetes/$Format"
KUBECTL = "kubectl/v1.28.4 (linux/amd64) kubernetes/bae2c62"
API_GROUPS = {"deployments": "apps", "statefulsets": "apps"}
KINDS = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "services": "Service",
}


def audit_line(
    t: datetime,
    verb: str,
    resource: str,
    namespace: str,
    name: str,
    *,
    actor: str,
    agent: str,
    level: str = "Metadata",
    request: dict | None = None,
    response: dict | None = None,
    rng: random.Random,
) -> str:
    """One ``ResponseComplete`` audit event, its fields in kube-apiserver's order."""
    group = API_GROUPS.get(resource, "")
    base = f"/apis/{group}/v1" if group else "/api/v1"
    uri = f"{base}/namespaces/{namespace}/{resource}"
    if verb != "create":
        uri += f"/{name}"
    if verb == "patch":
        uri += "?fieldManager=helm" if agent != KUBECTL else "?fieldManager=kubectl-edit"
    ref = {"resource": resource, "namespace": namespace, "name": name}
    if group:
        ref["apiGroup"] = group
    ref["apiVersion"] = "v1"
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": {"username": actor, "groups": ["sre", "system:authenticated"]},
        "sourceIPs": [f"10.20.{rng.randint(0, 9)}.{rng.randint(2, 250)}"],
        "userAgent": agent,
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": 201 if verb == "create" else 200},
    }
    if level in ("Request", "RequestResponse") and request is not None:
        event["requestObject"] = request
    if level == "RequestResponse" and response is not None:
        event["responseObject"] = response
    done = t + timedelta(milliseconds=rng.randint(3, 40))
    event["requestReceivedTimestamp"] = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event["stageTimestamp"] = done.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event["annotations"] = {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "sre-admin"',
    }
    return json.dumps(event, separators=(",", ":"))


def record_line(
    t: datetime,
    verb: str,
    namespace: str,
    release: str,
    revision: int,
    status: str,
    *,
    actor: str,
    agent: str,
    rng: random.Random,
    level: str = "Metadata",
) -> str:
    """A write of Helm's record of one revision of a release."""
    body = helm_release_secret(namespace, release, revision, status, modified_at=int(t.timestamp()))
    name = body["metadata"]["name"]
    return audit_line(
        t,
        verb,
        "secrets",
        namespace,
        name,
        actor=actor,
        agent=agent,
        level=level,
        request=body,
        response=body,
        rng=rng,
    )


def object_line(
    t: datetime,
    verb: str,
    resource: str,
    namespace: str,
    name: str,
    release: str,
    *,
    actor: str,
    agent: str,
    level: str,
    rng: random.Random,
) -> str:
    """A chart object written by Helm: a three-way merge patch, answered with the whole
    object (which carries the release's annotations)."""
    if resource in ("deployments", "statefulsets"):
        image = (
            f"registry.example.com/{namespace}/{name}:v2.{rng.randint(0, 9)}.{rng.randint(1, 9)}"
        )
        patch: dict = {
            "spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}
        }
    elif resource == "services":
        patch = {"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
    else:
        patch = {"data": {"POOL_SIZE": str(rng.choice((4, 8, 16)))}}
    metadata = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {
            "meta.helm.sh/release-name": release,
            "meta.helm.sh/release-namespace": namespace,
        },
    }
    response = {"kind": KINDS[resource], "apiVersion": "v1", "metadata": metadata, **patch}
    return audit_line(
        t,
        verb,
        resource,
        namespace,
        name,
        actor=actor,
        agent=agent,
        level=level,
        request=patch,
        response=response,
        rng=rng,
    )


def helm_command(
    t0: datetime,
    *,
    release: str,
    namespace: str,
    revision: int,
    objects: list[tuple[str, str]],
    actor: str = "dana@corp.example",
    agent: str = HELM,
    level: str = "Metadata",
    spread: timedelta = timedelta(seconds=2),
    finish_after: timedelta | None = None,
    status: str = "pending-upgrade",
    record_level: str = "Metadata",
    records: bool = True,
    seed: int = 1,
) -> list[tuple[datetime, str]]:
    """The timed audit lines of one ``helm upgrade`` (``status`` pending-upgrade), ``helm
    rollback`` (pending-rollback) or ``helm install`` (pending-install, revision 1): the
    new record, the ``objects`` (resource, name) written in a drawn order over
    ``spread``, then the previous record superseded and the new one deployed
    (``finish_after`` the start, as with ``--wait``)."""
    rng = random.Random(seed)
    say = {"actor": actor, "agent": agent, "rng": rng}
    out = []
    if records:
        out.append(
            (
                t0,
                record_line(
                    t0, "create", namespace, release, revision, status, level=record_level, **say
                ),
            )
        )
    order = list(objects)
    rng.shuffle(order)
    offsets = sorted(rng.uniform(0.05, 1.0) * spread.total_seconds() for _ in order)
    verb = "create" if status == "pending-install" else "patch"
    for (resource, name), offset in zip(order, offsets, strict=True):
        t = t0 + timedelta(seconds=offset)
        out.append(
            (t, object_line(t, verb, resource, namespace, name, release, level=level, **say))
        )
    if not records:
        return out
    end = t0 + (finish_after or spread + timedelta(milliseconds=rng.randint(200, 900)))
    if revision > 1:
        out.append(
            (
                end,
                record_line(end, "update", namespace, release, revision - 1, "superseded", **say),
            )
        )
    end += timedelta(milliseconds=rng.randint(20, 120))
    out.append((end, record_line(end, "update", namespace, release, revision, "deployed", **say)))
    return out


def audit_file(*commands: list[tuple[datetime, str]]) -> str:
    """The lines of the commands in the order the API server finished them."""
    lines = sorted((line for command in commands for line in command), key=lambda tl: tl[0])
    return "".join(text + "\n" for _, text in lines)


def line_of(text: str, needle: str) -> int:
    """The 1-based number of the first line of ``text`` holding ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def helm_changes(loaded) -> pl.DataFrame:
    return contrib.change_events(loaded.events)


T0 = datetime(2025, 2, 11, 9, 41, 17, 250000, tzinfo=UTC)


def chart(fullname: str, workload: str, *extra: str) -> list[tuple[str, str]]:
    objects = [(workload, fullname), ("configmaps", f"{fullname}-env")]
    return objects + [(resource, fullname) for resource in extra]


# --- one upgrade, one change ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "fullname", "namespace", "workload", "extra", "level", "spread_s", "agent"),
    [
        ("rabbitmq", "rabbitmq", "messaging", "statefulsets", ("services",), "Metadata", 1, HELM),
        (
            "prod",
            "prod-checkout",
            "shop",
            "deployments",
            ("services", "secrets"),
            "RequestResponse",
            25,
            HELM,
        ),
        ("ledger", "ledger-api", "payments", "deployments", (), "RequestResponse", 8, OLD_HELM),
        ("queue", "queue-broker", "infra", "statefulsets", ("secrets",), "Metadata", 40, HELM),
    ],
)
@pytest.mark.parametrize("seed", [1, 2])
def test_the_parts_of_one_helm_upgrade_are_one_change(
    read, release, fullname, namespace, workload, extra, level, spread_s, agent, seed
):
    """Whatever the release, its namespace, its chart's objects, the order Helm wrote them
    in and how far apart, the upgrade is one change: of the kind of its strongest part
    (the workload's patch is a deploy), shown as the workload, saying it is a Helm
    upgrade of the release to its revision and listing every object it wrote with the
    file:line of its record."""
    objects = chart(fullname, workload, *extra)
    text = audit_file(
        helm_command(
            T0,
            release=release,
            namespace=namespace,
            revision=7,
            objects=objects,
            agent=agent,
            level=level,
            spread=timedelta(seconds=spread_s),
            seed=seed,
        )
    )
    changes = helm_changes(read("kube-apiserver-audit.log", text))
    assert changes.height == 1, changes.select("target", "description")
    change = changes.row(0, named=True)
    kind = workload.removesuffix("s")
    assert change["target"] == f"{kind}/{namespace}/{fullname}"
    assert change["change_type"] == "deploy"
    assert change["actor"] == "dana@corp.example"
    assert change["helm"] == {
        "namespace": namespace,
        "release": release,
        "revision": 7,
        "action": "upgrade",
    }
    records = [f"secret/{namespace}/sh.helm.release.v1.{release}.v{n}" for n in (7, 6)]
    wrote = {f"{resource.removesuffix('s')}/{namespace}/{name}" for resource, name in objects}
    parts = {p["target"]: p for p in change["parts"]}
    assert set(parts) == wrote | set(records)
    for target, part in parts.items():
        kind, ns, name = target.split("/")
        line = line_of(text, f'"resource":"{kind}s","namespace":"{ns}","name":"{name}"')
        assert part["example"].endswith(f"kube-apiserver-audit.log:{line}"), target
    assert change["examples"] and all(p["example"] in change["examples"] for p in parts.values())
    assert f"Helm upgrade of {release} to revision 7" in change["description"]
    assert f"configmap/{namespace}/{fullname}-env" in change["description"]


def test_the_records_last_update_after_a_wait_for_the_rollout_is_the_same_upgrade(read):
    """With ``--wait`` Helm marks the revisions superseded and deployed only once the
    rollout is done, minutes after it patched the objects."""
    text = audit_file(
        helm_command(
            T0,
            release="search",
            namespace="web",
            revision=12,
            objects=chart("search", "deployments", "services"),
            finish_after=timedelta(minutes=4, seconds=31),
        )
    )
    changes = helm_changes(read("audit.log", text))
    assert changes.height == 1
    change = changes.row(0, named=True)
    assert change["target"] == "deployment/web/search"
    assert change["last_ts"] - change["ts"] > timedelta(minutes=4)
    assert len(change["parts"]) == 5


# --- what stays apart -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("second_namespace", "second_after_s"),
    [("shop", 6), ("shop", 50), ("billing", 1), ("shop", 0.4)],
)
def test_two_releases_upgraded_close_together_stay_two_changes(
    read, second_namespace, second_after_s
):
    """Two releases upgraded by one person and one client a few seconds apart (one after
    the other, or at once from two terminals) are two changes, each with its own parts."""
    first = helm_command(
        T0,
        release="checkout",
        namespace="shop",
        revision=31,
        objects=chart("checkout", "deployments", "services"),
        spread=timedelta(seconds=3),
        seed=3,
    )
    second = helm_command(
        T0 + timedelta(seconds=second_after_s),
        release="cart",
        namespace=second_namespace,
        revision=4,
        objects=chart("cart-redis", "statefulsets", "secrets"),
        spread=timedelta(seconds=3),
        seed=4,
    )
    changes = helm_changes(read("audit.log", audit_file(first, second))).sort("target")
    assert changes["target"].to_list() == [
        "deployment/shop/checkout",
        f"statefulset/{second_namespace}/cart-redis",
    ]
    checkout, cart = changes.to_dicts()
    assert checkout["helm"]["release"] == "checkout" and cart["helm"]["release"] == "cart"
    assert all("checkout" in p["target"] for p in checkout["parts"])
    assert all("cart" in p["target"] for p in cart["parts"])
    assert len(checkout["parts"]) == 5 and len(cart["parts"]) == 5


def test_the_same_configmap_edited_with_kubectl_a_minute_later_is_a_change_of_its_own(read):
    rng = random.Random(9)
    upgrade = helm_command(
        T0,
        release="orders",
        namespace="core",
        revision=3,
        objects=chart("orders", "deployments"),
        level="RequestResponse",
    )
    edit_at = T0 + timedelta(minutes=1, seconds=4)
    edit = audit_line(
        edit_at,
        "patch",
        "configmaps",
        "core",
        "orders-env",
        actor="dana@corp.example",
        agent=KUBECTL,
        level="RequestResponse",
        request={"data": {"POOL_SIZE": "2"}},
        rng=rng,
    )
    text = audit_file(upgrade, [(edit_at, edit)])
    changes = helm_changes(read("audit.log", text))
    assert changes["target"].to_list() == ["deployment/core/orders", "configmap/core/orders-env"]
    helm, edited = changes.to_dicts()
    assert helm["helm"]["action"] == "upgrade" and edited["helm"] is None
    assert edited["change_type"] == "config" and edited["n_rows"] == 1
    assert edited["examples"] == [f"{edited['examples'][0].rsplit(':', 1)[0]}:{len(upgrade) + 1}"]
    assert "Helm" not in edited["description"]


# --- what Helm did -------------------------------------------------------------------------


def test_a_rollback_the_record_labels_say_is_a_rollback_of_the_release(read):
    """Where the record was logged whole, its ``status`` label tells a ``helm rollback``
    (pending-rollback) from an upgrade; the change is a rollback, still shown as the
    workload it rolled back."""
    text = audit_file(
        helm_command(
            T0,
            release="payments",
            namespace="payments",
            revision=9,
            objects=chart("payments", "deployments"),
            status="pending-rollback",
            record_level="RequestResponse",
        )
    )
    changes = helm_changes(read("audit.log", text))
    assert changes.height == 1
    change = changes.row(0, named=True)
    assert change["change_type"] == "rollback"
    assert change["target"] == "deployment/payments/payments"
    assert change["helm"]["action"] == "rollback" and change["helm"]["revision"] == 9
    assert "Helm rollback of payments (revision 9)" in change["description"]


def test_an_install_creates_the_first_revision(read):
    text = audit_file(
        helm_command(
            T0,
            release="metrics",
            namespace="monitoring",
            revision=1,
            objects=chart("metrics-gateway", "deployments", "services"),
            status="pending-install",
        )
    )
    changes = helm_changes(read("audit.log", text))
    assert changes.height == 1
    change = changes.row(0, named=True)
    assert change["helm"]["action"] == "install" and change["change_type"] == "deploy"
    assert change["target"] == "deployment/monitoring/metrics-gateway"
    assert "Helm install of metrics (revision 1)" in change["description"]


@pytest.mark.parametrize("level", ["RequestResponse", "Metadata"])
def test_helm_writes_with_no_record_logged_are_still_one_change(read, level):
    """An audit policy that leaves secrets out leaves no record of the release: what Helm
    wrote in one namespace is still one change, named by the objects' annotations when
    they were logged."""
    text = audit_file(
        helm_command(
            T0,
            release="edge",
            namespace="ingress",
            revision=5,
            objects=chart("edge-proxy", "deployments", "services"),
            level=level,
            records=False,
        )
    )
    changes = helm_changes(read("audit.log", text))
    assert changes.height == 1
    change = changes.row(0, named=True)
    assert change["target"] == "deployment/ingress/edge-proxy"
    assert change["helm"]["action"] is None and len(change["parts"]) == 3
    named = "Helm release edge" if level == "RequestResponse" else "its name not logged"
    assert named in change["description"]


@pytest.mark.parametrize(
    ("actor", "written_at"),
    [
        ("dana@corp.example", "09:41"),
        ("system:serviceaccount:ci:deployer", "09:41"),
        ("system:serviceaccount:ci:deployer", "09:44"),
    ],
)
def test_a_change_log_line_about_the_release_is_the_same_change(tmp_path, actor, written_at):
    """What the team wrote of the upgrade joins it, and is its note, also when a CI
    pipeline's account ran Helm and the line was written after."""
    text = audit_file(
        helm_command(
            T0,
            release="rabbitmq",
            namespace="messaging",
            revision=14,
            objects=chart("rabbitmq", "statefulsets"),
            actor=actor,
        )
    )
    (tmp_path / "audit.log").write_text(text)
    (tmp_path / "changelog.csv").write_text(
        "time,type,target,description,actor\n"
        f"2025-02-11 {written_at},upgrade,messaging/rabbitmq,helm upgrade rabbitmq to 3.13 "
        "(chart 14.0.1),dana\n"
    )
    changes = helm_changes(timeline.read(tmp_path, infer=False))
    assert changes.height == 1
    change = changes.row(0, named=True)
    assert change["sources"] == ["changelog", "k8s-audit"]
    assert change["note"].startswith("helm upgrade rabbitmq to 3.13")
    assert {p["target"] for p in change["parts"]} >= {"statefulset/messaging/rabbitmq"}


# --- an incident --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [2, 5, 6])
def test_the_helm_upgrade_not_its_configmap_is_ranked_the_trigger(tmp_path, seed):
    """Errors from the upgraded program start after a Helm upgrade that also changed its
    ConfigMap (and another release upgraded by the same account a minute or two before):
    the upgrade as a whole ranks first, its ConfigMap one of its parts rather than a
    change of its own, also when a CI pipeline's account ran it (seeds 2 and 5)."""
    root, truth = build("helm_upgrade", tmp_path, seed=seed)
    analysis = timeline.analyze(timeline.read(root))
    verdict = judge(truth, analysis)
    assert verdict.top1, f"rank 1 is {verdict.top}; the upgrade ranks {verdict.ranks}"
    assert not verdict.decoy_in_top3
    top = analysis.contributors.sort("rank", nulls_last=True).row(0, named=True)
    change = analysis.changes.filter(pl.col("change_id") == top["change_id"]).row(0, named=True)
    assert change["helm"]["action"] == "upgrade"
    assert any(p["target"].startswith("configmap/") for p in change["parts"])
    fullname = truth.causes[0].target.rsplit("/", 1)[-1]
    alone = analysis.changes.filter(
        pl.col("helm").is_null() & pl.col("target").str.starts_with("configmap/")
    )
    assert not alone.filter(pl.col("target").str.contains(fullname, literal=True)).height
