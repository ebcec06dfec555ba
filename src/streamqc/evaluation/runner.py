"""Run streamqc (and FFmpeg's detectors, the reference) over a labelled corpus and score both.

Each case is decoded in a worker process (media work is CPU-bound and PyAV releases
the GIL only partly); scoring is cheap and happens in the parent, so the matching
rules live in one place (scoring.py) and a report can be re-scored without decoding.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import multiprocessing
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from streamqc.errors import StreamQCError
from streamqc.evaluation.ffmpeg_reference import (
    CORRUPTION,
    ReferenceOptions,
    block_events,
    reference_kinds,
    run_reference,
)
from streamqc.evaluation.scoring import (
    CaseLabels,
    CaseScore,
    Finding,
    KindScore,
    aggregate,
    findings,
    match_case,
)
from streamqc.events import Event

STREAMQC = "streamqc"
FFMPEG = "ffmpeg"

Options = dict[str, dict[str, Any]]


# --- corpus --------------------------------------------------------------------------


def load_corpus(corpus_dir: str | Path) -> tuple[dict[str, Any], list[CaseLabels]]:
    """The manifest (empty when absent) and the cases, in manifest order (else by name)."""
    root = Path(corpus_dir)
    if not root.is_dir():
        raise StreamQCError(f"{root}: not a corpus directory")
    manifest_path = root / "manifest.json"
    manifest: dict[str, Any] = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    if manifest.get("cases"):
        label_paths = [root / f"{case_id}.json" for case_id in manifest["cases"]]
    else:
        label_paths = sorted(p for p in root.glob("*.json") if p.name != "manifest.json")
    missing = [p.name for p in label_paths if not p.exists()]
    if missing:
        raise StreamQCError(f"{root}: label files listed in the manifest are missing: {', '.join(missing[:5])}")
    cases = [CaseLabels.load(p) for p in label_paths]
    if not cases:
        raise StreamQCError(f"{root}: no cases (expected manifest.json and <id>.json label files)")
    return manifest, cases


def merge_options(base: Options | None, case: Options | None) -> Options | None:
    """Per-detector merge: the case's keys win over the run's."""
    if not base and not case:
        return None
    merged: Options = {name: dict(values) for name, values in (base or {}).items()}
    for name, values in (case or {}).items():
        merged.setdefault(name, {}).update(values)
    return merged


# --- per case (runs in a worker) -----------------------------------------------------


@dataclasses.dataclass(slots=True)
class SystemRun:
    """What one system (streamqc or the FFmpeg reference) said about one case."""

    system: str
    events: list[Event]
    error: str | None
    elapsed_s: float
    kinds: frozenset[str] | None  # kinds it was judged on; None = every kind
    duration: float | None = None


@dataclasses.dataclass(slots=True)
class _CaseJob:
    media_path: str
    case: CaseLabels
    options: Options | None
    reference: bool
    kinds: frozenset[str] | None
    reference_options: ReferenceOptions


@dataclasses.dataclass(slots=True)
class _CaseOutput:
    case: CaseLabels
    streamqc: SystemRun
    ffmpeg: SystemRun | None


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def _run_streamqc(job: _CaseJob) -> SystemRun:
    from streamqc.check import check_input  # imported here: the worker's import, not the parent's

    t0 = time.perf_counter()
    try:
        result = check_input(job.media_path, options=job.options)
    except StreamQCError as err:
        return SystemRun(STREAMQC, [], str(err), time.perf_counter() - t0, job.kinds)
    except Exception as err:  # a crash on one case must not lose the whole run
        detail = traceback.format_exc(limit=3).strip().splitlines()[-1]
        return SystemRun(STREAMQC, [], f"crash: {_one_line(err)} ({detail})", time.perf_counter() - t0, job.kinds)
    return SystemRun(
        STREAMQC, list(result.events), None, time.perf_counter() - t0, job.kinds, duration=result.duration
    )


def _run_ffmpeg(job: _CaseJob) -> SystemRun:
    judged = reference_kinds(job.kinds, job.reference_options)
    t0 = time.perf_counter()
    try:
        ref = run_reference(job.media_path, kinds=judged, options=job.reference_options)
    except Exception as err:
        return SystemRun(FFMPEG, [], _one_line(err), time.perf_counter() - t0, judged)
    return SystemRun(FFMPEG, ref.events, None, ref.elapsed_s, judged, duration=ref.duration)


def _run_case(job: _CaseJob) -> _CaseOutput:
    sq = _run_streamqc(job)
    ff = _run_ffmpeg(job) if job.reference else None
    return _CaseOutput(job.case, sq, ff)


# --- report --------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class CaseResult:
    case: CaseLabels
    runs: dict[str, SystemRun]  # by system name
    scores: dict[str, CaseScore]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.case.id, "file": self.case.file}
        for system, run in self.runs.items():
            score = self.scores[system]
            out[system] = {
                "error": run.error,
                "elapsed_s": round(run.elapsed_s, 3),
                "hits": len(score.matches),
                "misses": len(score.misses),
                "false_alarms": len(score.false_alarms),
                "ignored": len(score.ignored),
                "events": [e.to_dict() for e in run.events],
            }
        return out


@dataclasses.dataclass(slots=True)
class EvalReport:
    corpus: str
    manifest: dict[str, Any]
    cases: list[CaseResult]
    kinds: list[str]  # the table's rows
    scores: dict[str, dict[str, KindScore]]  # system -> kind -> score
    judged: dict[str, frozenset[str] | None]  # system -> kinds it is judged on (None = all)
    elapsed_s: float

    @property
    def systems(self) -> list[str]:
        return list(self.scores)

    @property
    def seed(self) -> Any:
        return self.manifest.get("seed")

    def findings(self, system: str | None = None) -> list[Finding]:
        """Misses and false alarms, case by case, for one system or all."""
        out: list[Finding] = []
        for result in self.cases:
            for name, score in result.scores.items():
                if system is None or name == system:
                    out += [_explain(f, result.case) for f in findings(score, name)]
        return out

    def errors(self) -> list[tuple[str, str, str]]:
        """(system, case id, one-line reason) for every case a system could not read."""
        return [
            (name, result.case.id, run.error)
            for result in self.cases
            for name, run in result.runs.items()
            if run.error
        ]

    def covers(self, system: str, kind: str) -> bool:
        judged = self.judged.get(system)
        return system in self.scores and (judged is None or kind in judged)

    def to_dict(self) -> dict[str, Any]:
        """The whole report as plain JSON types (numpy scalars in event details included)."""
        return _jsonable(self._to_dict())

    def _to_dict(self) -> dict[str, Any]:
        return {
            "corpus": self.corpus,
            "seed": self.seed,
            "generator": self.manifest.get("generator"),
            "cases": len(self.cases),
            "elapsed_s": round(self.elapsed_s, 3),
            "kinds": {
                kind: {
                    system: (table[kind].to_dict() if self.covers(system, kind) else None)
                    for system, table in self.scores.items()
                }
                for kind in self.kinds
            },
            "time_s": {
                system: round(sum(r.runs[system].elapsed_s for r in self.cases if system in r.runs), 3)
                for system in self.scores
            },
            "errors": [{"system": s, "case": c, "reason": m} for s, c, m in self.errors()],
            "findings": [f.to_dict() for f in self.findings()],
            "per_case": [r.to_dict() for r in self.cases],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return str(value)


def _explain(finding: Finding, case: CaseLabels) -> Finding:
    """Name the hard negatives a false alarm overlaps: usually why it happened. Hard
    negatives carry no kind (a dark scene, a quiet passage), so all of them are named."""
    if finding.what != "false_alarm":
        return finding
    names = []
    for negative in case.hard_negatives:
        try:
            start, end = float(negative["start"]), float(negative["end"])
        except (KeyError, TypeError, ValueError):
            continue
        if negative.get("kind") not in (None, finding.kind):
            continue
        if finding.start <= end and start <= finding.end:
            names.append(str(negative.get("what", "")))
    if not names:
        return finding
    return dataclasses.replace(finding, details={**finding.details, "hard_negative": "; ".join(names)})


def score_runs(
    outputs: Iterable[_CaseOutput],
    corpus: str,
    manifest: dict[str, Any],
    kinds: Iterable[str] | None,
    elapsed_s: float,
) -> EvalReport:
    wanted = None if kinds is None else frozenset(kinds)
    cases: list[CaseResult] = []
    judged: dict[str, frozenset[str] | None] = {STREAMQC: wanted}
    for out in outputs:
        runs = {STREAMQC: out.streamqc}
        if out.ffmpeg is not None:
            runs[FFMPEG] = out.ffmpeg
            judged[FFMPEG] = out.ffmpeg.kinds
        scores = {
            name: match_case(
                run.events, out.case.labels, out.case.ignore, case_id=out.case.id, kinds=run.kinds
            )
            for name, run in runs.items()
        }
        cases.append(CaseResult(out.case, runs, scores))

    # Rows: every kind labelled, plus every kind a system raised (false alarms of a
    # kind nobody labelled are still errors worth a row).
    row_kinds: set[str] = set()
    for result in cases:
        row_kinds |= {lab.kind for lab in result.case.labels}
        for run in result.runs.values():
            row_kinds |= {e.kind for e in run.events}
    if wanted is not None:
        row_kinds &= wanted
    systems = [STREAMQC] + ([FFMPEG] if FFMPEG in judged else [])
    tables = {
        system: aggregate(
            (r.scores[system] for r in cases if system in r.scores),
            kinds=row_kinds,
            case_labels=[r.case for r in cases],
        )
        for system in systems
    }
    return EvalReport(
        corpus=corpus,
        manifest=manifest,
        cases=cases,
        kinds=sorted(row_kinds),
        scores=tables,
        judged=judged,
        elapsed_s=elapsed_s,
    )


def _map_jobs(
    jobs_list: list[_CaseJob],
    jobs: int,
    worker: Callable[[_CaseJob], Any],
    progress: Callable[[Any], None] | None,
) -> list[Any]:
    """Run `worker` over the jobs, in processes when jobs > 1; results keep corpus order."""
    if jobs <= 1 or len(jobs_list) <= 1:
        results = []
        for job in jobs_list:
            results.append(worker(job))
            if progress:
                progress(results[-1])
        return results
    # spawn, not fork: a forked child would inherit the parent's FFmpeg/thread state.
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {pool.submit(worker, job): i for i, job in enumerate(jobs_list)}
        ordered: list[Any] = [None] * len(jobs_list)
        for future in concurrent.futures.as_completed(futures):
            ordered[futures[future]] = future.result()
            if progress:
                progress(ordered[futures[future]])
    return ordered


def evaluate_corpus(
    corpus_dir: str | Path,
    options: Options | None = None,
    reference: bool = True,
    jobs: int = 2,
    kinds: Iterable[str] | None = None,
    *,
    reference_options: ReferenceOptions = ReferenceOptions(),
    progress: Callable[[str], None] | None = None,
) -> EvalReport:
    """Score streamqc's `check_input` (and, with `reference`, FFmpeg's detectors) on a corpus.

    `options` are check_input options for every case; a case's own `options` win per
    detector. `kinds` limits scoring to those kinds. `progress` is called with each
    finished case id (in completion order) so a CLI can show a bar.
    """
    t0 = time.perf_counter()
    manifest, cases = load_corpus(corpus_dir)
    wanted = None if kinds is None else frozenset(kinds)
    root = Path(corpus_dir)
    job_list = [
        _CaseJob(
            media_path=str(root / case.file),
            case=case,
            options=merge_options(options, case.options),
            reference=reference,
            kinds=wanted,
            reference_options=reference_options,
        )
        for case in cases
    ]
    outputs = _map_jobs(
        job_list,
        jobs,
        _run_case,
        (lambda out: progress(out.case.id)) if progress else None,
    )
    return score_runs(outputs, str(corpus_dir), manifest, wanted, time.perf_counter() - t0)


# --- blockdetect threshold sweep ------------------------------------------------------


def _block_scores(job: _CaseJob) -> tuple[CaseLabels, list[tuple[float, float]], float, str | None]:
    try:
        ref = run_reference(job.media_path, kinds={CORRUPTION}, options=job.reference_options)
    except Exception as err:
        return job.case, [], 0.04, _one_line(err)
    fps = (job.case.video or {}).get("fps") or 25.0
    return job.case, ref.block_scores, 1.0 / float(fps), None


@dataclasses.dataclass(slots=True)
class BlockSweep:
    """blockdetect's video.corruption score at each candidate threshold (ascending)."""

    results: list[tuple[float, KindScore]]
    # (labels, per-frame scores, frame duration) per case, to score any threshold.
    cases: list[tuple[CaseLabels, list[tuple[float, float]], float]]
    options: ReferenceOptions

    @property
    def best(self) -> float:
        """The threshold to carry to another seed: the geometric middle of the widest run
        of consecutive candidates with the best F1 (then the best median onset, to 10 ms),
        not its edge, so a slightly different score distribution does not fall off it."""
        if not self.results:
            raise ValueError("empty sweep")

        def quality(score: KindScore) -> tuple[float, float]:
            onset = score.onset_median_s
            return (round(score.f1 or 0.0, 6), -round(onset if onset is not None else math.inf, 2))

        qualities = [quality(score) for _t, score in self.results]
        top = max(qualities)
        runs: list[tuple[float, float]] = []
        start: int | None = None
        for i, q in enumerate(qualities + [None]):  # type: ignore[operator]
            if q == top and start is None:
                start = i
            elif q != top and start is not None:
                runs.append((self.results[start][0], self.results[i - 1][0]))
                start = None

        def width(run: tuple[float, float]) -> float:
            lo, hi = run
            return math.log(hi / lo) if lo > 0 else hi - lo

        lo, hi = max(runs, key=width)
        return math.sqrt(lo * hi) if lo > 0 else (lo + hi) / 2

    def score_at(self, threshold: float) -> KindScore:
        case_scores = [
            match_case(
                block_events(
                    scores,
                    threshold,
                    frame_duration_s=frame_s,
                    merge_gap_s=self.options.block_merge_gap_s,
                    min_duration_s=self.options.block_min_duration_s,
                ),
                case.labels,
                case.ignore,
                case_id=case.id,
                kinds={CORRUPTION},
            )
            for case, scores, frame_s in self.cases
        ]
        return aggregate(case_scores, kinds=[CORRUPTION], case_labels=[c for c, _s, _f in self.cases])[CORRUPTION]


