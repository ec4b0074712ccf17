"""Evaluation runs: score a folder of videos, run a benchmark, score a motion prior — what ``lamo eval`` runs.

* :func:`evaluate_videos` — find the videos of a folder, score each with a metric family, summarise, write a JSON
  report; :func:`evaluate_physics` (the physics world's tracker and fits, :mod:`lamo.physics.metrics`) and
  :func:`evaluate_motion` (weight-free VBench-style motion metrics, :mod:`lamo.motion_metrics`) are the two
  families. Each returns an :class:`EvalResult`.
* :func:`run_benchmark` — VideoPhy, VideoPhy2 or VBench: generate for the benchmark's prompts (resumable), score
  with its evaluator, aggregate (:mod:`lamo.evals.benchmarks`); returns a :class:`BenchmarkResult`.
* :func:`evaluate_prior` — is a motion prior worth sampling with? (:mod:`lamo.prior_quality`).

Where the videos come from (``source``): a dataset folder with ``metadata.jsonl`` (its ``"video"`` entries are
scored, in order), a folder searched recursively for videos, or one video file. A clip that cannot be scored
(unreadable, empty, wrong frame size, no object …) gets an entry with an ``"error"`` message and the other clips'
results are kept; an unexpected error (a bug) is kept the same way, flagged ``"unexpected": true``.

    from lamo.evaluation import evaluate_physics
    result = evaluate_physics("runs/samples", preset="tiny")
    print(result.text())           # the table `lamo eval physics` prints
    result.report["summary"]       # {metric: {"mean", "std", "n", "n_undefined"}}
"""
from __future__ import annotations

import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._io import write_text_atomic
from .errors import InputError, MissingInputError, UserError

