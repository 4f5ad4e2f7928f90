"""The ``timeline`` command: thin wrappers over the library, results to stdout, progress and
warnings to stderr, user errors as a sentence and exit code 1."""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape as markup_escape
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from parsers.common import archives_unpacked
from timeline import arguments
from timeline.errors import TimelineError, TimelineWarning
from timeline.outputs.atomic import write_atomically
from timeline.outputs.events import SUFFIXES as EVENT_SUFFIXES
from timeline.outputs.events import write_events
from timeline.outputs.safe import json_text, terminal_text
from timeline.reading import archives, loader, sources
from timeline.reading import formats as declared_formats
from timeline.reading import store as event_store

app = typer.Typer(
    help="Reconstruct an incident timeline from logs, CI jobs and change records.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

PathsArg = Annotated[
    list[str], typer.Argument(help="Files, folders, globs, .gz files or URLs (s3://, gs://).")
]
FormatOpt = Annotated[
    str | None, typer.Option("--format", "-f", help="Read every file as this format.")
]
YearOpt = Annotated[
    int | None,
    typer.Option(
        help="Year the data starts in, for records that write none (klog); January after "
        "December is the next.",
        callback=arguments.checked(arguments.year),
    ),
]
TzOpt = Annotated[
    str | None,
    typer.Option(
        help="Zone of records that write none, e.g. Europe/Berlin.",
        callback=arguments.checked(arguments.zone),
    ),
]
SymlinksOpt = Annotated[
    bool,
    typer.Option(
        "--follow-symlinks", help="Read symlinks in folders that lead outside the paths given."
    ),
]
MaxExpandedOpt = Annotated[
    str,
    typer.Option(
        "--max-expanded",
        help="Most bytes kept from one .gz file or pipe, e.g. 2G or 500M.",
        callback=arguments.checked(arguments.size),
    ),
]
MaxRatioOpt = Annotated[
    float,
    typer.Option(
        "--max-ratio",
        help="Most a .gz file may expand (output / input) before it is cut as a bomb.",
        callback=arguments.checked(arguments.ratio),
    ),
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
    bool,
    typer.Option(
        "--cache/--no-cache", help="Reuse what was read and analysed of unchanged files and stores."
    ),
]


def escape(text: str) -> str:
    """``text`` for the terminal: control characters shown escaped, rich markup escaped."""
    return markup_escape(terminal_text(text))


def fail(message: str) -> typer.Exit:
    """Print ``message`` on stderr and return the exit to raise."""
    line = Text("error:", style="bold red")
    line.append(f" {message}")
    err.print(line, soft_wrap=True, highlight=False)
    return typer.Exit(code=1)


def check_output(output: Path, *, folder: bool = False) -> None:
    """Fail at once, before any loading, if ``output``'s folder is missing or read-only
    (``folder``: the output is itself a folder, an event store)."""
    problem = arguments.output_problem(output, folder=folder)
    if problem:
        raise fail(problem)


def read_with_progress(
    paths: list[str],
    *,
    format: str | None = None,
    year: int | None = None,
    tz: str | None = None,
    formats: Path | None = None,
    now: str | None = None,
    quiet: bool = False,
    follow_symlinks: bool = False,
    max_expanded: str = arguments.DEFAULT_MAX_EXPANDED,
    max_ratio: float = loader.LIMITS.max_ratio,
    workers: int | None = None,
    scheduler: str | None = None,
    cache: bool = True,
    store: str | None = None,
) -> loader.Loaded:
    """Load ``paths`` (or open an event store) with a progress bar on stderr; user errors
    become exit code 1."""
    limits = arguments.limits(max_expanded=max_expanded, max_ratio=max_ratio)
    if len(paths) == 1 and event_store.is_store(paths[0]):
        try:
            with _warnings_as_notes():
                return loader.open_store(paths[0], cache=cache)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise fail(f"cannot open the event store {paths[0]}: {exc}") from None
    from timeline.when import parse_when

    try:
        files = loader.expand(paths, follow_symlinks=follow_symlinks)
        reference = parse_when(now) if now else None
    except TimelineError as exc:
        raise fail(str(exc)) from None
    with (
        _warnings_as_notes(),
        Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=quiet,
        ) as progress,
    ):
        task = progress.add_task("loading", total=len(files))

        def advance(path: str) -> None:
            progress.update(task, advance=1, description=escape(f"loading {Path(path).name}"))

        try:
            loaded = declared_formats.read(
                paths,
                format=format,
                year=year,
                tz=tz,
                formats=formats,
                now=reference,
                on_file=advance,
                limits=limits,
                follow_symlinks=follow_symlinks,
                workers=workers,
                scheduler=scheduler,
                cache=cache,
                store=store,
            )
        except TimelineError as exc:
            raise fail(str(exc)) from None
    _print_problems(loaded.summary)
    return loaded


