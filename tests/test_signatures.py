"""Signatures: each masking rule on one line, our own log formats, and the grouping step."""

from __future__ import annotations

import random
import re

import polars as pl
import pytest

from timeline.reading import signatures
from timeline.reading.signatures import (
    MASKS,
    WILDCARD,
    assign_templates,
    group_masked,
    mask,
    templates,
)

#: One line in and one masked line out for every rule in MASKS, by rule name.
RULE_CASES = {
    "timestamp": (
        "lease renewed at 2023-03-14T18:00:01.123456Z, next 15-Mar-2023::02:50:01",
        "lease renewed at <TS>, next <TS>",
    ),
    "date": ("backup of 2023-03-14 done", "backup of <TS> done"),
    "clock": ("window opens 18:00:00 daily", "window opens <TS> daily"),
    "uuid": (
        "[instance: b9000564-fe1a-409b-b8cc-1e88b294cd1d] VM Paused",
        "[instance: <UUID>] VM Paused",
    ),
    "erlang_pid": ("<0.1234.0> client unexpectedly closed", "<PID> client unexpectedly closed"),
    "url": ("GET https://api.github.com/repos/x?page=2 failed", "GET <URL> failed"),
    "host": (
        "lookup rabbitmq.ci.svc.cluster.local. on 10.96.0.10:53: no such host",
        "lookup <HOST> on <IP>:<PORT>: no such host",
    ),
    "ipv4_port": (
        "dial tcp 10.0.1.7:5672: connect: refused",
        "dial tcp <IP>:<PORT>: connect: refused",
    ),
    "ipv4": ("Setting endpoints for 10.96.0.10", "Setting endpoints for <IP>"),
    "ipv6": ("listening on fd00:10:244::1 and ::1", "listening on <IP> and <IP>"),
    "k8s_pod": ("Killing coredns-5d78c9869d-abcde", "Killing coredns-<POD>"),
    "k8s_daemonset_pod": ("restarted kube-proxy-x7k2p", "restarted kube-proxy-<POD>"),
    "path": ("Using Corefile /etc/coredns/Corefile", "Using Corefile <PATH>"),
    "windows_path": (r"open C:\Windows\Temp\a.log failed", "open <PATH> failed"),
    "quoted_assignment": ('tag="View Lock" held', 'tag="<STR>" held'),
    "quoted_single": ("user 'circleci' authenticated", "user '<STR>' authenticated"),
    "quoted_double": ('no endpoints for "default/kubernetes"', 'no endpoints for "<STR>"'),
    "version": ("kube-proxy version v1.26.2-eks-1", "kube-proxy version <VERSION>"),
    "size": ("stored 12.5 KB, free 2GiB", "stored <SIZE>, free <SIZE>"),
    "hex_prefixed": ("signal SIGSEGV addr=0x18 pc=0x1c6a2b4", "signal SIGSEGV addr=<HEX> pc=<HEX>"),
    "hex": ("image 45b0a11 and mask ffffffff", "image <HEX> and mask <HEX>"),
    "duration": (
        "Sync failed; retrying in 1m30s (took 250ms)",
        "Sync failed; retrying in <DURATION> (took <DURATION>)",
    ),
    "negative": ("block blk_-6952295868487656571 offset -12", "block blk_<NUM> offset <NUM>"),
    "underscored_num": ("attempt_1445144423722_0020_m_000000_0 ran", "attempt_<NUM>_m_<NUM> ran"),
    "num_underscore": ("session 30546173_4261722401 opened", "session <NUM>_<NUM> opened"),
    "num": ("iptables-restore: line 8022 failed", "iptables-restore: line <NUM> failed"),
}


def masked(text: str) -> str:
    return pl.select(mask(pl.lit(text))).item()


def test_every_rule_has_a_case():
    assert [rule.name for rule in MASKS] == list(RULE_CASES)