__all__ = ["VIDEO_SUFFIXES", "EvalResult", "BenchmarkResult", "find_videos", "score_videos", "format_table",
           "evaluate_videos", "resolve_world", "evaluate_physics", "evaluate_motion", "run_benchmark",
           "evaluate_prior", "DEFAULT_WORLD_CLIPS"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif")
#: Clips of the physics world :func:`evaluate_prior` scores by default.
DEFAULT_WORLD_CLIPS = 256

#: a metric family's description: name → (unit, which way is better, meaning)
MetricInfo = Mapping[str, tuple[str, str, str]]


# ---------------------------------------------------------------------------------------------
# Scoring a folder of videos
# ---------------------------------------------------------------------------------------------


def find_videos(source: str | os.PathLike) -> list[tuple[str, Path, dict]]:
    """``(name, path, metadata record)`` of each video to score (see the module docstring)."""
    from .physics.dataset import read_metadata

    source = Path(source)
    if source.is_file():
        return [(source.name, source, {})]
    if not source.is_dir():
        raise MissingInputError(f"{source}: no such file or folder")
    if (source / "metadata.jsonl").is_file():
        records = read_metadata(source)
        missing = [n for n, r in enumerate(records, 1) if "video" not in r]
        if missing:
            raise InputError(f"{source / 'metadata.jsonl'}: line(s) {missing[:5]} have no \"video\" entry")
        return [(r["video"], source / r["video"], r) for r in records]
    paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    return [(p.relative_to(source).as_posix(), p, {}) for p in paths]


def _is_user_error(e: BaseException) -> bool:
    from .cli import is_user_error

    return is_user_error(e)


def score_videos(items: Sequence[tuple[str, Path, dict]], score: Callable, desc: str,
                 progress: bool = True) -> list[dict]:
    """Read and score each video; a failure becomes ``{"video", "error"}`` instead of stopping the run.

    ``score(frames)``: ``(T, H, W, 3)`` uint8 frames → a dataclass with ``to_dict()``. Errors that say the clip is
    bad (unreadable, cut short, wrong size, no object: a ``UserError`` such as ``VideoReadError``, or a
    ``ValueError`` such as ``ClipError`` raised by LaMo) are expected; anything else — a bug — is also kept per
    clip but flagged ``"unexpected": true``.
    """
    from tqdm.auto import tqdm

    from .video_io import read_video

    entries = []
    for name, path, record in tqdm(items, desc=desc, unit="clip", disable=not progress):
        entry: dict = {"video": name}
        for key in ("caption", "scenario", "seed"):
            if key in record:
                entry[key] = record[key]
        try:
            entry["metrics"] = score(read_video(path)).to_dict()
        except Exception as e:  # noqa: BLE001 — one bad clip must not lose the others' results
            if _is_user_error(e):
                entry["error"] = str(e)
            else:
                entry["error"], entry["unexpected"] = f"{type(e).__name__}: {e}", True
        entries.append(entry)
    return entries


def jsonable(x: Any) -> Any:
    """NaN / inf → None, recursively (strict JSON)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    return x




def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"


def format_table(summary: Mapping[str, dict], info: MetricInfo, n_scored: int) -> str:
    """The summary as an aligned text table: metric, mean, std, clips where defined, better, unit."""
    rows = [("metric", "mean", "std", "clips", "better", "unit")]
    for name, s in summary.items():
        unit, better, _ = info[name]
        rows.append((name, _fmt(s["mean"]), _fmt(s["std"]), f"{s['n']}/{n_scored}", better, unit))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i in (0, 4, 5) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@dataclass
class EvalResult:
    """What :func:`evaluate_videos` scored and wrote.

    ``report``: the JSON report as written (``command``, ``source``, ``n_clips``, ``n_scored``, ``n_failed``,
    ``summary`` {metric: {mean, std, n, n_undefined}}, ``metrics`` (unit, better, meaning), ``clips`` (one entry per
    video: its ``metrics`` or its ``error``) and the family's header, e.g. ``world``); ``path``: where.
    """

    report: dict
    path: Path
    info: MetricInfo
    title: str
    note: str | None = None  # something the user should know about how the clips were read

    @property
    def clips(self) -> list[dict]:
        return self.report["clips"]

    @property
    def failed(self) -> list[dict]:
        return [e for e in self.clips if "error" in e]

    def text(self, per_clip: bool = False) -> str:
        """The summary ``lamo eval`` prints: title, counts, the table, (per clip), the clips that failed, the path."""
        r = self.report
        lines = [self.title, f"{r['n_clips']} clip(s): {r['n_scored']} scored, {r['n_failed']} failed", "",
                 format_table(r["summary"], self.info, r["n_scored"])]
        if per_clip:
            lines.append("")
            for e in self.clips:
                vals = " ".join(f"{k}={_fmt(e['metrics'][k])}" for k in self.info if k in e.get("metrics", {}))
                lines.append(f"  {e['video']}: {vals or 'error'}")
        if self.failed:
            lines += ["", "clips that could not be scored:"] + [f"  {e['video']}: {e['error']}" for e in self.failed]
        lines += ["", f"report: {self.path}"]
        return "\n".join(lines)

    def exit_status(self, strict: bool = False) -> int:
        """1 when no clip was scored, when a clip failed unexpectedly (a bug) or, with ``strict``, when any failed."""
        unexpected = any(e.get("unexpected") for e in self.failed)
        return 1 if not self.report["n_scored"] or unexpected or (strict and self.failed) else 0


def evaluate_videos(source: str | os.PathLike, score: Callable, info: MetricInfo, *, command: str, title: str,
                    report_name: str, out: str | os.PathLike | None = None, header: Mapping[str, Any] | None = None,
                    progress: bool = True) -> EvalResult:
    """Find, score and summarise the videos of ``source``; write the JSON report; return it as an :class:`EvalResult`.

    ``score``: frames → metrics dataclass (see :func:`score_videos`); ``info``: the family's metrics; ``command``:
    recorded in the report; ``out``: the report's path (default: ``report_name`` in ``source``'s folder) — a folder,
    or a path under a file, is refused before anything is scored.
    """
    from .physics.metrics import aggregate

    src = Path(source)
    out = Path(out) if out else (src if src.is_dir() else src.parent) / report_name
    if out.is_dir():  # checked before scoring, not after
        raise InputError(f"--out {out} is a folder; give the path of the JSON report to write, "
                         f"e.g. {out / report_name}")
    if any(p.exists() and not p.is_dir() for p in out.parents):
        raise InputError(f"--out {out}: {next(p for p in out.parents if p.exists() and not p.is_dir())} is a file, "
                         "not a folder")
    items = find_videos(src)
    if not items:
        raise MissingInputError(f"{src}: no videos found ({', '.join(VIDEO_SUFFIXES)})")
    entries = score_videos(items, score, command.split()[-1], progress=progress)
    scored = [e["metrics"] for e in entries if "metrics" in e]
    report = {
        "command": command, "source": str(src), **(header or {}),
        "n_clips": len(entries), "n_scored": len(scored), "n_failed": sum("error" in e for e in entries),
        "summary": aggregate(scored, info),
        "metrics": {k: {"unit": u, "better": b, "meaning": m} for k, (u, b, m) in info.items()},
        "clips": entries,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, json.dumps(jsonable(report), indent=1) + "\n")
    return EvalResult(report, out, info, title)


def resolve_world(source: str | os.PathLike, preset: str | None = None, world: str | os.PathLike | None = None):
    """The physics world clips of ``source`` come from: ``world`` (a world.json), else ``preset``, else the
    ``world.json`` next to the clips. Returns ``(WorldConfig, where it came from, note or None)`` — the note says
    when a preset was chosen over a different ``world.json`` found there."""
    from .physics.dataset import load_world_config
    from .physics.world import get_world_config

    src = Path(source)
    found = (src if src.is_dir() else src.parent) / "world.json"
    if world:
        return load_world_config(world), str(world), None
    if preset:
        cfg = get_world_config(preset)
        differs = found.is_file() and load_world_config(found) != cfg
        return cfg, f"preset {preset}", f"{found} differs from preset {preset}; using the preset as asked" if differs \
            else None
    if found.is_file():
        return load_world_config(found), str(found), None
    raise InputError(f"no world.json next to {src}: pass --preset (tiny, small, medium) or --world FILE "
                     "to say which world the clips come from")


def evaluate_physics(source: str | os.PathLike, *, preset: str | None = None, world: str | os.PathLike | None = None,
                     out: str | os.PathLike | None = None, progress: bool = True) -> EvalResult:
    """Physics metrics (gravity, ballistic fit, bounces, velocity jumps, object permanence, shape stability,
    fidelity; :data:`lamo.physics.metrics.PHYSICS_METRICS`) of clips of the physics world — which world:
    :func:`resolve_world`. The report is ``eval_physics.json`` beside the clips unless ``out`` says otherwise."""
    from .physics.metrics import PHYSICS_METRICS, evaluate_clip

    cfg, origin, note = resolve_world(source, preset, world)
    title = (f"physics of {Path(source)} — world: {origin} "
             f"({cfg.size} px, {cfg.frames} frames, g = {cfg.gravity} px/frame²)")
    result = evaluate_videos(source, lambda frames: evaluate_clip(frames, cfg), PHYSICS_METRICS,
                             command="lamo eval physics", title=title, report_name="eval_physics.json", out=out,
                             header={"world": cfg.to_dict(), "world_source": origin}, progress=progress)
    result.note = note
    return result


def evaluate_motion(source: str | os.PathLike, *, out: str | os.PathLike | None = None,
                    progress: bool = True) -> EvalResult:
    """Weight-free VBench-style dynamic degree, motion smoothness and temporal flickering (OpenCV flow;
    :data:`lamo.motion_metrics.MOTION_METRICS`) of any videos; the report is ``eval_motion.json`` by default."""
    from .motion_metrics import MOTION_METRICS, motion_metrics

    return evaluate_videos(source, motion_metrics, MOTION_METRICS, command="lamo eval motion",
                           title=f"motion metrics of {source}", report_name="eval_motion.json", out=out,
                           progress=progress)


# ---------------------------------------------------------------------------------------------
# Benchmarks: generate, score with the benchmark's evaluator, aggregate
# ---------------------------------------------------------------------------------------------


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` wrote: ``report`` (``OUT/report.json``: benchmark, model, prior, λ, the motion
    metrics' summary, the evaluator's aggregated ``scores`` — or ``vbench`` results, or ``evaluator_missing`` /
    ``evaluator_error``), its ``path``, and ``status`` 1 with a one-line ``failure`` when the evaluator failed."""

    report: dict
    path: Path
    n_scored: int
    status: int = 0
    failure: str | None = None
    note: str | None = None  # the evaluator is not installed: what to do

    def text(self) -> str:
        """What ``lamo eval videophy|videophy2|vbench`` prints: the motion table, the scores next to the paper's."""
        from .motion_metrics import MOTION_METRICS

        r = self.report
        lines = ["", self.note, "The weight-free motion metrics are in the report."] if self.note else []
        lines += ["", format_table(r["motion"], MOTION_METRICS, self.n_scored)]
        if "scores" in r:
            s = r["scores"]
            lines += ["", f"{r['benchmark']}: SA {s['SA']:.1f}  PC {s['PC']:.1f}  joint {s['joint']:.1f}  (n = {s['n']})"]
            lines += [f"  paper, {model}: SA {sa}" + (f"  PC {pc}" if pc is not None else "")
                      for model, (sa, pc) in r["paper"].items()]
            if "hard" in s:
                h = s["hard"]
                lines.append(f"  hard subset: SA {h['SA']:.1f}  PC {h['PC']:.1f}  joint {h['joint']:.1f}  (n = {h['n']})")
            for column, values in s.get("by", {}).items():
                lines.append(f"  by {column}: " + ";  ".join(
                    f"{value}: SA {g['SA']:.1f} PC {g['PC']:.1f} (n = {g['n']})" for value, g in values.items()))
        if "vbench_total" in r:
            t = r["vbench_total"]
            lines += ["", f"VBench: total {t['total']:.2f}  quality {t['quality']:.2f}  semantic {t['semantic']:.2f}"
                      + (f"  ({len(t['missing'])} dimension(s) not evaluated, counted 0 as VBench does)"
                         if t["missing"] else "")]
            lines += [f"  paper, {model}: total {total}" for model, (total, _) in r["paper"].items()]
        return "\n".join(lines + ["", f"report: {self.path}"])

    def evaluator_stderr_tail(self, lines: int = 10) -> list[str]:
        """The last lines the failed evaluator wrote to its stderr (none when it did not fail)."""
        if not self.failure:
            return []
        return self.report["evaluator_error"].get("stderr_tail", "").strip().splitlines()[-lines:]


def _generate_with_lamo_sample(argv: list[str]) -> None:
    """Run ``lamo sample`` with ``argv`` in this process (under a launcher, every process takes its share)."""
    from .cli import build_parser

    args = build_parser(only=argv[0]).parse_args(argv)
    args.func(args)


def run_benchmark(benchmark: str, prompts: str | os.PathLike, *, model: str, out: str | os.PathLike,
                  prior: str | None = None, motion_guidance_scale: float | None = None, seeds: Sequence[int] = (0,),
                  steps: int = 50, scores: str | os.PathLike | None = None, evaluator_cmd: str | None = None,
                  sample_args: str = "", generate: Callable[[list[str]], None] | None = None,
                  cpu_offload: str = "none", vae_slicing: bool = False, vae_tiling: bool = False
                  ) -> BenchmarkResult | None:
    """Generate (reusing only videos made exactly as asked now), score with the benchmark's evaluator, aggregate.

    ``benchmark``: ``videophy``, ``videophy2`` or ``vbench`` (:data:`lamo.evals.benchmarks.BENCHMARKS`);
    ``prompts``: its prompt file; ``model`` / ``prior`` / λ (default 1 with a prior, else 0) / ``seeds`` /
    ``steps`` / ``sample_args`` (more ``lamo sample`` options) say how the videos are made, in ``OUT/videos``;
    ``scores``: per-video scores the evaluator already wrote, or ``evaluator_cmd``: the command that writes them
    (``{input}`` = ``OUT/videos.csv``, ``{output}`` = the scores file). ``generate``: what makes the videos from
    ``lamo sample`` arguments (default: ``lamo sample`` in this process). ``cpu_offload`` / ``vae_slicing`` /
    ``vae_tiling``: ``lamo sample``'s memory switches (:func:`lamo.pipelines.settings.configure_memory`).

    The report is written whatever the evaluator does: when it fails, ``report.json`` keeps the motion metrics and
    records the evaluator's error and exit status, every video is kept, and ``status`` is 1. Under ``torchrun`` /
    ``accelerate launch`` the generation is shared out over the processes; the main process scores and reports,
    the others return ``None``.
    """
    import csv

    from .evals.benchmarks import (BENCHMARKS, GROUP_COLUMNS, EvaluatorFailed, EvaluatorMissing, aggregate,
                                   read_benchmark_rows, read_scores, run_evaluator, vbench_total)
    from .motion_metrics import MOTION_METRICS, motion_metrics
    from .physics.metrics import aggregate as aggregate_metrics
    from .sharding import Shards

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; it must be a folder (videos, videos.csv, scores, report.json)")
    if scores and not Path(scores).is_file():
        raise MissingInputError(f"--scores {scores}: no such file")
    if scores and evaluator_cmd:
        raise InputError("pass --scores (scores already computed) or --evaluator-cmd (run the evaluator), not both")
    rows = read_benchmark_rows(benchmark, prompts)  # the paper's protocol: what is generated, what SA is judged on
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "prompts.txt", "\n".join(r.prompt.replace("\n", " ") for r in rows) + "\n")
    lam = motion_guidance_scale if motion_guidance_scale is not None else (1.0 if prior else 0.0)
    argv = ["sample", "--model", model, "--prompts-file", str(out / "prompts.txt"), "--seeds",
            *map(str, seeds), "--steps", str(steps), "--motion-guidance-scale", str(lam),
            "--out", str(out / "videos"), "--skip-existing", *shlex.split(sample_args)]
    if prior:
        argv += ["--prior", prior]
    if cpu_offload != "none":
        argv += ["--cpu-offload", cpu_offload]
    argv += ["--vae-slicing"] * bool(vae_slicing) + ["--vae-tiling"] * bool(vae_tiling)
    (generate or _generate_with_lamo_sample)(argv)  # resumable: only videos made exactly as asked now are kept
    if not Shards.from_env().main:  # under torchrun / accelerate launch: rank 0 merged run.json and scores
        return None

    run = json.loads((out / "videos" / "run.json").read_text())
    row_of = {v["file"]: rows[v["prompt_index"]] if 0 <= v.get("prompt_index", -1) < len(rows) else None
              for v in run["videos"]}
    columns = [c for c in GROUP_COLUMNS if any(r.groups.get(c) for r in rows)]
    groups_of: dict[str, dict] = {}  # a video's path (as written, and its name) -> its breakdown columns
    with open(out / ".videos.csv.tmp", "w", newline="") as f:  # the evaluators' input
        w = csv.writer(f)
        # caption = the text SA is judged against (also as short_caption, which the release's evaluators read)
        w.writerow(["videopath", "caption", "short_caption", "prompt", *columns])
        for v in run["videos"]:
            r = row_of[v["file"]]
            path = str((out / "videos" / v["file"]).resolve())
            judge = r.judge if r is not None else v["prompt"]
            w.writerow([path, judge, judge, v["prompt"], *((r.groups.get(c, "") if r else "") for c in columns)])
            groups_of[path] = groups_of[v["file"]] = r.groups if r is not None else {}
    os.replace(out / ".videos.csv.tmp", out / "videos.csv")

    report: dict = {"benchmark": benchmark, "model": model, "prior": prior, "lambda": lam,
                    "n_videos": len(run["videos"]), "paper": BENCHMARKS[benchmark]["paper"]}
    # this run's videos only (run.json), never other files lying in the folder
    items = [(v["file"], out / "videos" / v["file"], {}) for v in run["videos"]]
    entries = score_videos(items, motion_metrics, "motion")
    report["motion"] = aggregate_metrics([e["metrics"] for e in entries if "metrics" in e], MOTION_METRICS)
    dims = sorted({d for r in rows for d in r.dimensions})
    if dims:  # a VBench suite: the weight-free metrics per dimension too (the offline stand-in for its judges)
        report["motion_by_dimension"] = {
            d: aggregate_metrics([e["metrics"] for v, e in zip(run["videos"], entries) if "metrics" in e
                                  and row_of[v["file"]] is not None and d in row_of[v["file"]].dimensions],
                                 MOTION_METRICS) for d in dims}
    result = BenchmarkResult(report, out / "report.json", sum("metrics" in e for e in entries))
    try:
        scores_path = Path(scores) if scores else run_evaluator(benchmark, evaluator_cmd, out / "videos.csv",
                                                                out / "scores.csv")
        if benchmark == "vbench":
            try:
                report["vbench"] = json.loads(scores_path.read_text())
            except json.JSONDecodeError as e:
                raise InputError(f"{scores_path}: VBench's results must be JSON ({e})") from e
            if isinstance(report["vbench"], dict):  # VBench's per-dimension results: its total score as it computes it
                report["vbench_total"] = vbench_total(report["vbench"])
        else:
            scored = read_scores(scores_path)
            for r in scored:  # the breakdown columns of the prompt each video was made from
                key = str(r["videopath"] or "")
                r["groups"] = groups_of.get(key) or groups_of.get(Path(key).name) or {}
            report["scores"] = aggregate(benchmark, scored)
    except EvaluatorMissing as e:
        report["evaluator_missing"] = result.note = str(e)
    except EvaluatorFailed as e:
        report["evaluator_error"] = e.to_dict()
        result.status = 1
        result.failure = f"{e}; its error is recorded in {result.path} (evaluator_error), the videos are kept"
    except UserError as e:  # scores that cannot be read or aggregated
        report["evaluator_error"] = {"error": str(e), "exit_status": None}
        result.status, result.failure = 1, f"the scores could not be used: {e}"
    write_text_atomic(result.path, json.dumps(jsonable(report), indent=1) + "\n")
    return result