def note(text: str, style: str = "") -> None:
    """One note on stderr, never wrapped inside a word (so never inside a path)."""
    err.print(Text(terminal_text(text), style=style), soft_wrap=True, highlight=False)


@contextmanager
def _warnings_as_notes() -> Iterator[None]:
    """The tool's own warnings raised inside, each shown after it as one line, like its
    other notes (every time, not once per place); any other as Python shows it."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", TimelineWarning)
        yield
    for w in said:
        if issubclass(w.category, TimelineWarning):
            note(f"warning: {w.message}", "yellow")
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _print_problems(summary: loader.LoadSummary) -> None:
    styles = {
        "problem": "yellow",
        "unparsed": "yellow",
        "cut": "yellow",
        "assumed": "dim",
        "duplicate": "dim",
    }
    for kind, text in summary.notes()[1:]:
        prefix = "warning: " if kind in ("problem", "unparsed", "cut") else ""
        note(prefix + text, styles.get(kind, ""))


def show(renderable: object, *, whole: bool = False) -> None:
    """Print on stdout as rich lays it out, without the spaces it pads lines with.
    ``whole``: where stdout is no terminal (a pipe, a file) and ``COLUMNS`` sets no
    width, as wide as the renderable needs, so that a table's cells are not cut to the
    80 columns rich assumes."""
    console = out
    if whole and not out.is_terminal and "COLUMNS" not in os.environ:
        wide = Measurement.get(out, out.options.update_width(10_000), renderable).maximum
        if wide > out.width:
            console = Console(width=wide, color_system=None, highlight=False)
    with console.capture() as captured:
        console.print(renderable)
    text = "\n".join(line.rstrip() for line in captured.get().splitlines())
    sys.stdout.write(text + "\n")


def print_json(data: object) -> None:
    """``data`` as JSON on stdout, for machines."""
    sys.stdout.write(json_text(data, indent=2, default=str) + "\n")


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


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
    follow_symlinks: SymlinksOpt = False,
    max_expanded: MaxExpandedOpt = arguments.DEFAULT_MAX_EXPANDED,
    max_ratio: MaxRatioOpt = loader.LIMITS.max_ratio,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cache: CacheOpt = True,
    json_output: JsonOpt = False,
) -> None:
    """Load logs into one event frame and write it to a file, or to an event store folder
    that analyze and report read again in seconds."""
    to_store = output.suffix == "" or output.is_dir()
    if output.suffix.lower() not in EVENT_SUFFIXES and not to_store:
        raise fail(
            f"cannot write {output.name}: use one of {', '.join(EVENT_SUFFIXES)} or a folder"
        )
    check_output(output, folder=to_store)
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
            follow_symlinks=follow_symlinks,
            max_expanded=max_expanded,
            max_ratio=max_ratio,
        )
    except TimelineError as exc:
        raise fail(str(exc)) from None
    if loaded.is_empty():
        raise fail("nothing usable was loaded")
    rows = loaded.scan().select(pl.len()).collect().item()
    if not to_store:
        try:
            write_atomically(
                output,
                lambda part: write_events(loaded.scan(), part, suffix=output.suffix),
                errors=(pl.exceptions.ComputeError,),
            )
        except TimelineError as exc:
            raise fail(str(exc)) from None
    lines = int(loaded.summary.files["lines"].sum())
    if json_output:
        print_json(
            {
                "output": str(output),
                "store": to_store,
                "rows": rows,
                "lines": lines,
                "files": loaded.summary.files.height,
            }
        )
        return
    from timeline.outputs.words import plural

    where = f"the event store {output}" if to_store else str(output)
    out.print(
        Text(
            f"wrote {plural(rows, 'row')} from {plural(lines, 'line')} in "
            f"{plural(loaded.summary.files.height, 'file')} to {where}"
        ),
        soft_wrap=True,
    )


@app.command()
def detect(
    paths: PathsArg,
    formats: FormatsOpt = None,
    follow_symlinks: SymlinksOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Say, for each file, its format, how sure the guess is, and why.

    One line per file: format, score, the path relative to the folder all files share,
    and why. Lines are never cut, so ``| head`` and ``| grep`` see whole paths."""
    from timeline.paths import common_root, relative_path

    try:
        with tempfile.TemporaryDirectory(prefix="timeline-unpacked-") as unpacked:
            scanned = sources.scan(paths, follow_symlinks=follow_symlinks)
            found_paths = archives.unpacked(scanned, unpacked)
            names = found_paths.names
            with declared_formats.using_formats(formats), archives_unpacked(found_paths.unpacked):
                found_all = [loader.detect(path, names.get(path)) for path in found_paths.files]
    except TimelineError as exc:
        raise fail(str(exc)) from None
    files = [names.get(path, path) for path in found_paths.files]
    for name, why in found_paths.skipped:
        err.print(f"[yellow]warning:[/] {escape(name)}: {escape(why)}", highlight=False)
    found = found_all
    if json_output:
        print_json(found)
        return
    root = common_root(files)
    note(f"{len(files)} file{'s' if len(files) != 1 else ''}, paths relative to {root}", "dim")
    width = max([len(f["format"] or "unknown") for f in found] + [6])
    for f in found:
        line = Text(f"{(f['format'] or 'unknown'):<{width}} ", style="" if f["format"] else "red")
        line.append(f"{f['score']:.2f}  {terminal_text(relative_path(f['file'], root))}")
        why = f["why"] + (f"; runner-up {f['runner_up']}" if f.get("runner_up") else "")
        line.append(f"  ({terminal_text(why)})", style="dim")
        out.print(line, soft_wrap=True, highlight=False)