@pytest.mark.parametrize("name", list(RULE_CASES))
def test_rule(name):
    line, expected = RULE_CASES[name]
    assert masked(line) == expected


def test_each_case_needs_its_own_rule():
    """Without its rule a case masks differently, so no rule is dead weight."""
    for name, (line, expected) in RULE_CASES.items():
        expr = pl.lit(line)
        for rule in MASKS:
            if rule.name != name:
                expr = expr.str.replace_all(rule.pattern, rule.replacement)
        assert pl.select(expr).item() != expected, name


def test_every_rule_writes_a_named_placeholder():
    placeholders = {p for rule in MASKS for p in re.findall(r"<[A-Z]+>", rule.replacement)}
    assert all(re.search(r"<[A-Z]+>", rule.replacement) for rule in MASKS)
    assert {"<TS>", "<UUID>", "<PID>", "<IP>", "<PORT>", "<HEX>", "<NUM>", "<POD>"} <= placeholders


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # CoreDNS query log: the rcode and the flags stay.
        (
            '10.244.0.1:53523 - 19585 "A IN example.com. udp 29 false 512" NOERROR qr,rd,ra 56 '
            "0.000123s",
            '<IP>:<PORT> - <NUM> "A IN <HOST> udp <NUM> false <NUM>" NOERROR qr,rd,ra <NUM> '
            "<DURATION>",
        ),
        (
            '[fd00::1]:41012 - 7 "AAAA IN api.github.com. udp 43 true 1232" SERVFAIL qr,rd 43 '
            "2.000831915s",
            '[<IP>]:<NUM> - <NUM> "AAAA IN <HOST> udp <NUM> true <NUM>" SERVFAIL qr,rd <NUM> '
            "<DURATION>",
        ),
        # RabbitMQ connection lines, one of them with its continuation line.
        (
            "closing AMQP connection <0.1234.0> (10.0.0.5:43210 -> 10.0.1.7:5672, vhost: '/', "
            "user: 'circleci')",
            "closing AMQP connection <PID> (<IP>:<PORT> -> <IP>:<PORT>, vhost: '<STR>', "
            "user: '<STR>')",
        ),
        (
            "closing AMQP connection <0.32602.3> (10.135.45.51:53066 -> 10.61.253.65:5671, "
            "vhost: '/iap', user: 'pronghorn'):\nclient unexpectedly closed TCP connection",
            "closing AMQP connection <PID> (<IP>:<PORT> -> <IP>:<PORT>, vhost: '<STR>', "
            "user: '<STR>'):\nclient unexpectedly closed TCP connection",
        ),
        # kube-proxy (klog) messages that are not structured.
        (
            "Failed to execute iptables-restore: exit status 1 (iptables-restore: line 8022 "
            "failed\n)",
            "Failed to execute iptables-restore: exit status <NUM> (iptables-restore: line <NUM> "
            "failed\n)",
        ),
        ("Sync failed; retrying in 30s", "Sync failed; retrying in <DURATION>"),
        (
            "Deleting rs: 10.233.0.3:9153/TCP/10.233.114.193:9153",
            "Deleting rs: <IP>:<PORT>/TCP/<IP>:<PORT>",
        ),
        (
            "sync-runner: 3.420021257s since last run, possible in 6.579978743s, scheduled in "
            "6.57999524s",
            "sync-runner: <DURATION> since last run, possible in <DURATION>, scheduled in "
            "<DURATION>",
        ),
        ("Using iptables Proxier", "Using iptables Proxier"),
        # CI job summaries as the CI parsers write them.
        (
            "job build-and-test #482113 success (docker, queued 4.2s, ran 61.2s)",
            "job build-and-test #<NUM> success (docker, queued <DURATION>, ran <DURATION>)",
        ),
        (
            "workflow run CI #3187 cancelled (queued 0.0s, ran 1822.0s)",
            "workflow run CI #<NUM> cancelled (queued <DURATION>, ran <DURATION>)",
        ),
    ],
)
def test_our_own_logs(line, expected):
    assert masked(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "java.io.IOException: stream closed",  # a class name, not a host
        "Starting proxier.go worker",  # a Go file, not a host
        "Waiting for caches to sync for service config",
        "read/write timeout",  # not a path
        "Using iptables Proxier",
        "NOERROR qr,rd,ra",
    ],
)
def test_wording_is_left_alone(line):
    assert masked(line) == line


