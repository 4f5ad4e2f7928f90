"""The bundled sample: a deterministic reconstruction of the 2023-03-14 CI incident.

``SAMPLE_DIR`` holds only logs, laid out the way they would be collected, so that loading
the folder loads only logs. The ground truth sits beside it in ``EXPECTED_PATH``.
``python -m sample_logs.generate`` writes both again, byte for byte; ``--scale`` makes the
same story larger for benchmarks.
"""

from __future__ import annotations

import json
from pathlib import Path

SAMPLE_DIR = Path(__file__).parent / "circleci-2023-03-14"
EXPECTED_PATH = Path(__file__).parent / "circleci-2023-03-14.EXPECTED.json"


def expected(path: str | Path | None = None) -> dict:
    """The ground truth of a generated sample (the bundled one when ``path`` is None).

    ``path`` may be the logs folder itself or its ``.EXPECTED.json`` file.
    """
    if path is None:
        path = EXPECTED_PATH
    path = Path(path)
    if path.is_dir():
        path = path.with_name(path.name + ".EXPECTED.json")
    return json.loads(path.read_text())


__all__ = ["EXPECTED_PATH", "SAMPLE_DIR", "expected"]