SinceOpt = Annotated[
    str | None, typer.Option(help='Start of the window, as people write it: "2023-03-14 17:00".')
]
UntilOpt = Annotated[
    str | None, typer.Option(help='End of the window, e.g. "yesterday 23:00 UTC".')
]
BucketOpt = Annotated[
    str | None,
    typer.Option(
        help="Bucket width for rates, e.g. 1m or 5m; chosen if not given.",
        callback=arguments.checked(arguments.bucket),
    ),
]


def analyse_with_progress(
    loaded: loader.Loaded,
    *,
    since: str | None,
    until: str | None,
    bucket: str | None,
    quiet: bool,
):
    """Analyse ``loaded`` and report ``since``/``until`` (the data before the window still
    gives the baselines), with a spinner and the analysis' notes on stderr; returns the
    rows of the window and the analysis."""
    from timeline.analysis import analyze, in_window
    from timeline.when import between, parse_when

    try:
        start = parse_when(since) if since else None
        end = parse_when(until) if until else None
    except TimelineError as exc:
        raise fail(str(exc)) from None
    from timeline.analysis import kept_rows

    frame = kept_rows(loaded).events
    events = between(frame, since=start, until=end)
    if events.height == 0:
        from timeline.outputs.text import window_text

        lo, hi = loaded.scan().select(lo=pl.col("ts").min(), hi=pl.col("ts").max()).collect().row(0)
        span = window_text(lo, hi) if lo is not None else "no timed rows"
        asked = ", ".join(
            f"{flag} {text!r}" for flag, text in (("--since", since), ("--until", until)) if text
        )
        raise fail(f"no rows from {window_text(start, end)} ({asked}); the data spans {span}")
    with err.status("analysing", spinner="dots") if not quiet else nullcontext():
        # the whole data, so that baselines and change histories reach before the window
        whole = analyze(loaded, bucket=bucket)
    result = in_window(whole, since=start, until=end)
    for note in result.notes:
        err.print(escape(f"note: {note}"), highlight=False)
    return loaded.narrowed(events), result


