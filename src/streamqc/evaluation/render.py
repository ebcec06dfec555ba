"""Rich tables for an EvalReport: the per-kind score table and the list of errors to look at."""

from __future__ import annotations

from rich.table import Table

from streamqc.evaluation.clean import CleanReport
from streamqc.evaluation.runner import FFMPEG, STREAMQC, EvalReport
from streamqc.evaluation.scoring import KindScore

_DASH = "—"


def _rate(x: float | None) -> str:
    return _DASH if x is None else f"{x:.3f}"


def _seconds(x: float | None) -> str:
    return _DASH if x is None else f"{x:.3f}"


def _cells(score: KindScore | None, best: bool) -> list[str]:
    if score is None:  # the system does not judge this kind at all
        return [_DASH] * 5
    f1 = _rate(score.f1)
    return [
        f"{score.tp}/{score.fp}/{score.fn}",
        _rate(score.precision),
        _rate(score.recall),
        f"[bold]{f1}[/bold]" if best else f1,
        _seconds(score.onset_median_s),
    ]


def _offset(score: KindScore | None) -> str:
    return _DASH if score is None or score.offset_median_ms is None else f"{score.offset_median_ms:.0f}"


def _has_offsets(report: EvalReport) -> bool:
    """Only corpora with offset labels (av.sync) get the offset column."""
    return any(sc.offset_errors_ms for table in report.scores.values() for sc in table.values())


def render_table(report: EvalReport) -> Table:
    """Rows = kinds; for streamqc and FFmpeg: TP/FP/FN, precision, recall, F1, median onset error."""
    seed = report.seed
    title = f"{report.corpus}: {len(report.cases)} cases" + (f", seed {seed}" if seed is not None else "")
    offsets = _has_offsets(report)
    caption = "onset = median |event.start - label.start| over hits, in seconds"
    if offsets:
        caption += "; offset = median |offset_ms error| over hits, in ms"
    table = Table(title=title, caption=caption)
    table.add_column("kind", no_wrap=True)
    table.add_column("cases", justify="right")
    table.add_column("labels", justify="right")
    systems = [s for s in (STREAMQC, FFMPEG) if s in report.scores]
    for system in systems:
        style = "cyan" if system == STREAMQC else "magenta"
        table.add_column(f"{system}\nTP/FP/FN", justify="right", style=style)
        table.add_column(f"{system}\nP", justify="right", style=style)
        table.add_column(f"{system}\nR", justify="right", style=style)
        table.add_column(f"{system}\nF1", justify="right", style=style)
        table.add_column(f"{system}\nonset", justify="right", style=style)
        if offsets:
            table.add_column(f"{system}\noffset", justify="right", style=style)

    for kind in report.kinds:
        per_system = {
            system: report.scores[system][kind] if report.covers(system, kind) else None for system in systems
        }
        f1s = {s: (sc.f1 if sc is not None else None) for s, sc in per_system.items()}
        known = [v for v in f1s.values() if v is not None]
        top = max(known) if len(known) > 1 else None
        sq = report.scores[STREAMQC][kind]
        row = [kind, str(sq.cases), str(sq.tp + sq.fn)]
        for system in systems:
            row += _cells(per_system[system], best=top is not None and f1s[system] == top)
            if offsets:
                row.append(_offset(per_system[system]))
        table.add_row(*row)
    lines = area_lines(report)
    if lines:
        table.caption = "\n".join([str(table.caption), *lines])
    return table


def area_lines(report: EvalReport) -> list[str]:
    """Median |reported area - labelled area| per system for kinds whose labels carry one."""
    lines = []
    for kind in report.kinds:
        for system in (STREAMQC, FFMPEG):
            if system not in report.scores or not report.covers(system, kind):
                continue
            score = report.scores[system][kind]
            if not score.area_errors and not score.area_missing:
                continue
            median = score.area_median_error
            lines.append(f"{kind} area ({system}): median |reported - labelled| "
                         f"{_DASH if median is None else f'{median:.3f}'} over {len(score.area_errors)} hits"
                         + (f", {score.area_missing} hits without an area" if score.area_missing else ""))
    return lines


