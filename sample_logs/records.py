"""Records about the incident rather than logs of it: CircleCI job details, the audit
log, ``kubectl get events``, the team's change log, and the ground truth.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sample_logs import formats as fmt
from sample_logs.formats import NS
from sample_logs.logs import (
    rabbit_nodes,
)
from sample_logs.story import (
    COREDNS_IMAGE,
    KUBE_PROXY_IMAGE,
    MIN,
    NEW,
    NODE_CACHE_IMAGE,
    OLD,
    PAGE_SIZE,
    RABBIT_VERSION,
    SEC,
    Cluster,
    Pod,
    Story,
    arrivals,
    at,
    curve,
    day_shape,
    new_uid,
    rng_for,
    suffix,
)

# --- CircleCI jobs -----------------------------------------------------------------------

EXECUTORS = (
    ("docker", ("small", "medium", "medium", "medium+", "large", "xlarge"), 0.70),
    ("machine", ("medium", "large", "arm.medium"), 0.20),
    ("macos", ("macos.x86.medium.gen2", "macos.m1.medium.gen1"), 0.10),
)
NORMAL_DELAY_S = {"docker": 3.0, "machine": 25.0, "macos": 70.0}
JOB_NAMES = {
    "docker": ("build", "test", "lint", "unit-tests", "integration-tests", "deploy", "package"),
    "machine": ("docker-build", "e2e", "build-image", "integration-tests"),
    "macos": ("build-ios", "test-ios", "build-macos", "release-ios"),
}
ORGS = ("acme", "globex", "initech", "umbrella-labs", "hooli", "stark-ind", "wayne-ent", "tyrell")
REPOS = ("web-app", "api", "mobile", "infra", "docs", "billing", "search", "payments", "cli", "sdk")


def delay_curves() -> dict[str, Callable[[int], float]]:
    """Extra queue delay in minutes, by executor, for a job queued at ``t``."""
    d = at
    docker = curve(
        [
            (d("2023-03-14 18:00"), 0),
            (d("2023-03-14 18:20"), 3),
            (d("2023-03-14 18:45"), 12),
            (d("2023-03-14 19:15"), 25),
            (d("2023-03-14 19:45"), 38),
            (d("2023-03-14 20:15"), 48),
            (d("2023-03-14 20:40"), 62),
            (d("2023-03-14 21:00"), 70),
            (d("2023-03-14 21:30"), 55),
            (d("2023-03-14 22:00"), 34),
            (d("2023-03-14 22:30"), 14),
            (d("2023-03-14 22:50"), 3),
            (d("2023-03-14 23:02"), 0),
        ]
    )
    machine = curve(
        [
            (d("2023-03-14 18:00"), 0),
            (d("2023-03-14 18:30"), 6),
            (d("2023-03-14 19:00"), 20),
            (d("2023-03-14 19:45"), 45),
            (d("2023-03-14 20:40"), 80),
            (d("2023-03-14 21:30"), 95),
            (d("2023-03-14 22:30"), 110),
            (d("2023-03-14 23:30"), 100),
            (d("2023-03-15 00:15"), 75),
            (d("2023-03-15 00:50"), 45),
            (d("2023-03-15 01:15"), 8),
            (d("2023-03-15 01:27"), 3),
            (d("2023-03-15 02:00"), 1.2),
            (d("2023-03-15 02:40"), 0),
        ]
    )
    rabbit = curve(
        [
            (d("2023-03-15 02:50"), 0),
            (d("2023-03-15 03:00"), 6),
            (d("2023-03-15 03:15"), 14),
            (d("2023-03-15 03:30"), 10),
            (d("2023-03-15 03:35"), 4),
            (d("2023-03-15 04:00"), 2),
            (d("2023-03-15 04:30"), 1),
            (d("2023-03-15 05:14"), 0),
        ]
    )
    queues = curve(
        [
            (d("2023-03-15 09:50"), 0),
            (d("2023-03-15 10:05"), 3),
            (d("2023-03-15 10:30"), 5),
            (d("2023-03-15 10:50"), 4),
            (d("2023-03-15 11:08"), 1),
            (d("2023-03-15 11:30"), 0),
        ]
    )
    return {
        "docker": lambda t: docker(t) + rabbit(t) + queues(t),
        "machine": lambda t: machine(t) + rabbit(t) + queues(t),
        "macos": lambda t: 1.15 * machine(t) + rabbit(t) + queues(t),
    }


def start_failure(executor: str, t: int) -> float:
    """Share of jobs queued at ``t`` that never start (infrastructure failures)."""
    if executor == "docker":
        lo, hi = at("2023-03-14 18:30"), Story.DOCKER_RECOVERED - 30 * MIN
    else:
        lo, hi = at("2023-03-14 18:45"), Story.MACHINE_RECOVERED - 15 * MIN
    if lo <= t < hi:
        return 0.35 if Story.COREDNS_RESTART <= t < at("2023-03-14 21:40") else 0.15
    if Story.RABBIT_ROLL[0] <= t < Story.RABBIT_MITIGATED:
        return 0.1
    return 0.0


def jobs(cluster: Cluster) -> Iterator[dict]:
    """CircleCI API v2 job details, newest first, the way the API pages them."""
    rng = rng_for(cluster.seed, "circleci")
    scale = cluster.scale
    projects = []
    for k in range(max(12, round(40 * scale))):
        org, repo = ORGS[k % len(ORGS)], REPOS[(k * 7 + k // len(ORGS)) % len(REPOS)]
        if k >= len(ORGS) * len(REPOS):
            repo = f"{repo}-{k}"
        projects.append(
            {
                "slug": f"gh/{org}/{repo}",
                "org": org,
                "repo": repo,
                "id": new_uid(rng),
                "job": rng.randint(20_000, 400_000),
                "pipeline": rng.randint(5_000, 90_000),
            }
        )
    curves = delay_curves()
    rate = lambda t: scale * (14 + 38 * day_shape(t)) / 60  # noqa: E731  pipelines a minute
    peak = scale * 52 / 60
    t = Story.END
    while True:
        t -= int(rng.expovariate(peak) * MIN) + 1
        if t < Story.START:
            return
        if rng.random() * peak >= rate(t):
            continue
        project = rng.choice(projects)
        project["pipeline"] -= 1
        workflow = rng.choice(("build-and-test", "ci", "deploy", "nightly", "release"))
        pipeline_id, workflow_id = new_uid(rng), new_uid(rng)
        roll = rng.random()
        executor = "docker" if roll < 0.7 else "machine" if roll < 0.9 else "macos"
        contexts = [{"name": "org-global"}] if rng.random() < 0.3 else []
        for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
            project["job"] -= 1
            yield _job(
                rng, project, workflow, workflow_id, pipeline_id, executor, contexts, curves, t
            )


def _job(rng, project, workflow, workflow_id, pipeline_id, executor, contexts, curves, t) -> dict:
    resource = rng.choice(next(e[1] for e in EXECUTORS if e[0] == executor))
    name = rng.choice(JOB_NAMES[executor])
    queued = t + int(rng.uniform(0.5, 20) * SEC)
    created = queued - int(rng.uniform(0.05, 1.5) * SEC)
    normal = NORMAL_DELAY_S[executor] * rng.lognormvariate(0, 0.45)
    extra = curves[executor](queued) * 60 * rng.lognormvariate(0, 0.25)
    started: int | None = queued + int((normal + extra) * SEC)
    run = int(rng.lognormvariate(5.4 if executor == "docker" else 6.0, 0.7) * SEC)
    status = (
        "success" if rng.random() < 0.88 else rng.choice(("failed", "failed", "failed", "canceled"))
    )
    if rng.random() < start_failure(executor, queued):
        status = "infrastructure_fail" if rng.random() < 0.8 else "canceled"
        stopped = queued + int(rng.uniform(5, 45) * MIN)
        started = None
    else:
        stopped = started + run
    if stopped > Story.END:
        status, stopped = "running", None
    number = project["job"]
    slug = project["slug"]
    return {
        "web_url": f"https://app.circleci.com/pipelines/{slug}/{project['pipeline']}/workflows/{workflow_id}/jobs/{number}",
        "project": {
            "external_url": f"https://github.com/{project['org']}/{project['repo']}",
            "slug": slug,
            "name": project["repo"],
            "id": project["id"],
        },
        "parallel_runs": [{"index": 0, "status": status}],
        "started_at": fmt.iso_ms(started) if started is not None else None,
        "latest_workflow": {"name": workflow, "id": workflow_id},
        "name": name,
        "executor": {"resource_class": resource, "type": executor},
        "parallelism": 1,
        "status": status,
        "number": number,
        "pipeline": {"id": pipeline_id},
        "duration": (stopped - started) // 1_000_000 if started is not None and stopped else None,
        "created_at": fmt.iso_ms(created),
        "messages": [],
        "contexts": contexts,
        "organization": {"name": project["org"]},
        "queued_at": fmt.iso_ms(queued),
        "stopped_at": fmt.iso_ms(stopped) if stopped else None,
    }


def job_pages(cluster: Cluster) -> Iterator[tuple[int, str]]:
    """Pages of job details as the API returns them (``{"items": [...], "next_page_token"}``),
    with how many jobs each holds; the last page has no token."""
    rng = rng_for(cluster.seed, "page-tokens")
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    pending: list[dict] | None = None
    page: list[dict] = []

    def body(items: list[dict], last: bool) -> tuple[int, str]:
        token = None if last else "".join(rng.choice(letters) for _ in range(40))
        text = json.dumps({"items": items, "next_page_token": token}, separators=(",", ":"))
        return len(items), text

    for job in jobs(cluster):
        page.append(job)
        if len(page) == PAGE_SIZE:
            if pending is not None:
                yield body(pending, False)
            pending, page = page, []
    if pending is not None:
        yield body(pending, not page)
    if page:
        yield body(page, True)


# --- change records ----------------------------------------------------------------------

PEOPLE = {
    "alice": "alice@ops.example.com",
    "bob": "bob@ops.example.com",
    "carol": "carol@ops.example.com",
    "dave": "dave@ops.example.com",
    "erin": "erin@ops.example.com",
    "frank": "frank@ops.example.com",
}


def workload(
    kind: str,
    ns: str,
    name: str,
    image: str,
    container: str,
    generation: int,
    rv: int,
    uid: str,
    restarted: str | None = None,
) -> dict:
    """A DaemonSet or Deployment as the API server returns it (trimmed of managedFields)."""
    annotations = (
        {"deprecated.daemonset.template.generation": str(generation)}
        if kind == "DaemonSet"
        else {"deployment.kubernetes.io/revision": str(generation)}
    )
    template_meta: dict = {"creationTimestamp": None, "labels": {"k8s-app": name}}
    if restarted:
        template_meta["annotations"] = {"kubectl.kubernetes.io/restartedAt": restarted}
    spec: dict = {
        "revisionHistoryLimit": 10,
        "selector": {"matchLabels": {"k8s-app": name}},
        "template": {
            "metadata": template_meta,
            "spec": {
                "containers": [
                    {
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "name": container,
                        "resources": {"requests": {"cpu": "100m"}},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                    }
                ],
                "dnsPolicy": "ClusterFirst",
                "priorityClassName": "system-node-critical" if ns == "kube-system" else "",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "serviceAccountName": name,
                "terminationGracePeriodSeconds": 30,
            },
        },
    }
    if kind == "DaemonSet":
        spec["template"]["spec"]["hostNetwork"] = True
        spec["updateStrategy"] = {
            "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"},
            "type": "RollingUpdate",
        }
    else:
        spec["replicas"] = 2
        spec["strategy"] = {
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1},
            "type": "RollingUpdate",
        }
    if not spec["template"]["spec"]["priorityClassName"]:
        del spec["template"]["spec"]["priorityClassName"]
    return {
        "kind": kind,
        "apiVersion": "apps/v1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": uid,
            "resourceVersion": str(rv),
            "generation": generation,
            "creationTimestamp": "2021-06-02T09:14:51Z",
            "labels": {"k8s-app": name},
            "annotations": annotations,
        },
        "spec": spec,
        "status": {"observedGeneration": generation - 1},
    }


@dataclass
class Change:
    """A change as people and the API server recorded it, and the truth about it."""

    t: int
    type: str
    target: str
    description: str
    actor: str
    role: str
    incident: str | None
    where: list[str]
    extra: dict = field(default_factory=dict)


def changes(cluster: Cluster) -> list[Change]:
    first = cluster.first_rebooted
    out = [
        Change(
            Story.UPGRADE,
            "upgrade",
            "daemonset/kube-system/kube-proxy",
            f"Cluster upgrade step 4: kube-proxy {OLD} -> {NEW}",
            "alice",
            "root-cause",
            "kube-proxy-sync",
            ["audit", "changelog", "events", "inferred"],
            {"from": OLD, "to": NEW},
        ),
        Change(
            Story.ROLLBACK,
            "rollback",
            "daemonset/kube-system/kube-proxy",
            f"Reverted kube-proxy to {OLD}: services missing metrics since the upgrade",
            "alice",
            "precursor-start",
            "kube-proxy-sync",
            ["audit", "changelog", "events", "inferred"],
            {"from": NEW, "to": OLD},
        ),
        Change(
            Story.DECOY_CONFIG,
            "config",
            "configmap/ci/feature-flags",
            "Enable insights-page-v2 feature flag",
            "bob",
            "unrelated",
            None,
            ["audit", "changelog"],
        ),
        Change(
            Story.DECOY_DEPLOY,
            "deploy",
            "deployment/ci/web-ui",
            "Deploy web-ui 4.18.2",
            "bob",
            "unrelated",
            None,
            ["audit", "changelog", "events"],
            {"from": "4.18.1", "to": "4.18.2"},
        ),
        Change(
            Story.RESUMED_UPGRADE,
            "upgrade",
            "daemonset/kube-system/kube-proxy",
            f"Resume cluster upgrade with a smaller blast radius: kube-proxy {OLD} -> {NEW}",
            "alice",
            "triggered-incident",
            "kube-proxy-sync",
            ["audit", "changelog", "events", "inferred"],
            {"from": OLD, "to": NEW},
        ),
    ]
    for t, app, text in Story.SERVICE_RESTARTS:
        out.append(
            Change(
                t,
                "restart",
                f"deployment/ci/{app}",
                text,
                "carol" if app == "dispatcher" else "dave",
                "unrelated",
                "kube-proxy-sync",
                ["audit", "changelog", "events"],
                {"note": "tried as a mitigation; no effect"},
            )
        )
    out += [
        Change(
            Story.NODE_LOCAL_DNS_RESTART,
            "restart",
            "daemonset/kube-system/node-local-dns",
            "Restarted node-local-dns-cache to rule out DNS",
            "erin",
            "made-worse",
            "kube-proxy-sync",
            ["audit", "changelog", "events", "inferred"],
        ),
        Change(
            Story.COREDNS_RESTART,
            "restart",
            "deployment/kube-system/coredns",
            "Restarted CoreDNS",
            "erin",
            "made-worse",
            "kube-proxy-sync",
            ["audit", "changelog", "events", "inferred"],
        ),
        Change(
            first.down,
            "restart",
            f"node/{first.name}",
            "Rebooted one node to test the kube-proxy theory",
            "alice",
            "mitigation",
            "kube-proxy-sync",
            ["audit", "changelog", "events", "inferred"],
        ),
    ]
    for node in sorted(cluster.nodes, key=lambda n: n.down):
        if node is not first:
            out.append(
                Change(
                    node.down,
                    "restart",
                    f"node/{node.name}",
                    "Rolling reboot of all nodes",
                    "alice",
                    "mitigation",
                    "kube-proxy-sync",
                    ["audit", "events", "inferred"],
                )
            )
    out += [
        Change(
            Story.POOL_RESTART,
            "restart",
            "deployment/ci/vm-provisioner",
            "Restarted the machine/macOS provisioning pool",
            "dave",
            "mitigation",
            "kube-proxy-sync",
            ["audit", "changelog", "events"],
        ),
    ]
    nodes = rabbit_nodes(cluster.seed)
    for rnode in nodes:
        stop, _ = rnode.restarts[0]
        out.append(
            Change(
                stop,
                "restart",
                f"rabbitmq/rabbit@{rnode.name}",
                "Rolling restart of the remaining infrastructure (adds missing RabbitMQ logging)",
                "frank",
                "triggered-incident",
                "rabbitmq-restart",
                ["changelog", "inferred"],
            )
        )
    for rnode in nodes:
        stop, _ = rnode.restarts[1]
        out.append(
            Change(
                stop,
                "restart",
                f"rabbitmq/rabbit@{rnode.name}",
                "Restart RabbitMQ nodes to fix corrupted queues",
                "frank",
                "triggered-incident",
                "rabbitmq-queues",
                ["changelog", "inferred"],
            )
        )
    return sorted(out, key=lambda c: c.t)


def changelog_rows(cluster: Cluster) -> Iterator[str]:
    """The team's change log, kept by hand during the incident: minutes, not seconds, and
    one line for the rolling reboot rather than one per node."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["time", "type", "target", "description", "actor"])
    seen_rolling = False
    seen_rabbit: set[str] = set()
    for change in changes(cluster):
        if "changelog" not in change.where:
            if change.description == "Rolling reboot of all nodes" and not seen_rolling:
                seen_rolling = True
                writer.writerow(
                    [
                        fmt.human_minute(Story.ROLLING_REBOOTS[0]),
                        "restart",
                        "nodes/all",
                        "Rolling reboot of all remaining nodes, one by one",
                        "alice",
                    ]
                )
            continue
        if change.target.startswith("rabbitmq/"):
            if change.description in seen_rabbit:
                continue
            seen_rabbit.add(change.description)
            target = "rabbitmq/cluster"
        else:
            target = change.target.replace("daemonset/kube-system/", "daemonset/").replace(
                "deployment/kube-system/", "deployment/"
            )
        writer.writerow(
            [fmt.human_minute(change.t), change.type, target, change.description, change.actor]
        )
    writer.writerow(
        [
            fmt.human_minute(Story.DOCKER_RECOVERED),
            "note",
            "nodes/all",
            "All nodes rolled; docker jobs recovering, machine jobs still delayed",
            "alice",
        ]
    )
    yield from buffer.getvalue().rstrip("\n").split("\n")