# ---------------------------------------------------------------------------------------------
# Prior quality
# ---------------------------------------------------------------------------------------------


def evaluate_prior(prior: str | os.PathLike, out: str | os.PathLike, *, cache: str | os.PathLike | None = None,
                   backbone: str | os.PathLike | None = None, world_preset: str = "tiny", n: int | None = None,
                   seed: int = 5, tau: int | None = None, counterfactuals: Sequence[str] | None = None,
                   batch_size: int = 64, threads: int = 0, device: str = "cpu", command: str | None = None):
    """Score motion prior ``prior`` (a folder or Hub id): its validation cosine to the true τ-lag change and how
    often it ranks a real clip above counterfactuals of it, with 95 % intervals (:mod:`lamo.prior_quality`).

    The clips: ``cache`` — the first ``n`` (default: all) of a latent cache made by ``lamo cache``, counterfactuals
    made on latent frames; else ``n`` (default :data:`DEFAULT_WORLD_CLIPS`) clips of the physics world of seed
    ``seed``, made counterfactual in pixel space and encoded by ``backbone``'s VAE (default: the shipped demo
    backbone). ``tau``: the lag of L_guide and the cosine (default: the prior's own); ``counterfactuals``: a subset
    of :data:`lamo.prior_quality.COUNTERFACTUALS` (default: all that apply). Writes ``OUT/table.json`` and
    ``OUT/prior_quality.png``; returns ``(PriorQuality, table path, plot path, seconds)``.
    """
    import torch

    from ._version import __version__
    from .prior import MotionPrior
    from .prior_quality import COUNTERFACTUALS, GENERIC_COUNTERFACTUALS, write_prior_quality

    if threads:
        torch.set_num_threads(threads)
    if n is not None and n < 1:
        raise InputError(f"-n must be ≥ 1, got {n}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be ≥ 1, got {batch_size}")
    if cache and backbone:
        raise InputError("--backbone goes with --world; a cache already holds the backbone's latents")
    names = list(counterfactuals) if counterfactuals else None
    model = MotionPrior.from_pretrained(prior).float().to(device).eval()
    t0 = time.time()
    if cache:
        from .cache import CachedLatentDataset
        from .prior_quality import prior_quality

        try:
            ds = CachedLatentDataset(cache)
        except FileNotFoundError as e:
            raise MissingInputError(str(e)) from e
        k = len(ds) if n is None else min(n, len(ds))
        rows = [ds[i] for i in range(k)]
        latents = torch.stack([r["latents"] for r in rows]).float()  # (N, F, C, H, W)
        cond = torch.stack([r["pooled"] for r in rows]).float()  # (N, D)
        result = prior_quality(model, latents, cond, names or tuple(GENERIC_COUNTERFACTUALS), tau=tau, seed=seed,
                               batch_size=batch_size, source=f"latent cache {cache} ({k} of {len(ds)} clips)")
    else:
        from ._quiet import quiet_loading
        from .demo.run import DEFAULT_BACKBONE, DemoConfig, _load_pipeline
        from .prior_quality import world_prior_quality

        cfg = DemoConfig(backbone=str(backbone or DEFAULT_BACKBONE), world=world_preset)
        try:
            with quiet_loading():  # one bar: the components', not transformers' per-model one inside it
                pipe, _, preset, world = _load_pipeline(cfg)
        except FileNotFoundError as e:
            raise MissingInputError(str(e)) from e
        pipe = pipe.to(device)
        result = world_prior_quality(pipe, model, world, DEFAULT_WORLD_CLIPS if n is None else n, seed,
                                     names or tuple(COUNTERFACTUALS), tau=tau, batch_size=batch_size,
                                     max_sequence_length=preset["max_text_len"], progress=True)
    seconds = time.time() - t0
    from .demo.run import _commit

    extra = {"prior": str(prior), "commit": _commit(), "command": command or shlex.join(sys.argv),
             "lamo_version": __version__, "seconds": seconds, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
             "torch": torch.__version__, "threads": torch.get_num_threads()}
    table, plot = write_prior_quality(out, result, extra)
    return result, table, plot, seconds