def _candidate_thresholds(observed: list[float], n: int = 200) -> list[float]:
    """Observed scores (evenly by rank) and a log-spaced grid over their range: the grid
    puts candidates inside the gaps between clusters, where good thresholds live."""
    values = sorted({round(v, 3) for v in observed})
    if not values:
        return [0.0]
    by_rank = values[:: max(1, len(values) // n)]
    lo, hi = max(values[0], 1e-3), max(values[-1], 1e-3)
    grid = [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)] if hi > lo else []
    return sorted(set(by_rank) | {round(g, 3) for g in grid})


def sweep_block_threshold(
    corpus_dir: str | Path,
    thresholds: Iterable[float] | None = None,
    jobs: int = 2,
    reference_options: ReferenceOptions = ReferenceOptions(),
) -> BlockSweep:
    """blockdetect's video.corruption score on a corpus at each threshold.

    Run it on a tuning seed and pass `.best` as `ReferenceOptions(block_threshold=...)`
    when evaluating another seed, so the reference is not tuned on the test cases.
    blockdetect runs once per case; the sweep only re-thresholds its per-frame scores.
    """
    _manifest, cases = load_corpus(corpus_dir)
    root = Path(corpus_dir)
    # An infinite threshold runs the filter, keeps its scores, and raises nothing.
    opts = dataclasses.replace(reference_options, block_threshold=float("inf"))
    job_list = [
        _CaseJob(str(root / c.file), c, None, True, frozenset({CORRUPTION}), opts) for c in cases
    ]
    per_case = _map_jobs(job_list, jobs, _block_scores, None)
    errors = [f"{case.id}: {err}" for case, _s, _d, err in per_case if err]
    if errors:
        raise StreamQCError("blockdetect failed on " + "; ".join(errors[:3]))
    if thresholds is None:
        thresholds = _candidate_thresholds([s for _c, scores, _d, _e in per_case for _t, s in scores])
    sweep = BlockSweep([], [(case, scores, frame_s) for case, scores, frame_s, _e in per_case], reference_options)
    sweep.results = [(threshold, sweep.score_at(threshold)) for threshold in sorted(thresholds)]
    return sweep
