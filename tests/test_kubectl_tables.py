"""Kubernetes events as pasted from a terminal: get events tables, describe sections, YAML."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

import timeline
from parsers.kubectl_tables import age_seconds
from tests.lines import every_line_accounted, read_real

NOW = datetime(2023, 3, 14, 18, 30, tzinfo=UTC)


def logs(loaded):
    """The event (log) rows, in line order; change rows aside."""
    return loaded.events.filter(pl.col("kind") == "log").sort("line")


NEW = """\
NAMESPACE     LAST SEEN   TYPE      REASON              OBJECT                                MESSAGE
kube-system   50m         Normal    Pulled              pod/kube-proxy-7xq2d                  Successfully pulled image "registry.k8s.io/kube-proxy:v1.26.2" in 1.2s (1.2s including waiting)
kube-system   29m         Warning   Unhealthy           pod/coredns-5d78c9869d-4kq2p          Readiness probe failed: HTTP probe failed with statuscode: 503
default       2m30s       Warning   FailedScheduling    pod/api-7d9f8c6b5d-x2x7k              0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.
default       3d          Normal    ScalingReplicaSet   deployment/api                        Scaled up replica set api-7d9f8c6b5d to 3
"""

OLD = """\
LAST SEEN   FIRST SEEN   COUNT     NAME                                         KIND         SUBOBJECT                  TYPE      REASON                  SOURCE                      MESSAGE
1m          1h           31        rabbitmq-0.174c8b5e6f7a8b9c                  Pod          spec.containers{rabbitmq}  Warning   BackOff                 kubelet, ip-10-0-1-5        Back-off restarting failed container
5m          5m           1         api-7d9f8c6b5d.174c8a3b2f1e0d9c              ReplicaSet                              Normal    SuccessfulCreate        replicaset-controller       Created pod: api-7d9f8c6b5d-x2x7k
"""

DESCRIBE = """\
Name:             coredns-5d78c9869d-4kq2p
Namespace:        kube-system
Node:             ip-10-0-1-5/10.0.1.5
Status:           Running
Events:
  Type     Reason     Age                 From               Message
  ----     ------     ----                ----               -------
  Normal   Scheduled  12m                 default-scheduler  Successfully assigned kube-system/coredns-5d78c9869d-4kq2p to ip-10-0-1-5
  Warning  Unhealthy  10s (x12 over 11m)  kubelet            Readiness probe failed: HTTP probe failed with statuscode: 503
