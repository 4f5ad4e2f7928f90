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


def read_real(path, *, unparsed: int = 0, **options):
    """``path`` (real lines kept as a fixture) read in this process, without the cache or
    inferred changes, after checking that every line is accounted for and that
    ``unparsed`` of them are unparsed lines: the opening of every test of real lines."""
    import timeline

    loaded = timeline.read(path, infer=False, cache=False, workers=1, **options)
    assert every_line_accounted(loaded)
    assert loaded.summary.files["unparsed_lines"].sum() == unparsed
    return loaded
