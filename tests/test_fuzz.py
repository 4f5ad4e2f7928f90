"""The fuzz harness (:mod:`tests.fuzzing`) in the normal suite: a few bundles each run.

A long run is one command (``FUZZ_EXAMPLES`` sets how many bundles)::

    FUZZ_EXAMPLES=2000 PYTHONPATH=$PWD python -m pytest tests/test_fuzz.py -q -p no:cacheprovider
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tests.fuzzing import bundles, check_bundle, write_bundle

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES <= 5,
)
@given(files=bundles())
def test_broken_bundles_never_crash_and_every_output_parses(files):
    with tempfile.TemporaryDirectory() as tmp:
        bundle, out = Path(tmp) / "bundle", Path(tmp) / "out"
        bundle.mkdir()
        out.mkdir()
        write_bundle(bundle, files)
        check_bundle(bundle, out)