def test_mask_keeps_null_and_takes_a_column_name():
    frame = pl.DataFrame({"message": ["took 5ms", None]})
    assert frame.select(mask("message")).to_series().to_list() == ["took <DURATION>", None]


# --- grouping ------------------------------------------------------------------------------


def test_many_values_at_one_position_become_a_variable():
    users = ["cyrus", "news", "test", "root"]
    out = group_masked([f"session opened for user {u} by (uid=<NUM>)" for u in users])
    assert set(out) == {f"session opened for user {WILDCARD} by (uid=<NUM>)"}


def test_few_values_at_one_position_stay_apart():
    lines = [f"[instance: <UUID>] VM {s} (Lifecycle Event)" for s in ("Paused", "Resumed")]
    assert group_masked(lines) == lines


def test_two_plain_words_must_remain():
    lines = [f"{w} (command <NUM>)" for w in ("boot", "wait", "halt", "run")]
    assert group_masked(lines) == lines


def test_values_the_masks_missed_merge_where_the_words_agree():
    lines = [
        "data_thread() got no answer from any [Thunderbird_A8] datasource",
        "data_thread() got no answer from any [Thunderbird_B7] datasource",
    ]
    assert set(group_masked(lines)) == {
        "data_thread() got no answer from any [Thunderbird_<*>] datasource"
    }


def test_a_differing_word_keeps_messages_apart():
    lines = ["Failed password for root from <IP>", "Accepted password for root from <IP>"]
    assert group_masked(lines) == lines


def test_merged_tokens_keep_what_they_share():
    lines = ["connection from <IP> (<HOST>) at <TS>", "connection from <IP> () at <TS>"]
    assert set(group_masked(lines)) == {"connection from <IP> (<*>) at <TS>"}


def test_grouping_does_not_depend_on_order():
    lines = [f"user u{i} logged in from <IP> port <NUM>" for i in range(8)]
    lines += [f"removing {w} service" for w in ("chargen", "daytime", "echo", "time", "ftp")]
    lines += ["check pass; user unknown", "VM Paused", "VM Resumed"]
    expected = dict(zip(lines, group_masked(lines), strict=True))
    shuffled = lines[:]
    random.Random(7).shuffle(shuffled)
    assert dict(zip(shuffled, group_masked(shuffled), strict=True)) == expected


def test_whitespace_of_a_message_is_kept():
    text = "closing AMQP connection <PID> (<IP>:<PORT>):\nclient unexpectedly closed"
    assert group_masked([text, "  indented  twice "]) == [text, "  indented  twice "]


def test_empty_input_and_empty_messages():
    assert group_masked([]) == []
    assert group_masked(["", ""]) == ["", ""]


def test_templates_runs_both_steps_and_keeps_nulls():
    messages = pl.Series("msg", [f"user {u} from 10.0.0.{i}" for i, u in enumerate("abcd")])
    out = templates(messages.extend(pl.Series("msg", [None], dtype=pl.String)))
    assert out.name == "msg"
    assert out.to_list() == ["user <*> from <IP>"] * 4 + [None]