def rbac_reason(actor: str) -> str:
    """Why RBAC let ``actor`` in, as the authorizer words it in the audit annotation."""
    if ":" not in actor:
        return (
            'RBAC: allowed by ClusterRoleBinding "sre-admins" of ClusterRole "cluster-admin" '
            'to Group "sre"'
        )
    ns, account = actor.split(":")[2:4]
    return (
        f'RBAC: allowed by RoleBinding "{account}-reader/{ns}" of Role "{account}-reader" '
        f'to ServiceAccount "{account}/{ns}"'
    )


def audit_records(cluster: Cluster) -> Iterator[str]:
    """The API server's audit log (JSON lines): the workload and node changes at Request or
    RequestResponse level, and the everyday reads at Metadata level."""
    rng = rng_for(cluster.seed, "audit")
    rv = [41_872_113]
    uids = {
        name: new_uid(rng)
        for name in (
            "kube-proxy",
            "node-local-dns",
            "coredns",
            "dispatcher",
            "api-gateway",
            "vm-provisioner",
            "web-ui",
            "feature-flags",
        )
    }
    generation = {
        "kube-proxy": 7,
        "node-local-dns": 3,
        "coredns": 5,
        "dispatcher": 112,
        "api-gateway": 88,
        "vm-provisioner": 41,
        "web-ui": 230,
    }
    events: list[tuple[int, str]] = []

    def event(
        t: int,
        verb: str,
        uri: str,
        resource: str,
        ns: str | None,
        name: str | None,
        actor: str,
        level: str,
        code: int = 200,
        api_group: str = "",
        request=None,
        response=None,
        agent: str = "kubectl/v1.24.10 (linux/amd64) kubernetes/5c1d2d4",
        subresource: str | None = None,
        ip: str = "10.20.0.45",
    ) -> None:
        ref = {"resource": resource}
        if ns:
            ref["namespace"] = ns
        if name:
            ref["name"] = name
        if api_group:
            ref["apiGroup"] = api_group
        ref["apiVersion"] = "v1"
        if subresource:
            ref["subresource"] = subresource
        user = (
            {"username": actor, "groups": ["system:authenticated"]}
            if ":" in actor
            else {"username": PEOPLE[actor], "groups": ["sre", "system:authenticated"]}
        )
        doc = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level,
            "auditID": new_uid(rng),
            "stage": "ResponseComplete",
            "requestURI": uri,
            "verb": verb,
            "user": user,
            "sourceIPs": [ip],
            "userAgent": agent,
            "objectRef": ref,
            "responseStatus": {"metadata": {}, "code": code},
        }
        if request is not None:
            doc["requestObject"] = request
        if response is not None:
            doc["responseObject"] = response
        done = t + int(rng.uniform(2, 40) * 1_000_000)
        doc["requestReceivedTimestamp"] = fmt.iso_us(t)
        doc["stageTimestamp"] = fmt.iso_us(done)
        doc["annotations"] = {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": rbac_reason(actor),
        }
        events.append((t, json.dumps(doc, separators=(",", ":"))))

    def set_image(
        t: int, actor: str, kind: str, ns: str, name: str, container: str, image: str
    ) -> None:
        generation[name] += 1
        rv[0] += rng.randint(500, 5000)
        plural = "daemonsets" if kind == "DaemonSet" else "deployments"
        patch = {
            "spec": {"template": {"spec": {"containers": [{"image": image, "name": container}]}}}
        }
        event(
            t,
            "patch",
            f"/apis/apps/v1/namespaces/{ns}/{plural}/{name}?fieldManager=kubectl-set",
            plural,
            ns,
            name,
            actor,
            "RequestResponse",
            api_group="apps",
            request=patch,
            response=workload(
                kind, ns, name, image, container, generation[name], rv[0], uids[name]
            ),
        )

    def restart(
        t: int, actor: str, kind: str, ns: str, name: str, container: str, image: str
    ) -> None:
        generation[name] += 1
        rv[0] += rng.randint(500, 5000)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t // NS))
        plural = "daemonsets" if kind == "DaemonSet" else "deployments"
        patch = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}
                }
            }
        }
        event(
            t,
            "patch",
            f"/apis/apps/v1/namespaces/{ns}/{plural}/{name}?fieldManager=kubectl-rollout",
            plural,
            ns,
            name,
            actor,
            "RequestResponse",
            api_group="apps",
            request=patch,
            response=workload(
                kind, ns, name, image, container, generation[name], rv[0], uids[name], stamp
            ),
        )

    set_image(
        Story.UPGRADE,
        "alice",
        "DaemonSet",
        "kube-system",
        "kube-proxy",
        "kube-proxy",
        KUBE_PROXY_IMAGE.format(NEW),
    )
    set_image(
        Story.ROLLBACK,
        "alice",
        "DaemonSet",
        "kube-system",
        "kube-proxy",
        "kube-proxy",
        KUBE_PROXY_IMAGE.format(OLD),
    )
    event(
        Story.DECOY_CONFIG,
        "patch",
        "/api/v1/namespaces/ci/configmaps/feature-flags?fieldManager=kubectl-patch",
        "configmaps",
        "ci",
        "feature-flags",
        "bob",
        "Request",
        request={"data": {"insights-page-v2": "true"}},
    )
    set_image(
        Story.DECOY_DEPLOY,
        "bob",
        "Deployment",
        "ci",
        "web-ui",
        "web-ui",
        "ghcr.io/acme-ci/web-ui:4.18.2",
    )
    set_image(
        Story.RESUMED_UPGRADE,
        "alice",
        "DaemonSet",
        "kube-system",
        "kube-proxy",
        "kube-proxy",
        KUBE_PROXY_IMAGE.format(NEW),
    )
    for t, app, _ in Story.SERVICE_RESTARTS:
        restart(
            t,
            "carol" if app == "dispatcher" else "dave",
            "Deployment",
            "ci",
            app,
            app,
            f"ghcr.io/acme-ci/{app}:2023.03.10-1",
        )
    restart(
        Story.NODE_LOCAL_DNS_RESTART,
        "erin",
        "DaemonSet",
        "kube-system",
        "node-local-dns",
        "node-cache",
        NODE_CACHE_IMAGE,
    )
    restart(
        Story.COREDNS_RESTART,
        "erin",
        "Deployment",
        "kube-system",
        "coredns",
        "coredns",
        COREDNS_IMAGE,
    )
    restart(
        Story.POOL_RESTART,
        "dave",
        "Deployment",
        "ci",
        "vm-provisioner",
        "vm-provisioner",
        "ghcr.io/acme-ci/vm-provisioner:2023.03.02-4",
    )
    for node in cluster.nodes:
        for t, value in ((node.cordoned, True), (node.up + int(rng.uniform(60, 120) * SEC), None)):
            event(
                t,
                "patch",
                f"/api/v1/nodes/{node.name}",
                "nodes",
                None,
                node.name,
                "alice",
                "Request",
                request={"spec": {"unschedulable": value}},
            )
    reader_rate = lambda _: 0.25 * cluster.scale  # noqa: E731
    readers = [
        (
            "get",
            "/api/v1/namespaces/ci/configmaps/feature-flags",
            "configmaps",
            "ci",
            "feature-flags",
            "system:serviceaccount:ci:web-ui",
        ),
        (
            "list",
            "/api/v1/namespaces/ci/pods?labelSelector=app%3Dbuilds",
            "pods",
            "ci",
            None,
            "system:serviceaccount:ci:dispatcher",
        ),
        (
            "get",
            "/api/v1/namespaces/ci/secrets/rabbitmq-credentials",
            "secrets",
            "ci",
            "rabbitmq-credentials",
            "system:serviceaccount:ci:builds",
        ),
        (
            "list",
            "/apis/apps/v1/namespaces/ci/deployments",
            "deployments",
            "ci",
            None,
            "system:serviceaccount:monitoring:kube-state-metrics",
        ),
        (
            "get",
            "/api/v1/namespaces/kube-system/configmaps/kube-proxy",
            "configmaps",
            "kube-system",
            "kube-proxy",
            "system:serviceaccount:monitoring:config-auditor",
        ),
    ]
    for t in arrivals(rng, Story.START, Story.END, reader_rate, reader_rate(0)):
        verb, uri, resource, ns, name, actor = rng.choice(readers)
        event(
            t,
            verb,
            uri,
            resource,
            ns,
            name,
            actor,
            "Metadata",
            agent="Go-http-client/2.0",
            api_group="apps" if resource == "deployments" else "",
            ip=rng.choice(cluster.nodes).pod_ips[0],
        )
    events.sort(key=lambda e: e[0])
    for _, text in events:
        yield text


