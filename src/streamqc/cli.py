"""Command line: `streamqc check`, `streamqc demo`, `streamqc synth`, `streamqc eval`, `streamqc monitor`."""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from streamqc.errors import StreamQCError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Stream quality monitor: find freezes, black, silence, dropouts, decode errors and broken streams.",
)
err_console = Console(stderr=True)

EXIT_CLEAN, EXIT_DEFECTS, EXIT_UNREADABLE = 0, 1, 2


def _fail(message: str) -> None:
    err_console.print(f"streamqc: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_UNREADABLE)


@app.command()
def check(
    input: Annotated[str, typer.Argument(help="File path or URL (http(s), HLS .m3u8, DASH .mpd, udp://, rtp://, rtmp://, rtsp://, loop://FILE).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the JSON result on stdout.")] = False,
    duration: Annotated[Optional[float], typer.Option(help="Stop after this many seconds of media (live URLs).")] = None,
    config: Annotated[Optional[str], typer.Option(help="Detector options file (YAML, TOML or JSON).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Detector option, e.g. freeze.min_duration_s=1 (repeatable).")] = None,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Progress bar on stderr (default: when stderr is a terminal).")] = None,
    threads: Annotated[int, typer.Option(help="Decoder threads (0: FFmpeg chooses).")] = 0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a network input to open or deliver data.")] = 10.0,
    video_track: Annotated[Optional[int], typer.Option(help="Video track to check, by stream index (default: FFmpeg's best).")] = None,
    audio_track: Annotated[Optional[int], typer.Option(help="Audio track to check, by stream index (default: FFmpeg's best).")] = None,
    fail_on: Annotated[Optional[list[str]], typer.Option("--fail-on", help="Which events fail the check (exit 1): SEVERITY, KIND or KIND:SEVERITY, KIND may be a glob (audio.*); repeatable or comma-separated. 'viewer' (default): picture, sound and sync defects at minor or worse, transport and delivery indicators at major or worse; 'none': never fail.")] = None,
) -> None:
    """Check one input. Exit 0: nothing that fails the check, 1: defects that do (--fail-on), 2: input unreadable or bad options."""
    from streamqc.check import check_input
    from streamqc.config import load_options
    from streamqc.fail_policy import FailPolicy
    from streamqc.report import print_table
    from streamqc.sources import SourceOptions

    try:
        policy = FailPolicy.parse(fail_on)
        options = load_options(config, set_)
        show_progress = err_console.is_terminal if progress is None else progress
        with _progress_bar(show_progress, input) as report:
            result = check_input(input, options, duration=duration, progress=report, source=SourceOptions(
                    threads=threads,
                    open_timeout_s=timeout,
                    read_timeout_s=timeout,
                    video_track=video_track,
                    audio_track=audio_track,
                ),
            )
    except StreamQCError as err:
        _fail(str(err))
    except KeyboardInterrupt:
        raise typer.Exit(130)
    result.fail_policy = policy
    if json_output:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        print_table(result, _console())
    raise typer.Exit(EXIT_DEFECTS if result.failing else EXIT_CLEAN)


def _console(wide: int = 120) -> Console:
    """Terminal width on a terminal; a fixed, wide layout when piped to a file or a log."""
    return Console() if sys.stdout.isatty() else Console(width=wide)


class _progress_bar:
    """A rich progress bar fed with (media seconds done, total or None)."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled = enabled
        self.label = label
        self._progress = None
        self._task = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]checking[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.fields[seconds]}"),  # the total is unknown for live inputs
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        )
        self._progress.__enter__()
        self._task = self._progress.add_task(pathlib.Path(self.label).name, total=None, seconds="")
        return self._update

    def _update(self, done: float, total: float | None) -> None:
        seconds = f"{done:.1f} s" if total is None else f"{done:.1f}/{total:.1f} s"
        self._progress.update(self._task, completed=done, total=total, seconds=seconds)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


@app.command()
def demo(
    keep: Annotated[Optional[pathlib.Path], typer.Option(help="Write the example clip here instead of a temporary folder.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the JSON result on stdout.")] = False,
) -> None:
    """Make a short example stream with injected defects, check it, and compare with what was injected.

    Exit 0 when every injected defect was found, 1 otherwise.
    """
    from streamqc.check import check_input
    from streamqc.report import print_demo
    from streamqc.demo import write_demo_clip

    folder = keep or pathlib.Path(tempfile.mkdtemp(prefix="streamqc-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    err_console.print(f"making an example stream with injected defects in {folder} ...")
    clip, labels = write_demo_clip(folder)
    result = check_input(str(clip))
    found = [any(e.kind == label["kind"] and e.start <= label["end"] and label["start"] <= e.end for e in result.events) for label in labels]
    if json_output:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        print_demo(result, labels, _console())
        err_console.print(f"{sum(found)} of {len(labels)} injected defects found")
    # The demo succeeds when streamqc finds what was injected (a check of the install).
    raise typer.Exit(EXIT_CLEAN if all(found) else EXIT_DEFECTS)


@app.command()
def synth(
    out: Annotated[pathlib.Path, typer.Option(help="Folder to write the corpus into.")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same corpus.")] = 1,
    cases: Annotated[int, typer.Option(help="Number of cases.")] = 48,
    media: Annotated[Optional[pathlib.Path], typer.Option(help="Real clips to use as content (default: $STREAMQC_MEDIA when it exists).")] = None,
    recipe: Annotated[Optional[list[str]], typer.Option(help="Only these recipes, e.g. corrupt_drop (repeatable; default: all).")] = None,
) -> None:
    """Write a labelled corpus (media files + labels) for `streamqc eval`."""
    from rich.progress import Progress

    from streamqc.synth import build_corpus

    media_dir = media or _default_media()
    try:
        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("synthesising", total=cases)
            paths = build_corpus(out, seed=seed, cases=cases, media_dir=media_dir, recipes_only=tuple(recipe) if recipe else None, progress=lambda done, total: bar.update(task, completed=done, total=total))
    except (RuntimeError, OSError, ValueError) as err:
        # A case the generator cannot build (or verify) stops the corpus: say which, in one line.
        _fail(f"corpus not written: {str(err).splitlines()[0]}")
    err_console.print(f"wrote {len(paths)} cases to {out}")


@app.command(name="eval")
def evaluate(
    corpus: Annotated[Optional[pathlib.Path], typer.Argument(help="Folder written by `streamqc synth` (optional with --clean).")] = None,
    clean: Annotated[Optional[list[pathlib.Path]], typer.Option("--clean", help="A folder of content known to be free of defects (repeatable): its false alarms per hour, by kind.")] = None,
    json_output: Annotated[Optional[pathlib.Path], typer.Option("--json", help="Also write the full report as JSON here.")] = None,
    markdown: Annotated[Optional[pathlib.Path], typer.Option(help="Also write the score table as Markdown here.")] = None,
    findings: Annotated[bool, typer.Option("--findings", help="Also list every miss and false alarm.")] = False,
    reference: Annotated[bool, typer.Option("--reference/--no-reference", help="Also score FFmpeg's own detectors.")] = True,
    jobs: Annotated[int, typer.Option(help="Parallel processes.")] = 2,
    config: Annotated[Optional[str], typer.Option(help="Detector options file.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Detector option, e.g. freeze.min_duration_s=1.")] = None,
    block_threshold: Annotated[Optional[float], typer.Option(help="Also score FFmpeg's blockdetect for video.corruption at this threshold.")] = None,
    block_tune_on: Annotated[Optional[pathlib.Path], typer.Option(help="Also score blockdetect, at the best threshold on this OTHER corpus (another seed).")] = None,
) -> None:
    """Score streamqc (and FFmpeg's detectors) against a labelled corpus: precision, recall, F1, onset
    error; with --clean, also false alarms per hour on content known to be free of defects."""
    from streamqc.config import load_options
    from streamqc.evaluation import (ReferenceOptions, evaluate_clean, evaluate_corpus, render_clean,
                                     render_clean_markdown, render_findings, render_markdown, render_table)

    if corpus is None and not clean:
        _fail("give a corpus folder (from `streamqc synth`), --clean FOLDER, or both")
    report = clean_report = None
    try:
        options = load_options(config, set_)
        if corpus is not None:
            reference_options = ReferenceOptions()
            if block_tune_on is not None:
                block_threshold = _tuned_block_threshold(block_tune_on, corpus, jobs)
            if block_threshold is not None:
                reference_options = ReferenceOptions(block_threshold=block_threshold)
            report = evaluate_corpus(corpus, options=options, reference=reference, jobs=jobs,
                                     reference_options=reference_options)
        if clean:
            clean_report = evaluate_clean(list(clean), options=options or None, jobs=jobs)
    except StreamQCError as err:
        _fail(str(err))
    console = _console(wide=170)
    if report is not None:
        console.print(render_table(report))
        if findings:
            console.print(render_findings(report, limit=1000))
    if clean_report is not None:
        console.print(render_clean(clean_report))
    if json_output:
        out = report.to_dict() if report is not None else {}
        if clean_report is not None:
            out["clean"] = clean_report.to_dict()
        json_output.write_text(json.dumps(out, indent=2))
    if markdown:
        text = render_markdown(report) if report is not None else ""
        if clean_report is not None:
            text += ("\n" if text else "") + render_clean_markdown(clean_report)
        markdown.write_text(text)


@app.command()
def monitor(
    config: Annotated[Optional[str], typer.Option(help="Streams and settings (YAML), see docs/live-architecture.md.")] = None,
    stream: Annotated[Optional[list[str]], typer.Option("--stream", help="A stream URL to monitor (repeatable): udp://..., http(s)://...m3u8, loop://file.ts ...")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes (default: the config's, else the number of cores).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Events as JSON lines on stdout (each with stream and at).")] = False,
    state_dir: Annotated[Optional[str], typer.Option(help="Where the event journal lives (default: the config's, else ./streamqc-state).")] = None,
    duration: Annotated[Optional[float], typer.Option(help="Stop after this many seconds (default: run until SIGINT/SIGTERM).")] = None,
) -> None:
    """Watch live streams: events as they happen, journaled first; exit 2 on a bad config."""
    from streamqc.monitor import load_config, parse_config
    from streamqc.monitor.service import run, with_cli_streams

    try:
        settings = load_config(config) if config else parse_config({}, "defaults")
        settings = with_cli_streams(settings, list(stream or []), workers, state_dir)
        _check_issue5_sections(settings)
        run(settings, json_output, duration)
    except StreamQCError as err:
        _fail(str(err))


def _check_issue5_sections(settings) -> None:
    """The store and server sections fail before anything starts (ConfigError names the key)."""
    if settings.store is not None:
        from streamqc.sinks.store import StoreConfig, location_of

        location_of(StoreConfig.from_section(settings.store))
    if settings.server is not None:
        from streamqc.server.app import ServerConfig

        ServerConfig.from_section(settings.server).address()


@app.command()
def report(
    store: Annotated[str, typer.Option(help="The analytics store: a folder or s3://bucket/prefix (S3 endpoint: $AWS_ENDPOINT_URL).")],
    from_: Annotated[str, typer.Option("--from", help="Start of the range, ISO 8601 (UTC unless an offset is given).")],
    to: Annotated[str, typer.Option(help="End of the range (excluded), ISO 8601.")],
    stream: Annotated[Optional[str], typer.Option(help="Only this stream id.")] = None,
    format_: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    endpoint_url: Annotated[Optional[str], typer.Option(help="S3-compatible server for s3:// stores, e.g. http://127.0.0.1:9000 (default: $AWS_ENDPOINT_URL).")] = None,
) -> None:
    """Availability, down minutes and defects by kind per stream over a time range, from the store."""
    from streamqc.analytics import build_report, parse_time, print_report
    from streamqc.sinks.store import open_location

    if format_ not in ("table", "csv", "json"):
        _fail(f"--format must be table, csv or json, got {format_!r}")
    try:
        location = open_location(store, endpoint_url=endpoint_url)
        result = build_report(store, parse_time(from_, "--from"), parse_time(to, "--to"), stream, location)
    except StreamQCError as err:
        _fail(str(err))
    print_report(result, format_, sys.stdout, _console())


@app.command(name="notify-test")
def notify_test(
    config: Annotated[pathlib.Path, typer.Option(help="Monitor config with a `notify:` section (YAML, TOML or JSON).")],
) -> None:
    """Send one test event (kind notify.test) through every configured notifier. Exit 0: all delivered."""
    from streamqc.config import _read
    from streamqc.sinks.service import send_test

    try:
        results = send_test(_read(config))
    except StreamQCError as err:
        _fail(str(err))
    if not results:
        _fail(f"{config}: no notifiers in its 'notify:' section")
    for name, error in results:
        err_console.print(f"{name}: {'delivered' if error is None else 'FAILED: ' + error}", highlight=False, markup=False)
    raise typer.Exit(EXIT_CLEAN if all(error is None for _, error in results) else EXIT_DEFECTS)


def _tuned_block_threshold(tune_on: pathlib.Path, corpus: pathlib.Path, jobs: int) -> float:
    """blockdetect's best threshold on another corpus, never the one being scored."""
    from streamqc.evaluation import load_corpus, sweep_block_threshold

    if tune_on.resolve() == corpus.resolve() or load_corpus(tune_on)[0].get("seed") == load_corpus(corpus)[0].get("seed"):
        _fail("--block-tune-on must be a corpus of another seed than the one scored")
    sweep = sweep_block_threshold(tune_on, jobs=jobs)
    best = sweep.best
    score = sweep.score_at(best)
    err_console.print(f"blockdetect threshold {best:.3f} (best F1 {score.f1 or 0:.3f} on {tune_on}, seed {load_corpus(tune_on)[0].get('seed')})")
    return best


def _default_media() -> pathlib.Path | None:
    path = pathlib.Path(os.environ.get("STREAMQC_MEDIA", pathlib.Path(__file__).resolve().parents[3].parent / "shared" / "media"))
    return path if path.is_dir() else None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
