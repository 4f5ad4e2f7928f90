"""Where the bundled sample logs are, in a checkout or an installed package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SAMPLE = "circleci-2023-03-14"


def sample_path() -> Path:
    """The folder of the bundled 2023-03-14 sample logs."""
    return Path(str(resources.files("sample_logs").joinpath(SAMPLE)))


def expected_path() -> Path:
    """The sample's ground truth, beside the logs."""
    return Path(str(resources.files("sample_logs").joinpath(f"{SAMPLE}.EXPECTED.json")))