def kube_events(cluster: Cluster) -> str:
    """``kubectl get events -A -o json`` at the end of the window (the cluster keeps events
    for 72h): rollouts, restarts, reboots and probe failures, aggregated by kubelet."""
    rng = rng_for(cluster.seed, "events")
    items: dict[tuple, dict] = {}
    rv = [41_900_000]

    def emit(
        t: int,
        ns: str,
        kind: str,
        name: str,
        uid: str,
        reason: str,
        message: str,
        component: str,
        host: str | None = None,
        etype: str = "Normal",
        api: str = "v1",
        field_path: str | None = None,
    ) -> None:
        key = (ns, kind, name, reason, message)
        if key in items:
            item = items[key]
            item["count"] += 1
            item["lastTimestamp"] = fmt.iso_s(t)
            return
        obj = {"apiVersion": api, "kind": kind, "name": name, "uid": uid}
        if ns and kind != "Node":
            obj["namespace"] = ns
        if field_path:
            obj["fieldPath"] = field_path
        rv[0] += rng.randint(1, 400)
        source = {"component": component}
        if host:
            source["host"] = host
        items[key] = {
            "apiVersion": "v1",
            "count": 1,
            "eventTime": None,
            "firstTimestamp": fmt.iso_s(t),
            "involvedObject": obj,
            "kind": "Event",
            "lastTimestamp": fmt.iso_s(t),
            "message": message,
            "metadata": {
                "creationTimestamp": fmt.iso_s(t),
                "name": f"{name}.{t + rng.randint(0, 999_999):x}",
                "namespace": ns or "default",
                "resourceVersion": str(rv[0]),
                "uid": new_uid(rng),
            },
            "reason": reason,
            "reportingComponent": "",
            "reportingInstance": "",
            "source": source,
            "type": etype,
        }

    ds_uid = {"kube-proxy": new_uid(rng), "node-local-dns": new_uid(rng)}

    def pod_started(pod: Pod, t: int, image: str, pulled: bool) -> None:
        spec = "spec.containers{" + pod.container + "}"
        if pulled:
            emit(
                t,
                pod.namespace,
                "Pod",
                pod.name,
                pod.uid,
                "Scheduled",
                f"Successfully assigned {pod.namespace}/{pod.name} to {pod.node.name}",
                "default-scheduler",
            )
            emit(
                t + SEC,
                pod.namespace,
                "Pod",
                pod.name,
                pod.uid,
                "Pulling",
                f'Pulling image "{image}"',
                "kubelet",
                pod.node.name,
                field_path=spec,
            )
            emit(
                t + 3 * SEC,
                pod.namespace,
                "Pod",
                pod.name,
                pod.uid,
                "Pulled",
                f'Successfully pulled image "{image}" in {rng.uniform(0.8, 3.5):.9f}s',
                "kubelet",
                pod.node.name,
                field_path=spec,
            )
        else:
            emit(
                t,
                pod.namespace,
                "Pod",
                pod.name,
                pod.uid,
                "SandboxChanged",
                "Pod sandbox changed, it will be killed and re-created.",
                "kubelet",
                pod.node.name,
            )
            emit(
                t + SEC,
                pod.namespace,
                "Pod",
                pod.name,
                pod.uid,
                "Pulled",
                f'Container image "{image}" already present on machine',
                "kubelet",
                pod.node.name,
                field_path=spec,
            )
        emit(
            t + 3 * SEC,
            pod.namespace,
            "Pod",
            pod.name,
            pod.uid,
            "Created",
            f"Created container {pod.container}",
            "kubelet",
            pod.node.name,
            field_path=spec,
        )
        emit(
            t + 4 * SEC,
            pod.namespace,
            "Pod",
            pod.name,
            pod.uid,
            "Started",
            f"Started container {pod.container}",
            "kubelet",
            pod.node.name,
            field_path=spec,
        )

    def pod_killed(pod: Pod, t: int) -> None:
        emit(
            t,
            pod.namespace,
            "Pod",
            pod.name,
            pod.uid,
            "Killing",
            f"Stopping container {pod.container}",
            "kubelet",
            pod.node.name,
            field_path="spec.containers{" + pod.container + "}",
        )

    for node in cluster.nodes:
        for pods, ds in ((node.kube_proxy, "kube-proxy"), (node.node_local_dns, "node-local-dns")):
            for pod in pods:
                if pod.created >= Story.START:
                    emit(
                        pod.created - 2 * SEC,
                        "kube-system",
                        "DaemonSet",
                        ds,
                        ds_uid[ds],
                        "SuccessfulCreate",
                        f"Created pod: {pod.name}",
                        "daemonset-controller",
                        api="apps/v1",
                    )
                    pod_started(pod, pod.created, pod.image, pulled=True)
                if pod.deleted is not None and pod.deleted < Story.END:
                    emit(
                        pod.deleted - 3 * SEC,
                        "kube-system",
                        "DaemonSet",
                        ds,
                        ds_uid[ds],
                        "SuccessfulDelete",
                        f"Deleted pod: {pod.name}",
                        "daemonset-controller",
                        api="apps/v1",
                    )
                    pod_killed(pod, pod.deleted - 2 * SEC)
                for run in pod.runs[1:]:
                    pod_started(pod, run.start - 5 * SEC, pod.image, pulled=False)
        uid = node.name
        emit(
            node.cordoned,
            "",
            "Node",
            node.name,
            uid,
            "NodeNotSchedulable",
            f"Node {node.name} status is now: NodeNotSchedulable",
            "kubelet",
            node.name,
        )
        emit(
            node.down + int(rng.uniform(40, 50) * SEC),
            "",
            "Node",
            node.name,
            uid,
            "NodeNotReady",
            f"Node {node.name} status is now: NodeNotReady",
            "node-controller",
        )
        emit(
            node.up,
            "",
            "Node",
            node.name,
            uid,
            "Starting",
            "Starting kubelet.",
            "kubelet",
            node.name,
        )
        emit(
            node.up + SEC,
            "",
            "Node",
            node.name,
            uid,
            "NodeAllocatableEnforced",
            "Updated Node Allocatable limit across pods",
            "kubelet",
            node.name,
        )
        emit(
            node.up + 2 * SEC,
            "",
            "Node",
            node.name,
            uid,
            "Rebooted",
            f"Node {node.name} has been rebooted, boot id: {new_uid(rng)}",
            "kubelet",
            node.name,
            etype="Warning",
        )
        emit(
            node.up + int(rng.uniform(8, 14) * SEC),
            "",
            "Node",
            node.name,
            uid,
            "NodeReady",
            f"Node {node.name} status is now: NodeReady",
            "kubelet",
            node.name,
        )
    coredns_uid = new_uid(rng)
    old_hash, new_hash = cluster.coredns_hashes
    for k, pod in enumerate(cluster.coredns):
        if pod.phase == "restarted":
            emit(
                pod.created - SEC,
                "kube-system",
                "Deployment",
                "coredns",
                coredns_uid,
                "ScalingReplicaSet",
                f"Scaled up replica set coredns-{new_hash} to {min(k, 2)}",
                "deployment-controller",
                api="apps/v1",
            )
            pod_started(pod, pod.created, pod.image, pulled=True)
        if pod.deleted is not None:
            if pod.phase == "before":
                emit(
                    pod.deleted - 6 * SEC,
                    "kube-system",
                    "Deployment",
                    "coredns",
                    coredns_uid,
                    "ScalingReplicaSet",
                    f"Scaled down replica set coredns-{old_hash} to {max(0, 1 - k // 2)}",
                    "deployment-controller",
                    api="apps/v1",
                )
            pod_killed(pod, pod.deleted - 5 * SEC)
    apps = [(t, app) for t, app, _ in Story.SERVICE_RESTARTS] + [
        (Story.POOL_RESTART, "vm-provisioner"),
        (Story.DECOY_DEPLOY, "web-ui"),
    ]
    for t, app in apps:
        app_uid, new_rs = new_uid(rng), suffix(rng, 10)
        emit(
            t + SEC,
            "ci",
            "Deployment",
            app,
            app_uid,
            "ScalingReplicaSet",
            f"Scaled up replica set {app}-{new_rs} to 1",
            "deployment-controller",
            api="apps/v1",
        )
        emit(
            t + 40 * SEC,
            "ci",
            "Deployment",
            app,
            app_uid,
            "ScalingReplicaSet",
            f"Scaled down replica set {app}-{suffix(rng, 10)} to 2",
            "deployment-controller",
            api="apps/v1",
        )
    probe_pods = [
        (app, f"{app}-{suffix(rng, 10)}-{suffix(rng)}", rng.choice(cluster.nodes))
        for app in ("dispatcher", "api-gateway", "workflows-conductor")
    ]
    for app, name, node in probe_pods:
        pod_uid = new_uid(rng)
        for t in arrivals(rng, Story.ONSET + 10 * MIN, Story.DOCKER_RECOVERED, lambda _: 2.0, 2.0):
            emit(
                t,
                "ci",
                "Pod",
                name,
                pod_uid,
                "Unhealthy",
                "Readiness probe failed: HTTP probe failed with statuscode: 503",
                "kubelet",
                node.name,
                etype="Warning",
                field_path="spec.containers{" + app + "}",
            )
    ordered = sorted(
        items.values(), key=lambda e: (e["metadata"]["namespace"], e["metadata"]["name"])
    )
    return json.dumps(
        {"apiVersion": "v1", "items": ordered, "kind": "List", "metadata": {"resourceVersion": ""}},
        indent=4,
    )