"""


def test_new_columns_with_namespaces_count_back_from_now(read):
    loaded = read("events.txt", NEW, now=NOW)
    assert loaded.summary.files["format"].to_list() == ["kubectl-events"]
    assert loaded.summary.unparsed_lines == 0
    events = logs(loaded)
    assert events["ts"].to_list() == [
        NOW - timedelta(minutes=50),
        NOW - timedelta(minutes=29),
        NOW - timedelta(minutes=2, seconds=30),
        NOW - timedelta(days=3),
    ]
    assert events["level"].to_list() == ["info", "warning", "warning", "info"]
    assert events["source"].unique().to_list() == ["k8s-event"]
    attrs = json.loads(events["attrs"][1])
    assert attrs["object"] == "pod/kube-system/coredns-5d78c9869d-4kq2p"
    assert attrs["time_from"] == "age 29m before 2023-03-14T18:30:00Z (the time given as now)"
    assert events["message"][2].startswith("FailedScheduling: 0/3 nodes are available")
    # what the table reports as changes are change rows, as from -o json
    changes = loaded.events.filter(pl.col("kind") == "change").sort("ts")
    assert [json.loads(a)["change_type"] for a in changes["attrs"]] == ["scale", "deploy"]
    assert json.loads(changes["attrs"][0])["to"] == 3


def test_a_node_s_events_in_a_table_name_the_node_without_the_event_s_namespace(read):
    text = (
        "NAMESPACE   LAST SEEN   TYPE      REASON     OBJECT                          MESSAGE\n"
        "default     3m          Warning   Rebooted   node/ip-10-0-1-5.ec2.internal   "
        "Node ip-10-0-1-5.ec2.internal has been rebooted, boot id: 8f1c\n"
        "default     2m          Normal    NodeReady  node/ip-10-0-1-5.ec2.internal   "
        "Node ip-10-0-1-5.ec2.internal status is now: NodeReady\n"
    )
    loaded = read("events.txt", text, now=NOW)
    objects = {json.loads(a)["object"] for a in logs(loaded)["attrs"]}
    assert objects == {"node/ip-10-0-1-5.ec2.internal"}
    reboot = loaded.events.filter(pl.col("kind") == "change").row(0, named=True)
    assert json.loads(reboot["attrs"])["target"] == "node/ip-10-0-1-5.ec2.internal"


def test_old_columns_time_the_first_occurrence_and_keep_the_count(read):
    loaded = read("events-1.9.txt", OLD, now="2023-03-14T18:30:00Z")
    assert loaded.summary.unparsed_lines == 0
    events = logs(loaded)
    first = json.loads(events["attrs"][0])
    assert events["ts"][0] == NOW - timedelta(hours=1)
    assert (first["count"], first["last_seen"], first["field_path"]) == (
        31,
        "1m",
        "spec.containers{rabbitmq}",
    )
    assert first["object"] == "pod/rabbitmq-0"
    change = loaded.events.filter(pl.col("kind") == "change").row(0, named=True)
    assert json.loads(change["attrs"])["target"] == "pod/api-7d9f8c6b5d-x2x7k"
    assert events["component"].to_list() == ["kubelet", "replicaset-controller"]
    assert events["host"][0] == "ip-10-0-1-5"


def test_without_now_ages_count_back_from_the_file_time_and_say_so(write):
    path = write("events.txt", NEW)
    stamp = datetime(2023, 3, 15, 9, 0, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    events = logs(timeline.read(path, infer=False))
    assert events["ts"][0] == datetime(2023, 3, 15, 8, 10, tzinfo=UTC)
    assert "the file's modification time" in json.loads(events["attrs"][0])["time_from"]


def test_describe_events_section(read):
    loaded = read("describe-coredns.txt", DESCRIBE, now=NOW)
    assert loaded.summary.files["format"].to_list() == ["kubectl-events"]
    events = logs(loaded)
    assert events.height == 2
    unhealthy = json.loads(events["attrs"][1])
    assert (unhealthy["count"], unhealthy["last_seen"]) == (12, "10s")
    # timed at the first of the twelve, 11 minutes before now
    assert events["ts"][1] == NOW - timedelta(minutes=11)
    assert events["component"].to_list() == ["default-scheduler", "kubelet"]
    # the pod's other fields are not events, and are counted as such
    warnings = loaded.summary.warnings.filter(pl.col("unparsed"))
    assert warnings["line"].to_list() == [1, 2, 3, 4]
    assert warnings["reason"].unique().to_list() == [
        "not a kubectl events table row (before the first table)"
    ]


@pytest.mark.parametrize("age", ["401y", "9999y", "300000y", "99999999999s", "2y999999999d"])
def test_an_age_older_than_any_cluster_leaves_its_row_untimed(read, age):
    """An age no cluster shows (hostile input, a clock gone wrong) is kept as an untimed
    row that says why, in a get events table and in a describe section; the rest of the
    table is timed as ever."""
    table = NEW.replace("2m30s      ", f"{age:<11}", 1)
    described = DESCRIBE.replace("10s (x12 over 11m)", f"10s (x12 over {age})")
    for name, text, row in (("events.txt", table, 2), ("describe.txt", described, 1)):
        events = logs(read(name, text, now=NOW))
        assert events["ts"][row] is None
        attrs = json.loads(events["attrs"][row])
        assert attrs["time_missing"] == f"the table gives no time, only the age {age}"
        assert events["ts"].null_count() == 1


def test_ages_counted_back_from_a_now_near_year_1_leave_the_rows_untimed(read):
    events = logs(read("events.txt", NEW, now=datetime(1, 1, 1, 0, 40, tzinfo=UTC)))
    assert events.height == 4 and events["ts"].null_count() == 4
    ages = [json.loads(a)["time_missing"].rsplit(" ", 1)[-1] for a in events["attrs"]]
    assert ages == ["50m", "29m", "2m30s", "3d"]


@pytest.mark.parametrize("lead", ["", "  "])
def test_get_events_yaml(read, lead):
    indent = lead + "  "
    yaml_text = f"""\