@app.command()
def analyze(
    paths: PathsArg,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the findings as JSON (findings.schema.json).")
    ] = False,
    since: SinceOpt = None,
    until: UntilOpt = None,
    bucket: BucketOpt = None,
    format: FormatOpt = None,
    year: YearOpt = None,
    tz: TzOpt = None,
    formats: FormatsOpt = None,
    now: NowOpt = None,
    top: Annotated[int, typer.Option(help="Changes with evidence shown per incident.", min=1)] = 3,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Every change with its full evidence.")
    ] = False,
    by_host: Annotated[
        bool, typer.Option("--by-host", help="Errors host by host over the longest incident.")
    ] = False,
    quiet: QuietOpt = False,
    follow_symlinks: SymlinksOpt = False,
    max_expanded: MaxExpandedOpt = arguments.DEFAULT_MAX_EXPANDED,
    max_ratio: MaxRatioOpt = loader.LIMITS.max_ratio,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cache: CacheOpt = True,
) -> None:
    """Find the incidents, their phases and the changes that contributed."""
    from timeline.outputs.findings import findings
    from timeline.outputs.text import analysis_view, host_view

    loaded = read_with_progress(
        paths,
        format=format,
        year=year,
        tz=tz,
        formats=formats,
        now=now,
        quiet=quiet or json_output,
        follow_symlinks=follow_symlinks,
        max_expanded=max_expanded,
        max_ratio=max_ratio,
        workers=workers,
        scheduler=scheduler,
        cache=cache,
    )
    if loaded.is_empty():
        raise fail("nothing usable was loaded")
    window, result = analyse_with_progress(
        loaded, since=since, until=until, bucket=bucket, quiet=quiet or json_output
    )
    found = findings(window, result)
    if json_output:
        print_json(found)
        return
    show(analysis_view(found, top=top, verbose=verbose))
    if by_host and found["top_incident"]:
        incident_id = int(found["top_incident"].split("-")[1]) - 1
        view = host_view(window.events, result, incident_id)
        show(Text(""))
        show(view if view is not None else Text("no host logged errors in it"), whole=True)


@app.command()
def report(
    paths: PathsArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="report.html, report.md or report.json")
    ] = Path("report.html"),
    report_format: Annotated[
        str | None,
        typer.Option("--report-format", help="html, md or json; else from the suffix of -o."),
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
    follow_symlinks: SymlinksOpt = False,
    max_expanded: MaxExpandedOpt = arguments.DEFAULT_MAX_EXPANDED,
    max_ratio: MaxRatioOpt = loader.LIMITS.max_ratio,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cache: CacheOpt = True,
    json_output: Annotated[
        bool, typer.Option("--json", help="Say what was written as JSON.")
    ] = False,
) -> None:
    """Write the incident report: summary, timeline, incidents, ranked changes, appendix.

    The format comes from the suffix of -o (.html, .md, .json) unless --report-format
    says otherwise."""
    check_output(output)
    _check_report_format(output, report_format)
    loaded = read_with_progress(
        paths,
        format=format,
        year=year,
        tz=tz,
        formats=formats,
        now=now,
        quiet=quiet,
        follow_symlinks=follow_symlinks,
        max_expanded=max_expanded,
        max_ratio=max_ratio,
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
        json_output=json_output,
    )


