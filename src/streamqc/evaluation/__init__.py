"""Scoring streamqc (and FFmpeg's own detectors, the anchor) against a labelled corpus.

- scoring.py: the matching rules of docs/corpus-format.md and per-kind counts;
- ffmpeg_reference.py: freezedetect / blackdetect / silencedetect / blockdetect through
  PyAV's filter graph, as streamqc Events on the same clock;
- runner.py: `evaluate_corpus` over a corpus directory, in worker processes;
- clean.py: `evaluate_clean`, false alarms per hour on folders of defect-free content;
- render.py: rich tables.
"""

from streamqc.evaluation.clean import CleanReport, evaluate_clean
from streamqc.evaluation.ffmpeg_reference import ReferenceOptions, ReferenceResult, run_reference
from streamqc.evaluation.render import (render_clean, render_clean_markdown, render_findings, render_markdown,
                                        render_table)
from streamqc.evaluation.runner import BlockSweep, EvalReport, evaluate_corpus, load_corpus, sweep_block_threshold
from streamqc.evaluation.scoring import CaseLabels, CaseScore, Finding, IgnoreZone, KindScore, Label, match_case

__all__ = [
    "BlockSweep",
    "CaseLabels",
    "CaseScore",
    "CleanReport",
    "EvalReport",
    "Finding",
    "IgnoreZone",
    "KindScore",
    "Label",
    "ReferenceOptions",
    "ReferenceResult",
    "evaluate_clean",
    "evaluate_corpus",
    "load_corpus",
    "match_case",
    "render_clean",
    "render_clean_markdown",
    "render_findings",
    "render_markdown",
    "render_table",
    "run_reference",
    "sweep_block_threshold",
]
