"""Human-readable output of `check` and `demo`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from streamqc.check import CheckResult

_SEVERITY_STYLE = {"info": "dim", "minor": "yellow", "major": "red", "critical": "bold red"}


def _media_line(result: CheckResult) -> str:
    parts = []
    video = result.media.get("video")
    audio = result.media.get("audio")
    if video:
        fps = f" @{video['fps']:g}" if video.get("fps") else ""
        parts.append(f"video {video['codec']} {video['width']}x{video['height']}{fps}")
    if audio:
        parts.append(f"audio {audio['codec']} {audio['sample_rate']} Hz {audio['channels']} ch")
    return ", ".join(parts) or "no tracks"


def _details(details: dict[str, Any]) -> str:
    shown = {k: v for k, v in details.items() if k not in ("messages", "duration_s")}
    text = ", ".join(f"{k}={v}" for k, v in shown.items())
    if details.get("messages"):
        text += (", " if text else "") + f"first message: {details['messages'][0]}"
    return text


def events_table(result: CheckResult) -> Table:
    table = Table(show_lines=False)
    for column in ("kind", "start", "end", "duration", "severity", "details"):
        table.add_column(column, justify="right" if column in ("start", "end", "duration") else "left")
    for event in result.events:
        style = _SEVERITY_STYLE.get(event.severity.value, "")
        table.add_row(
            event.kind,
            f"{event.start:.2f}",
            f"{event.end:.2f}",
            f"{event.duration:.2f}",
            f"[{style}]{event.severity.value}[/]",
            _details(event.details),
        )
    return table


def print_table(result: CheckResult, console: Console) -> None:
    console.print(f"[bold]{result.input}[/]  {result.duration:.2f} s  ({_media_line(result)})", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if not result.events:
        console.print("[green]no defects found[/]")
        return
    console.print(events_table(result))
    defects, failing = len(result.defects), len(result.failing)
    if not defects:
        console.print("[green]no defects found[/] (notes only)")
    elif failing == defects:
        console.print(f"{defects} defect{'s' if defects != 1 else ''} found")
    else:
        console.print(f"{defects} defect{'s' if defects != 1 else ''} found, {failing} of them fail the check "
                      f"(--fail-on {result.fail_policy.spec})", highlight=False)


def print_demo(result: CheckResult, labels: list[dict[str, Any]], console: Console) -> None:
    console.print("[bold]injected into the example stream:[/]")
    injected = Table()
    for column in ("kind", "start", "end"):
        injected.add_column(column)
    for label in labels:
        injected.add_row(label["kind"], f"{label['start']:.2f}", f"{label['end']:.2f}")
    console.print(injected)
    console.print("[bold]found by streamqc check:[/]")
    print_table(result, console)