def render_findings(report: EvalReport, system: str | None = None, limit: int = 50) -> Table:
    """Misses and false alarms (case, kind, times), then unreadable cases: where to look next."""
    table = Table(title="misses and false alarms" + (f" ({system})" if system else ""))
    for name in ("system", "case", "what", "kind", "start", "end", "note"):
        table.add_column(name, justify="right" if name in ("start", "end") else "left", no_wrap=name != "note")
    rows = report.findings(system)
    for f in rows[:limit]:
        note = f.details.get("hard_negative", "")
        table.add_row(f.system, f.case_id, f.what, f.kind, f"{f.start:.3f}", f"{f.end:.3f}", note)
    if len(rows) > limit:
        table.add_row("…", f"{len(rows) - limit} more", "", "", "", "", "")
    for name, case_id, reason in report.errors():
        if system is None or name == system:
            table.add_row(name, case_id, "error", "", "", "", reason)
    return table


def render_markdown(report: EvalReport) -> str:
    """The score table as Markdown, for docs: the same rows and cells as render_table."""
    systems = [s for s in (STREAMQC, FFMPEG) if s in report.scores]
    offsets = _has_offsets(report)
    header = ["kind", "cases", "labels"]
    for system in systems:
        header += [f"{system} TP/FP/FN", "P", "R", "F1", "onset s"] + (["offset ms"] if offsets else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for kind in report.kinds:
        sq = report.scores[STREAMQC][kind]
        row = [f"`{kind}`", str(sq.cases), str(sq.tp + sq.fn)]
        for system in systems:
            score = report.scores[system][kind] if report.covers(system, kind) else None
            row += [cell.replace("[bold]", "**").replace("[/bold]", "**") for cell in _cells(score, best=False)]
            if offsets:
                row.append(_offset(score))
        lines.append("| " + " | ".join(row) + " |")
    extra = area_lines(report)
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(f"- {line}" for line in extra) + "\n" if extra else "")


def render_clean(report: CleanReport) -> Table:
    """False alarms per hour of clean content, by kind, then each one (clip, kind, times)."""
    minutes = report.hours * 60.0
    title = (f"clean content ({', '.join(report.folders)}): {len(report.clips)} clips, {minutes:.1f} min; "
             f"false alarms {report.false_alarms}, {_per_hour(report.per_hour())} per hour")
    silent = [c.path for c in report.clips if c.silent_track]
    caption = "every event of severity minor or worse is a false alarm"
    if silent:
        caption += f"; not counted: {len(silent)} clip(s) whose audio track is silent throughout"
    table = Table(title=title, caption=caption)
    for name in ("kind", "false alarms", "per hour", "clip", "severity", "start", "end"):
        table.add_column(name, justify="right" if name in ("false alarms", "per hour", "start", "end") else "left")
    counts = report.by_kind()
    for kind in sorted(counts):
        table.add_row(kind, str(counts[kind]), _per_hour(report.per_hour(kind)), "", "", "", "")
        for clip in report.clips:
            for event in clip.events:
                if event.kind == kind:
                    table.add_row("", "", "", clip.path, event.severity.value, f"{event.start:.2f}", f"{event.end:.2f}")
    for clip in report.clips:
        if clip.error:
            table.add_row("(unreadable)", "", "", clip.path, "", "", clip.error)
    return table


def render_clean_markdown(report: CleanReport) -> str:
    counts = report.by_kind()
    lines = [f"Clean content: {len(report.clips)} clips, {report.hours * 60:.1f} min, "
             f"{report.false_alarms} false alarms ({_per_hour(report.per_hour())} per hour).", "",
             "| kind | false alarms | per hour |", "|---|---|---|"]
    lines += [f"| `{kind}` | {n} | {_per_hour(report.per_hour(kind))} |" for kind, n in sorted(counts.items())]
    return "\n".join(lines) + "\n"


def _per_hour(x: float | None) -> str:
    return _DASH if x is None else f"{x:.1f}"
