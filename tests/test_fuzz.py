"""The fuzz harness (:mod:`tests.fuzzing`) in the normal suite: a few bundles each run.

A long run is one command (``FUZZ_EXAMPLES`` sets how many bundles)::

    FUZZ_EXAMPLES=2000 PYTHONPATH=$PWD python -m pytest tests/test_fuzz.py -q -p no:cacheprovider
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings

import parsers
from tests.fuzzing import bundles, check_bundle, write_bundle

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))

#: Bundles the long run broke, kept as examples so that they are tried every time.
#: A one-line CircleCI page cut inside its second job: its line was counted both as the
#: first line of a row and as unparsed.
CUT_ONE_LINE_PAGE = {
    b"jobs.json": b'{"items":[{"job_number":482120,"id":"c1a5e1d2","started_at":'
    b'"2023-03-14T19:41:02Z","name":"integration-tests","project_slug":"gh/acme/api",'
    b'"status":"infrastructure_fail","type":"build","stopped_at":"2023-03-14T19:41:44Z"},'
    b'{"dependencies":["c1a5e1d2"],"id":"0b6a29f4","name":',
}
#: A kubectl events table header cut short, with no row under it: no row, no reason.
TABLE_HEADER_ALONE = {b"kube-proxy.log": b"LAST SEEN   TYPE "}
#: Kubernetes events followed by RabbitMQ lines: each number of the first such line was a
#: JSON value of its own, and the line was counted unparsed six times.
EVENTS_THEN_RABBITMQ = {
    b"kube-proxy.log": parsers.registry.get("k8s-events").samples[-1].text.encode()
    + b"2021-07-29 16:09:34.409461+00:00 [erro] <0.29174.0> ** Generic server terminating\n"
    b"2021-07-29 16:09:34.411208+00:00 [noti] <0.29171.0> Restarting crashed queue\n",
}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES <= 5,
)
@given(files=bundles())
@example(files=CUT_ONE_LINE_PAGE)
@example(files=EVENTS_THEN_RABBITMQ)
@example(files=TABLE_HEADER_ALONE)
def test_broken_bundles_never_crash_and_every_output_parses(files):
    with tempfile.TemporaryDirectory() as tmp:
        bundle, out = Path(tmp) / "bundle", Path(tmp) / "out"
        bundle.mkdir()
        out.mkdir()
        write_bundle(bundle, files)
        check_bundle(bundle, out)
