"""The ``timeline`` command: thin wrappers over the library, results to stdout, progress and
warnings to stderr, user errors as a sentence and exit code 1."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from timeline import loader
from timeline.errors import TimelineError

app = typer.Typer(
    help="Reconstruct an incident timeline from logs, CI jobs and change records.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

PathsArg = Annotated[list[str], typer.Argument(help="Files, folders, globs or .gz files.")]
FormatOpt = Annotated[
    str | None, typer.Option("--format", "-f", help="Read every file as this format.")
]
YearOpt = Annotated[int | None, typer.Option(help="Year of records that write none (klog).")]
TzOpt = Annotated[
    str | None, typer.Option(help="Zone of records that write none, e.g. Europe/Berlin.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]

WRITERS = {
    ".parquet": lambda frame, path: frame.write_parquet(path),
    ".csv": lambda frame, path: frame.write_csv(path),
    ".jsonl": lambda frame, path: frame.write_ndjson(path),
    ".ndjson": lambda frame, path: frame.write_ndjson(path),
}


def fail(message: str) -> typer.Exit:
    """Print ``message`` on stderr and return the exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code=1)


def read_with_progress(
    paths: list[str],
    *,
    format: str | None = None,
    year: int | None = None,
    tz: str | None = None,
    quiet: bool = False,
) -> loader.Loaded:
    """Load ``paths`` with a progress bar on stderr; user errors become exit code 1."""
    try:
        files = loader.expand(paths)
    except TimelineError as exc:
        raise fail(str(exc)) from None
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    ) as progress:
        task = progress.add_task("loading", total=len(files))

        def advance(path: str) -> None:
            progress.update(task, advance=1, description=f"loading {Path(path).name}")

        try:
            loaded = loader.read(files, format=format, year=year, tz=tz, on_file=advance)
        except TimelineError as exc:
            raise fail(str(exc)) from None
    _print_problems(loaded.summary)
    return loaded


def _print_problems(summary: loader.LoadSummary) -> None:
    for row in summary.files.filter(pl.col("problem").is_not_null()).iter_rows(named=True):
        err.print(
            f"[yellow]warning:[/] {escape(row['file'])}: {escape(row['problem'])}",
            highlight=False,
        )
    unparsed = summary.files.filter(pl.col("unparsed_lines") > 0)
    for row in unparsed.iter_rows(named=True):
        first = ", ".join(map(str, row["first_unparsed"]))
        err.print(
            f"[yellow]warning:[/] {escape(row['file'])}: {row['unparsed_lines']:,} unparsed lines "
            f"(first: {first})",
            highlight=False,
        )
    for row in summary.assumptions.iter_rows(named=True):
        err.print(
            escape(
                f"assumed {row['what']} = {row['value']} for {row['file']} "
                f"({row['certainty']}: {row['basis']})"
            ),
            style="dim",
            highlight=False,
        )


@app.command()
def parse(
    paths: PathsArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="events.parquet, .csv or .jsonl")
    ] = Path("events.parquet"),
    format: FormatOpt = None,
    year: YearOpt = None,
    tz: TzOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Load logs into one event frame and write it to a file."""
    writer = WRITERS.get(output.suffix.lower())
    if writer is None:
        raise fail(f"cannot write {output.name}: use one of {', '.join(WRITERS)}")
    loaded = read_with_progress(paths, format=format, year=year, tz=tz, quiet=quiet)
    if loaded.events.height == 0:
        raise fail("nothing usable was loaded")
    writer(loaded.events, output)
    lines = int(loaded.summary.files["lines"].sum())
    out.print(
        escape(
            f"wrote {loaded.events.height:,} rows from {lines:,} lines in "
            f"{loaded.summary.files.height} files to {output}"
        ),
        highlight=False,
    )


@app.command()
def detect(paths: PathsArg) -> None:
    """Say, for each file, its format, how sure the guess is, and why."""
    try:
        files = loader.expand(paths)
    except TimelineError as exc:
        raise fail(str(exc)) from None
    table = Table("file", "format", "score", "why", "runner-up", show_lines=False)
    for path in files:
        found = loader.detect(path)
        table.add_row(
            escape(path),
            escape(found["format"]) if found["format"] else "[red]unknown[/]",
            f"{found['score']:.2f}",
            escape(found["why"]),
            escape(found.get("runner_up") or ""),
        )
    out.print(table)


def main() -> None:  # pragma: no cover - the console script entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