def test_assign_templates_keeps_given_templates_and_separates_sources():
    users = ["ann", "bob", "cy", "dee"]
    frame = pl.DataFrame(
        {
            "source": ["rabbitmq"] * 4 + ["sshd"] * 4 + ["kube-proxy"],
            "message": [f"user {u} authenticated and granted access" for u in users] * 2
            + ['"Sync failed" retryingTime="30s"'],
            "template": [None] * 8 + ["Sync failed"],
            "line": list(range(1, 10)),
        }
    )
    out = assign_templates(frame)
    assert out.columns == frame.columns
    assert out["line"].to_list() == list(range(1, 10))
    assert out["template"].to_list() == ["user <*> authenticated and granted access"] * 8 + [
        "Sync failed"
    ]
    # Grouped per source: two sources with 2 users each do not reach min_values.
    split = frame.with_columns(source=pl.Series(["a", "a", "b", "b"] * 2 + ["kube-proxy"]))
    assert assign_templates(split)["template"].n_unique() == 5


def test_assign_templates_adds_the_column_and_handles_no_rows():
    frame = pl.DataFrame({"text": ["took 5ms"]})
    assert assign_templates(frame, "text", by=None)["template"].to_list() == ["took <DURATION>"]
    empty = pl.DataFrame(schema={"source": pl.String, "message": pl.String, "template": pl.String})
    assert assign_templates(empty).schema == empty.schema


def test_assign_templates_leaves_a_frame_with_every_template_given_alone():
    frame = pl.DataFrame({"source": ["klog"], "message": ["x 1"], "template": ["Sync failed"]})
    assert assign_templates(frame).equals(frame)


def test_module_exports():
    assert set(signatures.__all__) >= {"mask", "templates", "assign_templates", "MASKS"}


def _rabbitmq_churn(count: int, seed: int) -> list[str]:
    """RabbitMQ connection messages, each with its own pid and client port, and a few
    rarer shapes that only the later rules mask (paths, versions, quoted names)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        pid = f"<0.{rng.randint(200, 30000)}.0>"
        peer = f"10.244.{rng.randint(0, 40)}.{rng.randint(2, 250)}:{rng.randint(30000, 60000)}"
        shape = rng.random()
        if shape < 0.5:
            out.append(f"accepting AMQP connection {pid} ({peer} -> 10.244.0.5:5672)")
        elif shape < 0.95:
            user = rng.choice(["circleci", "jobs", "metrics"])
            out.append(
                f"connection {pid} ({peer} -> 10.244.0.5:5672): user '{user}' authenticated"
                " and granted access to vhost '/'"
            )
        else:
            version = f"v3.{rng.randint(8, 12)}.{rng.randint(0, 30)}"
            out.append(f"Loading plugin {version} from /usr/lib/rabbitmq/plugins-{pid}")
    return out


def test_masking_the_distinct_rest_gives_what_masking_every_row_gives():
    messages = pl.Series("message", _rabbitmq_churn(3000, seed=11))
    partial, done = signatures.mask_until_repeated(messages)
    # the pids and peers make every message distinct until they are masked; then the
    # messages repeat, and the later rules need only run on the distinct ones
    assert 0 < done < len(MASKS)
    assert messages.n_unique() > 2500
    assert partial.n_unique() < 300
    every_row = pl.select(mask(pl.lit(messages))).to_series().to_list()
    rest = pl.select(signatures._apply(pl.lit(partial), MASKS[done:])).to_series()
    assert rest.to_list() == every_row
    with_nulls = pl.Series("message", [None, *messages, None], dtype=pl.String)
    assert signatures.mask_series(with_nulls).to_list() == [None, *every_row, None]


def test_assign_templates_equals_masking_every_row_then_grouping():
    messages = _rabbitmq_churn(2000, seed=23) + [None, "took 5ms", "took 7ms"]
    frame = pl.DataFrame({"source": ["rabbitmq"] * len(messages), "message": messages})
    masked = frame.select(mask("message")).to_series()
    distinct = masked.drop_nulls().value_counts()
    grouped = dict(
        zip(
            distinct["message"].to_list(),
            group_masked(distinct["message"].to_list(), distinct["count"].to_list()),
            strict=True,
        )
    )
    expected = [None if m is None else grouped[m] for m in masked.to_list()]
    assert assign_templates(frame)["template"].to_list() == expected