apiVersion: v1
items:
{lead}- apiVersion: v1
{indent}count: 3
{indent}firstTimestamp: "2023-03-14T18:00:07Z"
{indent}involvedObject:
{indent}  kind: Pod
{indent}  name: coredns-5d78c9869d-4kq2p
{indent}  namespace: kube-system
{indent}kind: Event
{indent}lastTimestamp: "2023-03-14T18:01:37Z"
{indent}message: 'Readiness probe failed: HTTP probe failed with statuscode: 503'
{indent}metadata:
{indent}  name: coredns-5d78c9869d-4kq2p.174c8b5e6f7a8b9c
{indent}  namespace: kube-system
{indent}reason: Unhealthy
{indent}source:
{indent}  component: kubelet
{indent}  host: ip-10-0-1-5
{indent}type: Warning
kind: List
metadata:
  resourceVersion: ""
"""
    loaded = read("events.yaml", yaml_text)
    assert loaded.summary.files["format"].to_list() == ["k8s-events"]
    assert loaded.summary.unparsed_lines == 0
    row = loaded.events.row(0, named=True)
    assert row["ts"] == datetime(2023, 3, 14, 18, 0, 7, tzinfo=UTC)
    assert (row["level"], row["host"]) == ("warning", "ip-10-0-1-5")


WIDE = """\
LAST SEEN   TYPE      REASON      OBJECT                         SUBOBJECT                  SOURCE                 MESSAGE                                                          FIRST SEEN   COUNT   NAME
3m          Warning   Unhealthy   pod/coredns-5d78c9869d-4kq2p   spec.containers{coredns}   kubelet, ip-10-0-1-5   Readiness probe failed: HTTP probe failed with statuscode: 503   14m          12      coredns-5d78c9869d-4kq2p.174c8b5e6f7a8b9c
45s         Normal    Killing     pod/coredns-5d78c9869d-4kq2p   spec.containers{coredns}   kubelet, ip-10-0-1-5   Stopping container coredns                                       45s          1       coredns-5d78c9869d-4kq2p.174c8b6f01a2b3c4
"""

FIRST_SEEN_FIRST = """\
FIRST SEEN   LAST SEEN   COUNT     NAME                          KIND      SUBOBJECT   TYPE      REASON              SOURCE                  MESSAGE
2h           2h          1         api-7d9f8c6b5d                ReplicaSet            Normal    SuccessfulCreate    replicaset-controller   Created pod: api-7d9f8c6b5d-x2x7k
"""


def test_wide_columns_put_the_message_in_the_middle(read):
    loaded = read("events-wide.txt", WIDE, now=NOW)
    assert loaded.summary.unparsed_lines == 0
    events = logs(loaded)
    first = json.loads(events["attrs"][0])
    assert events["ts"].to_list() == [NOW - timedelta(minutes=14), NOW - timedelta(seconds=45)]
    assert events["message"][0] == (
        "Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 503"
    )
    assert (first["count"], first["last_seen"], first["field_path"]) == (
        12,
        "3m",
        "spec.containers{coredns}",
    )
    assert events["host"].to_list() == ["ip-10-0-1-5", "ip-10-0-1-5"]


def test_first_seen_before_last_seen(read):
    events = logs(read("events.txt", FIRST_SEEN_FIRST, now=NOW))
    assert events["ts"][0] == NOW - timedelta(hours=2)
    assert json.loads(events["attrs"][0])["object"] == "replicaset/api-7d9f8c6b5d"


# kubectl 1.7 titled describe's age column "Last"
DESCRIBE_LAST = """\
Events:
  Type     Reason          Last                 From                         Message
  ----     ------          ----                 ----                         -------
  Normal   Pulled          3m                   kubelet, ip-10-0-7-21        Container image "quay.io/acme/api:2.4.1" already present on machine
  Warning  Unhealthy       40s (x6 over 2m)     kubelet, ip-10-0-7-21        Readiness probe failed: HTTP probe failed with statuscode: 503
