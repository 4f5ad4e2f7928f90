"""The ``timeline`` command: thin wrappers over the library, results to stdout, progress and
warnings to stderr, user errors as a sentence and exit code 1."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from timeline.errors import TimelineError
from timeline.reading import formats as declared_formats
from timeline.reading import loader
from timeline.reading import store as event_store

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
FormatsOpt = Annotated[
    Path | None,
    typer.Option("--formats", help="A folder of format files to read with (see README)."),
]
NowOpt = Annotated[
    str | None,
    typer.Option(help='What relative ages ("5m" in kubectl tables) count back from.'),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", "-j", help="Worker processes for reading (default: every core)."),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        help="Read on a Dask cluster: its scheduler, e.g. tcp://10.0.0.5:8786 "
        "(or set DASK_SCHEDULER_ADDRESS).",
    ),
]
CacheOpt = Annotated[
    bool, typer.Option("--cache/--no-cache", help="Reuse what was read of unchanged files.")
]

WRITERS = {
    ".parquet": lambda frame, path: frame.sink_parquet(path),
    ".csv": lambda frame, path: frame.sink_csv(path),
    ".jsonl": lambda frame, path: frame.sink_ndjson(path),
    ".ndjson": lambda frame, path: frame.sink_ndjson(path),
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
    formats: Path | None = None,
    now: str | None = None,
    quiet: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    cache: bool = True,
    store: str | None = None,
) -> loader.Loaded:
    """Load ``paths`` (or open an event store) with a progress bar on stderr; user errors
    become exit code 1."""
    if len(paths) == 1 and event_store.is_store(paths[0]):
        try:
            return loader.open_store(paths[0])
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise fail(f"cannot open the event store {paths[0]}: {exc}") from None
    from timeline.when import parse_when

    try:
        files = loader.expand(paths)
        reference = parse_when(now) if now else None
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
            loaded = declared_formats.read(
                files,
                format=format,
                year=year,
                tz=tz,
                formats=formats,
                now=reference,
                on_file=advance,
                workers=workers,
                scheduler=scheduler,
                cache=cache,
                store=store,
            )
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
    grouped = summary.assumptions.group_by("what", "value", "certainty", maintain_order=True).agg(
        pl.col("file").n_unique().alias("files"), pl.col("file").first(), pl.col("basis").first()
    )
    for row in grouped.iter_rows(named=True):
        where = row["file"] if row["files"] == 1 else f"{row['files']} files"
        err.print(
            escape(
                f"assumed {row['what']} = {row['value']} for {where} "
                f"({row['certainty']}: {row['basis']})"
            ),
            style="dim",
            highlight=False,
        )


@app.command()
def parse(
    paths: PathsArg,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="events.parquet, .csv or .jsonl; or a folder (events/) for an event store",
        ),
    ] = Path("events.parquet"),
    format: FormatOpt = None,
    year: YearOpt = None,
    tz: TzOpt = None,
    formats: FormatsOpt = None,
    now: NowOpt = None,
    quiet: QuietOpt = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cache: CacheOpt = True,
) -> None:
    """Load logs into one event frame and write it to a file, or to an event store folder
    that analyze and report read again in seconds."""
    to_store = output.suffix == "" or output.is_dir()
    writer = WRITERS.get(output.suffix.lower())
    if writer is None and not to_store:
        raise fail(f"cannot write {output.name}: use one of {', '.join(WRITERS)} or a folder")
    try:
        loaded = read_with_progress(
            paths,
            format=format,
            year=year,
            tz=tz,
            formats=formats,
            now=now,
            quiet=quiet,
            workers=workers,
            scheduler=scheduler,
            cache=cache,
            store=str(output) if to_store else None,
        )
    except TimelineError as exc:
        raise fail(str(exc)) from None
    if loaded.is_empty():
        raise fail("nothing usable was loaded")
    rows = loaded.scan().select(pl.len()).collect().item()
    if not to_store:
        writer(loaded.scan().sort("ts", "file", "line", nulls_last=True), output)
    lines = int(loaded.summary.files["lines"].sum())
    where = f"the event store {output}" if to_store else str(output)
    out.print(
        escape(
            f"wrote {rows:,} rows from {lines:,} lines in "
            f"{loaded.summary.files.height} files to {where}"
        ),
        highlight=False,
    )


@app.command()
def detect(paths: PathsArg, formats: FormatsOpt = None) -> None:
    """Say, for each file, its format, how sure the guess is, and why."""
    try:
        files = loader.expand(paths)
        with declared_formats.using_formats(formats):
            found_all = [loader.detect(path) for path in files]
    except TimelineError as exc:
        raise fail(str(exc)) from None
    table = Table("file", "format", "score", "why", "runner-up", show_lines=False)
    for path, found in zip(files, found_all, strict=True):
        table.add_row(
            escape(path),
            escape(found["format"]) if found["format"] else "[red]unknown[/]",
            f"{found['score']:.2f}",
            escape(found["why"]),
            escape(found.get("runner_up") or ""),
        )
    out.print(table)


SinceOpt = Annotated[
    str | None, typer.Option(help='Start of the window, as people write it: "2023-03-14 17:00".')
]
UntilOpt = Annotated[
    str | None, typer.Option(help='End of the window, e.g. "yesterday 23:00 UTC".')
]
BucketOpt = Annotated[
    str | None, typer.Option(help="Bucket width for rates, e.g. 1m or 5m; chosen if not given.")
]


def analyse_with_progress(
    loaded: loader.Loaded,
    *,
    since: str | None,
    until: str | None,
    bucket: str | None,
    quiet: bool,
):
    """Analyse ``loaded`` within ``since``/``until``, with a spinner on stderr."""
    from timeline.analysis import analyze
    from timeline.when import between, parse_when

    try:
        start = parse_when(since) if since else None
        end = parse_when(until) if until else None
    except TimelineError as exc:
        raise fail(str(exc)) from None
    from timeline.analysis import analysis_frame

    events = between(analysis_frame(loaded.scan()), since=start, until=end)
    if events.height == 0:
        raise fail("no rows in the chosen window")
    with err.status("analysing", spinner="dots") if not quiet else nullcontext():
        result = analyze(events, bucket=bucket)
    return loaded.narrowed(events), result


@app.command()
def analyze(
    paths: PathsArg,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    since: SinceOpt = None,
    until: UntilOpt = None,
    bucket: BucketOpt = None,
    format: FormatOpt = None,
    year: YearOpt = None,
    tz: TzOpt = None,
    formats: FormatsOpt = None,
    now: NowOpt = None,
    top: Annotated[int, typer.Option(help="Contributing changes shown per incident.")] = 3,
    quiet: QuietOpt = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cache: CacheOpt = True,
) -> None:
    """Find the incidents, their phases and the changes that contributed."""
    loaded = read_with_progress(
        paths,
        format=format,
        year=year,
        tz=tz,
        formats=formats,
        now=now,
        quiet=quiet,
        workers=workers,
        scheduler=scheduler,
        cache=cache,
    )
    if loaded.is_empty():
        raise fail("nothing usable was loaded")
    _, result = analyse_with_progress(
        loaded, since=since, until=until, bucket=bucket, quiet=quiet or json_output
    )
    if json_output:
        import json

        print(json.dumps(result.to_dict(), default=str, indent=2))
        return
    _print_analysis(result, top=top)


def _print_analysis(result, *, top: int) -> None:
    incidents = Table(title="Incidents (UTC)", title_justify="left")
    for column in ("#", "onset", "peak", "recovery", "lasted", "order of sources", "CI felt it"):
        incidents.add_column(column)
    from timeline.analysis.incidents import duration_text

    for row in result.incidents.iter_rows(named=True):
        incidents.add_row(
            str(row["incident_id"]),
            f"{row['onset']:%Y-%m-%d %H:%M}",
            f"{row['peak']:%H:%M}",
            f"{row['recovery']:%Y-%m-%d %H:%M}",
            duration_text(row["duration_s"]),
            escape(row["order"] or ""),
            f"{row['ci_impact_at']:%m-%d %H:%M}" if row["ci_impact_at"] else "",
        )
    out.print(incidents)
    for row in result.incidents.iter_rows(named=True):
        ranked = result.top(row["incident_id"], top)
        table = Table(
            title=f"Incident {row['incident_id']}: contributing changes", title_justify="left"
        )
        for column in ("rank", "when", "change", "role", "score", "evidence"):
            table.add_column(column, overflow="fold")
        for c in ranked.iter_rows(named=True):
            table.add_row(
                str(c["rank"]) if c["rank"] is not None else "-",
                escape(c["when"] or ""),
                escape(c["description"] or ""),
                escape(c["role"] or ""),
                f"{c['score']:.2f}",
                escape("\n".join(c["evidence"][:4])),
            )
        out.print(table)


@app.command()
def report(
    paths: PathsArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="report.html, report.md or report.json")
    ] = Path("report.html"),
    report_format: Annotated[
        str | None, typer.Option("--report-format", help="html, md or json (else from -o).")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title of the report.")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    bucket: BucketOpt = None,
    format: FormatOpt = None,
    year: YearOpt = None,
    tz: TzOpt = None,
    formats: FormatsOpt = None,
    now: NowOpt = None,
    quiet: QuietOpt = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cache: CacheOpt = True,
) -> None:
    """Write the incident report: summary, timeline, incidents, ranked changes, appendix."""
    loaded = read_with_progress(
        paths,
        format=format,
        year=year,
        tz=tz,
        formats=formats,
        now=now,
        quiet=quiet,
        workers=workers,
        scheduler=scheduler,
        cache=cache,
    )
    if loaded.is_empty():
        raise fail("nothing usable was loaded")
    _write_report(
        loaded,
        output,
        report_format=report_format,
        title=title,
        since=since,
        until=until,
        bucket=bucket,
        quiet=quiet,
    )


def _write_report(
    loaded: loader.Loaded,
    output: Path,
    *,
    report_format: str | None = None,
    title: str | None = None,
    since: str | None = None,
    until: str | None = None,
    bucket: str | None = None,
    quiet: bool = False,
) -> None:
    from timeline.outputs.report import FORMATS, write_report

    if report_format is not None and report_format not in FORMATS:
        raise fail(f"unknown report format {report_format!r}: use one of {', '.join(FORMATS)}")
    window, result = analyse_with_progress(
        loaded, since=since, until=until, bucket=bucket, quiet=quiet
    )
    with err.status("writing the report", spinner="dots") if not quiet else nullcontext():
        path = write_report(window, result, output, format=report_format, title=title)
    size = path.stat().st_size / 1e6
    out.print(
        escape(
            f"{result.incidents.height} incidents, {result.spikes.height} spikes, "
            f"{result.changes.height} changes; report written to {path} ({size:.1f} MB)"
        ),
        highlight=False,
    )


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the report.")
    ] = Path("report.html"),
    quiet: QuietOpt = False,
) -> None:
    """Write the report of the bundled sample: the 2023-03-14 CI incident, from its logs."""
    from sample_logs import SAMPLE_DIR

    loaded = read_with_progress([str(SAMPLE_DIR)], quiet=quiet)
    _write_report(
        loaded, output, title="Delays starting CI jobs, 2023-03-14 (bundled sample)", quiet=quiet
    )


formats_app = typer.Typer(help="The formats the tool reads: list them, check a format file.")
app.add_typer(formats_app, name="formats")


@formats_app.command("list")
def formats_list(formats: FormatsOpt = None) -> None:
    """The built-in formats and the declared ones (user's config folder, --formats)."""
    from parsers import registry

    try:
        with declared_formats.using_formats(formats):
            known = registry.all_parsers()
    except TimelineError as exc:
        raise fail(str(exc)) from None
    table = Table("format", "origin", "reads")
    for parser in known:
        table.add_row(escape(parser.name), escape(parser.origin), escape(parser.description))
    out.print(table)


@formats_app.command("check")
def formats_check(
    files: Annotated[list[Path], typer.Argument(help="Format files (.toml, .yaml, .json).")],
) -> None:
    """Read format files and check that their samples give what they say."""
    from parsers import declared

    failed = False
    for path in files:
        try:
            parser = declared.to_parser(declared.declare(declared.read_file(path), str(path)))
        except declared.FormatFileError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            failed = True
            continue
        problems = declared.check(parser)
        for problem in problems:
            err.print(f"[bold red]error:[/] {escape(problem)}", highlight=False)
        if problems:
            failed = True
        else:
            out.print(
                escape(f"{path}: format {parser.name!r}, {len(parser.samples)} samples pass"),
                highlight=False,
            )
    if failed:
        raise typer.Exit(code=1)


if __name__ == "__main__":  # pragma: no cover
    app()