# --- ground truth ------------------------------------------------------------------------


def iso(t: int) -> str:
    return fmt.iso_s(t)


def expected(cluster: Cluster, facts: dict) -> dict:
    """What really happened, for tests of the analysis (see ``sample_logs/README.md``)."""
    return {
        "description": (
            "Reconstruction of the 2023-03-14 CI incident (kube-proxy iptables sync failures "
            "after an upgrade, rollback and re-upgrade), generated by sample_logs.generate."
        ),
        "seed": cluster.seed,
        "scale": cluster.scale,
        "window": {"start": iso(Story.START), "end": iso(Story.END)},
        "versions": {
            "kube-proxy": {"old": OLD, "new": NEW},
            "coredns": "1.8.7",
            "node-local-dns": "1.22.13",
            "rabbitmq": RABBIT_VERSION,
        },
        "incidents": [
            {
                "id": "kube-proxy-sync",
                "start": iso(Story.ONSET),
                "end": iso(Story.ALL_JOBS_OK),
                "onset": iso(Story.ONSET),
                "precursor_start": iso(facts["first_trickle"]),
                "sources": ["kube-proxy", "coredns", "circleci", "k8s-event"],
                "phases": {
                    "dns_outage": {
                        "start": iso(Story.COREDNS_RESTART),
                        "end": iso(max(n.down for n in cluster.nodes)),
                    },
                    "docker_recovered": iso(Story.DOCKER_RECOVERED),
                    "machine_recovered": iso(Story.MACHINE_RECOVERED),
                    "all_normal": iso(Story.ALL_NORMAL),
                },
                "description": (
                    'kube-proxy iptables-restore failures ("Sync failed") on every node after the '
                    "resumed upgrade; CI jobs delayed and failing to start; DNS fails after "
                    "the DNS restarts; node reboots clear it node by node; machine and macOS "
                    "delays last until 01:15."
                ),
            },
            {
                "id": "rabbitmq-restart",
                "start": iso(Story.RABBIT_ROLL[0]),
                "end": iso(Story.RABBIT_MITIGATED),
                "onset": iso(Story.RABBIT_ROLL[0]),
                "resolved": iso(Story.RABBIT_RESOLVED),
                "sources": ["rabbitmq", "circleci"],
                "description": (
                    "RabbitMQ connection and channel errors while the nodes are restarted one "
                    "by one; job delays rise again."
                ),
            },
            {
                "id": "rabbitmq-queues",
                "start": iso(Story.QUEUE_RESTART[0]),
                "end": iso(Story.QUEUE_MITIGATED),
                "onset": iso(Story.QUEUE_RESTART[0]),
                "resolved": iso(Story.QUEUE_RESOLVED),
                "sources": ["rabbitmq", "circleci"],
                "description": (
                    "RabbitMQ nodes restarted to fix crashed queues; channel errors on "
                    "github.checks.status and modest job delays."
                ),
            },
        ],
        "changes": [
            {
                "time": iso(c.t),
                "type": c.type,
                "target": c.target,
                "role": c.role,
                "incident": c.incident,
                "where": c.where,
                "description": c.description,
                **c.extra,
            }
            for c in changes(cluster)
        ],
        "nodes": {n.name: iso(n.down) for n in sorted(cluster.nodes, key=lambda n: n.name)},
        "node_details": {
            n.name: {
                "ip": n.ip,
                "reboot": iso(n.down),
                "back": iso(n.up),
                "precursor_from": iso(n.trickle_from) if n.trickle_from else None,
                "spike_onset": iso(n.onset),
                "first_sync_failure": facts["first_failure"].get(n.name),
                "last_sync_failure": facts["last_failure"].get(n.name),
                "sync_failures": facts["failures"].get(n.name, 0),
            }
            for n in sorted(cluster.nodes, key=lambda n: n.name)
        },
        "first_rebooted_node": cluster.first_rebooted.name,
        "normal_queue_delay_s": NORMAL_DELAY_S,
        "jobs": facts["jobs"],
        "files": facts["files"],
        "lines": facts["lines"],
    }
