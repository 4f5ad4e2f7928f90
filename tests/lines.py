"""The rule every read keeps, for the tests that check it on their own inputs."""

from __future__ import annotations


def every_line_accounted(read) -> bool:
    """Whether every line of every file of ``read`` (a ``Loaded`` or its summary) starts a
    row, continues one, is unparsed, is a wrapper's own line, or repeats a record read in
    another file."""
    files = getattr(read, "summary", read).files
    return bool(
        (
            files["first_lines"]
            + files["continuation_lines"]
            + files["unparsed_lines"]
            + files["wrapper_lines"]
            + files["duplicate_lines"]
            == files["lines"]
        ).all()
    )
