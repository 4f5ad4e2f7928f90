"""CircleCI step output: what a job's step printed, as CircleCI's API gives it.

A v1.1 build (``GET /api/v1.1/project/:vcs/:org/:repo/:build_num``) names, for each
action of each step, an ``output_url``; what that URL answers, saved as a file, is a JSON
array of the output's pieces, each a chunk of the step's terminal with the time it came::

    [{"message":"dial tcp: lookup rabbitmq ... i/o timeout\\r\\n","time":"2023-03-14T18:08:59.002Z",
      "type":"out","truncated":false}, ...]

Each line of each piece is a log row at the piece's time (the CR-LF of a terminal, and
the carriage returns of progress bars, end lines). ``type`` is the stream (``out`` or
``err``), not a level: a step writes its errors anywhere. The lines CircleCI writes
itself when a step fails are errors: ``Exited with code exit status N`` (N not 0), and
``Too long with no output``. The file names the step (``component``): the output holds no
job name.
"""

from __future__ import annotations

import re

import polars as pl

from parsers import jobs, registry
from parsers.common import json_object, records
from parsers.registry import Parser, Sample, Score

NAME = "circleci-output"
SOURCE = "circleci"

DTYPE = pl.Struct({"message": pl.String, "time": pl.String, "type": pl.String})
#: The stream of a piece of output, as only CircleCI's output names it.
_STREAM = re.compile(r'"type"\s*:\s*"(?:out|err)"')
#: The step a file holds: its name, without the endings a saved file gets.
_STEP = r"([^/\\]+?)(?:\.(?:json|txt|log))?(?:\.(?:gz|bz2|xz|zst))?$"
#: What CircleCI writes when a step fails.
FAILED = (
    r"^(?:Exited with code (?:exit status )?[1-9][0-9]*"
    r"|Too long with no output \(exceeded [^)]*\)"
    r"|Received \"killed\" signal)"
)


def sniff(sample: list[str]) -> Score:
    """JSON holding output pieces as CircleCI writes them: a message, a time, and the
    stream as the type."""
    text = "\n".join(sample)
    pieces = len(_STREAM.findall(text))
    if not pieces or '"message"' not in text or '"time"' not in text:
        return Score(0.0, "no CircleCI output pieces (message, time, type out or err)")
    return Score(0.95, f"{pieces} CircleCI step output pieces in the sample")


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """A log row per line of each output piece; unparsed rows where the JSON breaks or
    holds something else."""
    found = jobs.json_items(lines, (), DTYPE)
    piece = pl.col("_job")
    pieces = found.lazy().filter(
        pl.col("reason").is_null() & piece.struct.field("message").is_not_null()
    )
    each = (
        pieces.with_columns(
            _text=piece.struct.field("message")
            .str.replace_all(r"\r\n|\r|\n", "\n")
            .str.strip_suffix("\n")
            .str.split("\n"),
            _time=piece.struct.field("time").str.to_datetime(
                time_unit="us", time_zone="UTC", strict=False
            ),
            _stream=piece.struct.field("type"),
        )
        .explode("_text")
        .with_columns(_text=pl.col("_text").fill_null(""))
    )
    step = pl.col("path").first().str.extract(_STEP, 1)
    rows = records(
        each.join(lines.select(_step=step), how="cross"),
        ts=pl.col("_time").dt.replace_time_zone(None),
        utc_offset_s=pl.when(pl.col("_time").is_not_null()).then(pl.lit(0)),
        source=pl.lit(SOURCE),
        component=pl.col("_step"),
        level=pl.when(pl.col("_text").str.contains(FAILED)).then(pl.lit("error")),
        message=pl.col("_text"),
        attrs=json_object(stream=pl.col("_stream")),
    )
    not_pieces = found.lazy().filter(
        pl.col("reason").is_null() & piece.struct.field("message").is_null()
    )
    bad = pl.concat(
        [
            not_pieces.select("line", "end_line", reason=pl.lit("a JSON value that is no output")),
            found.lazy()
            .filter(pl.col("reason").is_not_null())
            .select("line", "end_line", "reason"),
        ]
    )
    return pl.concat([rows, jobs.unparsed_records(bad, lines, source=SOURCE)], how="vertical")


_SAMPLE_PIECES = (
    ("#!/bin/bash -eo pipefail\\nmake test\\n", "2023-03-14T18:06:38.120Z", "out"),
    (
        "dial tcp: lookup rabbitmq.ci.svc.cluster.local on 10.96.0.10:53: "
        "read udp 10.244.3.17:48123->10.96.0.10:53: i/o timeout\\r\\n",
        "2023-03-14T18:08:59.002Z",
        "out",
    ),
    ("\\r\\nExited with code exit status 2\\r\\n", "2023-03-14T18:09:01.442Z", "err"),
)
SAMPLES = (
    Sample(
        text="["
        + ",".join(
            f'{{"message":"{message}","time":"{time}","type":"{stream}","truncated":false}}'
            for message, time, stream in _SAMPLE_PIECES
        )
        + "]\n",
        expect={
            "source": "circleci",
            "component": "sample-0",
            "message": "#!/bin/bash -eo pipefail",
            "attrs.stream": "out",
        },
        rows=5,
    ),
)

registry.register(
    Parser(
        name=NAME,
        description="CircleCI step output (a v1.1 build's output_url): a log row per line",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
        literals=('"message"',),
    )
)