def _check_report_format(output: Path, report_format: str | None) -> str:
    from timeline.outputs.report import report_format as format_of

    try:
        return format_of(output, report_format)
    except ValueError as exc:
        raise fail(str(exc)) from None


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
    json_output: bool = False,
) -> None:
    from timeline.outputs.report import write_report
    from timeline.outputs.words import plural, size_text

    format = _check_report_format(output, report_format)
    window, result = analyse_with_progress(
        loaded, since=since, until=until, bucket=bucket, quiet=quiet or json_output
    )
    busy = err.status("writing the report", spinner="dots")
    with busy if not (quiet or json_output) else nullcontext():
        try:
            path = write_report(window, result, output, format=format, title=title)
        except TimelineError as exc:
            raise fail(str(exc)) from None
    size = path.stat().st_size
    if json_output:
        print_json(
            {
                "report": str(path),
                "format": format,
                "bytes": size,
                "incidents": result.incidents.height,
                "spikes": result.spikes.height,
                "changes": result.changes.height,
            }
        )
        return
    out.print(
        Text(
            f"{plural(result.incidents.height, 'incident')}, "
            f"{plural(result.spikes.height, 'spike')}, {plural(result.changes.height, 'change')}; "
            f"report written to {path} ({size_text(size)})"
        ),
        soft_wrap=True,
    )


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the report.")
    ] = Path("report.html"),
    quiet: QuietOpt = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Say what was written as JSON.")
    ] = False,
) -> None:
    """Write the report of the bundled sample: the 2023-03-14 CI incident, from its logs."""
    from sample_logs import SAMPLE_DIR

    check_output(output)
    _check_report_format(output, None)
    loaded = read_with_progress([str(SAMPLE_DIR)], quiet=quiet)
    _write_report(
        loaded,
        output,
        title="Delays starting CI jobs, 2023-03-14 (bundled sample)",
        quiet=quiet,
        json_output=json_output,
    )


formats_app = typer.Typer(help="The formats the tool reads: list them, check a format file.")
app.add_typer(formats_app, name="formats")


@formats_app.command("list")
def formats_list(formats: FormatsOpt = None, json_output: JsonOpt = False) -> None:
    """The built-in formats and the declared ones (user's config folder, --formats)."""
    from parsers import registry

    try:
        with declared_formats.using_formats(formats):
            known = registry.all_parsers()
    except TimelineError as exc:
        raise fail(str(exc)) from None
    if json_output:
        print_json([{"format": p.name, "origin": p.origin, "reads": p.description} for p in known])
        return
    table = Table("format", "origin", "reads")
    for parser in known:
        table.add_row(escape(parser.name), escape(parser.origin), escape(parser.description))
    out.print(table)


@formats_app.command("check")
def formats_check(
    files: Annotated[list[Path], typer.Argument(help="Format files (.toml, .yaml, .json).")],
    json_output: JsonOpt = False,
) -> None:
    """Read format files and check that their samples give what they say."""
    from parsers import declared

    failed = False
    checked = []
    for path in files:
        try:
            parser = declared.to_parser(declared.declare(declared.read_file(path), str(path)))
        except declared.FormatFileError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            checked.append({"file": str(path), "format": None, "problems": [str(exc)]})
            failed = True
            continue
        problems = declared.check(parser)
        checked.append(
            {
                "file": str(path),
                "format": parser.name,
                "samples": len(parser.samples),
                "problems": list(problems),
            }
        )
        for problem in problems:
            err.print(f"[bold red]error:[/] {escape(problem)}", highlight=False)
        if problems:
            failed = True
        elif not json_output:
            out.print(
                escape(f"{path}: format {parser.name!r}, {len(parser.samples)} samples pass"),
                highlight=False,
            )
    if json_output:
        print_json(checked)
    if failed:
        raise typer.Exit(code=1)


if __name__ == "__main__":  # pragma: no cover
    app()