"""


def test_describe_events_with_last_column(read):
    loaded = read("describe-api.txt", DESCRIBE_LAST, now=NOW)
    assert loaded.summary.files["format"].to_list() == ["kubectl-events"]
    events = logs(loaded)
    assert events["level"].to_list() == ["info", "warning"]
    assert events["ts"].to_list() == [NOW - timedelta(minutes=3), NOW - timedelta(minutes=2)]
    assert events["message"][1].startswith("Unhealthy: Readiness probe failed")


# rows copied without the header line, as people paste the lines that matter
BARE_GET_ROWS = """\
monitoring   4m12s       Warning   Unhealthy            pod/prometheus-k8s-0                  Readiness probe failed: Get "http://10.2.1.7:9090/-/ready": context deadline exceeded
monitoring   3m          Normal    Killing              pod/prometheus-k8s-0                  Stopping container prometheus
monitoring   2m58s       Normal    SuccessfulCreate     statefulset/prometheus-k8s            create Pod prometheus-k8s-0 in StatefulSet prometheus-k8s successful
"""
BARE_DESCRIBE_ROWS = """\
  Warning  FailedScheduling  2m (x3 over 6m)  default-scheduler  0/4 nodes are available: 4 Insufficient memory.
  Normal   Scheduled         45s              default-scheduler  Successfully assigned batch/etl-28411-x2v9q to pool-b-3
"""


def test_get_events_rows_without_their_header(read):
    loaded = read("events.txt", BARE_GET_ROWS, now=NOW)
    assert loaded.summary.files["format"].to_list() == ["kubectl-events"]
    events = logs(loaded)
    assert events["level"].to_list() == ["warning", "info", "info"]
    assert events["ts"].to_list() == [
        NOW - timedelta(minutes=4, seconds=12),
        NOW - timedelta(minutes=3),
        NOW - timedelta(minutes=2, seconds=58),
    ]
    assert events["message"][0] == (
        'Unhealthy: Readiness probe failed: Get "http://10.2.1.7:9090/-/ready": '
        "context deadline exceeded"
    )
    # the namespace column places the object
    assert json.loads(events["attrs"][2])["object"] == "statefulset/monitoring/prometheus-k8s"


def test_describe_rows_without_their_header(read):
    loaded = read("describe.txt", BARE_DESCRIBE_ROWS, now=NOW)
    events = logs(loaded)
    assert events["ts"].to_list() == [NOW - timedelta(minutes=6), NOW - timedelta(seconds=45)]
    assert events["component"].to_list() == ["default-scheduler", "default-scheduler"]
    assert (
        events["message"][0] == "FailedScheduling: 0/4 nodes are available: 4 Insufficient memory."
    )


def test_a_describe_row_shifted_off_its_columns_is_read_by_its_cells(read):
    shifted = DESCRIBE_LAST.replace(
        "  Warning  Unhealthy       40s (x6 over 2m)     kubelet, ip-10-0-7-21        ",
        "  Warning  Unhealthy       40s (x6 over 2m)  kubelet, ip-10-0-7-21  ",
    )
    events = logs(read("describe-api.txt", shifted, now=NOW))
    assert events["ts"][1] == NOW - timedelta(minutes=2)
    assert events["message"][1].startswith("Unhealthy: Readiness probe failed")
    assert events["host"][1] == "ip-10-0-7-21"


def test_a_pulled_image_in_rows_without_their_object_is_still_a_change(read):
    rows = (
        '  Normal   Pulling    52s   kubelet, pool-b-3  pulling image "registry.acme.io/etl:3.2.0"\n'
        "  Normal   Pulled     44s   kubelet, pool-b-3  Successfully pulled image "
        '"registry.acme.io/etl:3.2.0"\n'
    )
    loaded = read("describe.txt", rows, now=NOW, infer=True)
    changes = loaded.events.filter(pl.col("kind") == "change")
    assert changes.height == 1
    assert changes["message"][0].startswith("deploy ")
    assert json.loads(changes["attrs"][0])["to"] == "registry.acme.io/etl:3.2.0"
    assert logs(loaded).height == 2


REAL = Path(__file__).parent / "data" / "real" / "k8s-events"


@pytest.mark.parametrize(
    ("name", "first_seen", "levels", "components"),
    [
        (
            "describe-calico-sandbox.txt",
            [None, None, "100s"],
            ["info", "warning", "info"],
            ["default-scheduler", "kubelet", "kubelet"],
        ),
        (
            "describe-failed-scheduling.txt",
            ["18h", None],
            ["warning", "warning"],
            ["default-scheduler", "default-scheduler"],
        ),
        (
            "get-events-old-columns.txt",
            ["13m"] * 4,
            ["info"] * 4,
            ["default-scheduler", "kubelet", "kubelet", "kubelet"],
        ),
        # kubectl 1.7's Last column, with "(x2 starting 1h)" and "(x3 from 1h)", three
        # rows shifted off their columns
        (
            "describe-last-column-1.7.txt",
            [None, None, "1h", "1h", "1h", "2h"],
            ["info", "info", "info", "warning", "warning", "info"],
            ["kubelet"] * 6,
        ),
        (
            "describe-backoff.txt",
            [None] * 5 + ["20m"] * 3 + ["20m"],
            ["info"] * 8 + ["warning"],
            ["default-scheduler"] + ["kubelet"] * 8,
        ),
        ("get-events-broker.txt", ["4h"], ["info"], ["standard-controller"]),
        ("get-events-autoscaler.txt", [None], ["info"], [None]),
    ],
)
def test_real_event_tables_are_a_row_an_event_at_its_age(name, first_seen, levels, components):
    """Tables and describe sections pasted in public issues (``tests/data/real/README.md``):
    an event row per table row, timed by its first age (else its last) before now."""
    loaded = read_real(REAL / name, now=NOW)
    events = logs(loaded)
    assert events.height == len(levels)
    assert events["level"].to_list() == levels
    assert events["component"].to_list() == components
    attrs = [json.loads(a) for a in events["attrs"]]
    assert [a.get("first_seen") for a in attrs] == first_seen
    written = [a.get("first_seen") or a["last_seen"] for a in attrs]
    ages = pl.select(age_seconds(pl.Series(written))).to_series()
    assert (NOW - events["ts"]).dt.total_seconds().to_list() == ages.to_list()


def test_a_table_that_writes_times_where_ages_go_is_timed_by_them():
    """``LAST SEEN`` and ``FIRST SEEN`` as times (``2019-07-05T15:01:04Z``, custom columns
    under kubectl's names, EnMasseProject/enmasse#2970): the row is at that time, where it
    had none, and a ``<none>`` cell is no subobject."""
    loaded = timeline.read(
        REAL / "get-events-absolute-times.txt", now=NOW, infer=False, cache=False, workers=1
    )
    assert every_line_accounted(loaded)
    assert loaded.summary.files["unparsed_lines"].sum() == 0
    event = logs(loaded).row(0, named=True)
    assert event["ts"] == datetime(2019, 7, 5, 15, 1, 4, tzinfo=UTC)
    assert event["component"] == "deployment-controller"
    attrs = json.loads(event["attrs"])
    assert attrs["time_from"] == "the time the table gives" and "time_missing" not in attrs
    assert "field_path" not in attrs
    change = loaded.events.filter(pl.col("kind") == "change")
    assert change["ts"].to_list() == [event["ts"]]


def test_images_of_two_containers_in_a_describe_section_are_no_upgrade():
    """A ``describe`` section names no container (kubernetes/kubernetes#113215): the
    sidecar's image found on the node after the manager's was pulled is no upgrade from
    the manager's image to the sidecar's, only the fresh pull is a deploy."""
    loaded = timeline.read(
        REAL / "describe-backoff.txt", now=NOW, infer=False, cache=False, workers=1
    )
    changes = loaded.events.filter(pl.col("kind") == "change")
    assert changes.height == 1
    change = json.loads(changes["attrs"][0])
    assert (change["change_type"], change["to"]) == ("deploy", "xxx/xxx/xxx-controller:v0.0.1")
    assert "from" not in change


def test_a_describe_row_pasted_flush_left_keeps_the_rest_of_its_message():
    """A ``describe`` row pasted without its indentation, its message's second line (the
    cloud's JSON error) under it (ansible-collections/community.kubernetes#249): one
    warning event whose message holds both lines, where both lines were unparsed."""
    path = REAL / "describe-row-neutron-error.txt"
    loaded = read_real(path, now=NOW)
    events = logs(loaded)
    assert events.height == 1
    event = events.row(0, named=True)
    assert (event["level"], event["component"], event["line"]) == (
        "warning",
        "service-controller",
        1,
    )
    first, second = event["message"].splitlines()
    assert first.startswith("SyncLoadBalancerFailed: Error syncing load balancer:")
    assert second == path.read_text().splitlines()[1]
    assert event["ts"] == NOW - timedelta(minutes=74)
    assert json.loads(event["attrs"])["count"] == 19
