"""``lamo eval …``: score a folder of videos. Each sub-command prints a table and writes a JSON report.

* ``lamo eval physics DIR`` — track the balls of the physics world and score gravity, ballistic fit,
  bounces, velocity jumps, object permanence, shape stability and fidelity (:mod:`lamo.physics.metrics`);
* ``lamo eval motion DIR`` — weight-free VBench-style dynamic degree, motion smoothness and temporal
  flickering on any video (:mod:`lamo.motion_metrics`).

``DIR`` is a dataset folder with ``metadata.jsonl`` (its ``"video"`` entries are scored, in order), a
folder searched recursively for videos, or one video file. A clip that cannot be scored (unreadable,
empty, wrong frame size, no object …) gets an entry with an ``"error"`` message and the other clips'
results are kept. Exit status: 0 when at least one clip was scored; 1 when none was, when an
unexpected error happened, or (with ``--strict``) when any clip failed.

Under ``torchrun`` / ``accelerate launch``, ``lamo eval videophy|videophy2|vbench`` shares the generation out over
the processes (see :mod:`lamo.commands.sample`); rank 0 writes ``videos.csv``, scores and reports once every
video is made, and the other processes exit. The folder scorers run on rank 0 alone.

To add a sub-command: write ``_register_<name>(esub)`` that adds a parser and calls
:func:`add_common_arguments`, and a function that builds a ``score(frames) -> dataclass with
to_dict()`` and hands it to :func:`run_eval`; list the register function in :func:`register`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from ..errors import InputError, MissingInputError, UserError
from ..sharding import Shards
from ._args import world_preset

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif")

__all__ = ["register", "find_videos", "score_videos", "run_eval", "format_table", "add_common_arguments"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score videos: physics of the ball world, VBench-style motion metrics")
    esub = p.add_subparsers(dest="eval_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    _register_physics(esub)
    _register_motion(esub)
    for name in ("videophy", "videophy2", "vbench"):
        _register_benchmark(esub, name)
    from ._eval_prior import register_eval_prior

    register_eval_prior(esub)


def add_common_arguments(p: argparse.ArgumentParser, report_name: str) -> None:
    p.add_argument("dir", help="dataset folder (metadata.jsonl), folder of videos (searched recursively) or a video")
    p.add_argument("--out", default=None, help=f"JSON report path (default: DIR/{report_name})")
    p.add_argument("--per-clip", action="store_true", help="also print one line per clip")
    p.add_argument("--strict", action="store_true", help="exit with status 1 if any clip could not be scored")


# ---------------------------------------------------------------------------------------------
# Sub-commands
# ---------------------------------------------------------------------------------------------


def _register_physics(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser("physics", help="physics metrics of clips of the ball world (tracker + fits)",
                        description=__doc__.split("\n\n")[0])
    add_common_arguments(p, "eval_physics.json")
    p.add_argument("--preset", type=world_preset, default=None,
                   help="world preset of the clips (default: DIR/world.json)")
    p.add_argument("--world", default=None, help="a world.json to use (overrides DIR/world.json and --preset)")
    p.set_defaults(func=_physics, report_name="eval_physics.json")


def _physics(args: argparse.Namespace) -> int:
    from ..physics.dataset import load_world_config
    from ..physics.metrics import PHYSICS_METRICS, evaluate_clip
    from ..physics.world import get_world_config

    src = Path(args.dir)
    found = (src if src.is_dir() else src.parent) / "world.json"
    if args.world:
        world, origin = load_world_config(args.world), str(args.world)
    elif args.preset:
        world, origin = get_world_config(args.preset), f"preset {args.preset}"
        if found.is_file() and load_world_config(found) != world:
            print(f"note: {found} differs from preset {args.preset}; using the preset as asked", file=sys.stderr)
    elif found.is_file():
        world, origin = load_world_config(found), str(found)
    else:
        raise InputError(f"no world.json next to {src}: pass --preset (tiny, small, medium) or --world FILE "
                         "to say which world the clips come from")
    header = {"world": world.to_dict(), "world_source": origin}
    title = (f"physics of {src} — world: {origin} "
             f"({world.size} px, {world.frames} frames, g = {world.gravity} px/frame²)")
    return run_eval(args, lambda frames: evaluate_clip(frames, world), PHYSICS_METRICS, "lamo eval physics",
                    title, header)


def _register_motion(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser("motion", help="VBench-style motion metrics (OpenCV flow) of any videos",
                        description=__doc__.split("\n\n")[0])
    add_common_arguments(p, "eval_motion.json")
    p.set_defaults(func=_motion, report_name="eval_motion.json")


def _motion(args: argparse.Namespace) -> int:
    from ..motion_metrics import MOTION_METRICS, motion_metrics

    return run_eval(args, motion_metrics, MOTION_METRICS, "lamo eval motion", f"motion metrics of {args.dir}", {})


def _register_benchmark(esub: argparse._SubParsersAction, name: str) -> None:
    p = esub.add_parser(name, help=f"generate for the {name} prompts (resumable), score with its evaluator, aggregate",
                        description="See lamo.evals.benchmarks for the prompt-file formats, the evaluators and the "
                                    "aggregation.")
    p.add_argument("prompts", help="the benchmark's prompt file (CSV / VBench JSON / JSONL / text)")
    p.add_argument("--model", required=True, help="diffusers pipeline folder or hub id (CogVideoX or Wan)")
    p.add_argument("--prior", default=None, help="motion prior folder (MPG on when given)")
    p.add_argument("--motion-guidance-scale", type=float, default=None, help="λ (default: 1 with --prior, else 0)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="random seeds, one video per prompt and seed "
                                                                    "(default: 0)")
    p.add_argument("--steps", type=int, default=50, help="denoising steps (default: 50)")
    p.add_argument("--out", required=True, help="output folder: videos, videos.csv, scores and report.json")
    p.add_argument("--scores", default=None, help="per-video scores the evaluator wrote (CSV/JSONL: videopath, sa, pc)")
    p.add_argument("--evaluator-cmd", default=None,
                   help="command that runs the evaluator: {input} = OUT/videos.csv, {output} = the scores file it writes")
    p.add_argument("--sample-args", default="", help="extra `lamo sample` arguments, e.g. \"--height 480 --width 720\"")
    p.set_defaults(func=_benchmark, benchmark=name)


def _benchmark(args: argparse.Namespace) -> int:
    """Generate (reusing only videos made exactly as asked now), score with the benchmark's evaluator, aggregate.

    The report is written whatever the evaluator does: when it fails, ``report.json`` keeps the motion metrics
    and records the evaluator's error and exit status, every video is kept, and the exit status is 1.
    """
    import csv
    import shlex

    from ..cli import build_parser
    from ..evals.benchmarks import (BENCHMARKS, EvaluatorFailed, EvaluatorMissing, aggregate, read_benchmark_prompts,
                                    read_scores, run_evaluator)
    from ..motion_metrics import MOTION_METRICS, motion_metrics
    from ..physics.metrics import aggregate as aggregate_metrics

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; it must be a folder (videos, videos.csv, scores, report.json)")
    if args.scores and not Path(args.scores).is_file():
        raise MissingInputError(f"--scores {args.scores}: no such file")
    if args.scores and args.evaluator_cmd:
        raise InputError("pass --scores (scores already computed) or --evaluator-cmd (run the evaluator), not both")
    prompts = read_benchmark_prompts(args.prompts)
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / "prompts.txt", "\n".join(p.replace("\n", " ") for p in prompts) + "\n")
    lam = args.motion_guidance_scale if args.motion_guidance_scale is not None else (1.0 if args.prior else 0.0)
    argv = ["sample", "--model", args.model, "--prompts-file", str(out / "prompts.txt"), "--seeds",
            *map(str, args.seeds), "--steps", str(args.steps), "--motion-guidance-scale", str(lam),
            "--out", str(out / "videos"), "--skip-existing", *shlex.split(args.sample_args)]
    if args.prior:
        argv += ["--prior", args.prior]
    sample_args = build_parser().parse_args(argv)
    sample_args.func(sample_args)  # resumable: only videos made exactly as asked now are kept
    if not Shards.from_env().main:  # under torchrun / accelerate launch: rank 0 merged run.json and scores
        return 0

    run = json.loads((out / "videos" / "run.json").read_text())
    with open(out / ".videos.csv.tmp", "w", newline="") as f:  # the evaluators' input: videopath, caption
        w = csv.writer(f)
        w.writerow(["videopath", "caption"])
        for v in run["videos"]:
            w.writerow([str((out / "videos" / v["file"]).resolve()), v["prompt"]])
    os.replace(out / ".videos.csv.tmp", out / "videos.csv")

    report: dict = {"benchmark": args.benchmark, "model": args.model, "prior": args.prior, "lambda": lam,
                    "n_videos": len(run["videos"]), "paper": BENCHMARKS[args.benchmark]["paper"]}
    # this run's videos only (run.json), never other files lying in the folder
    items = [(v["file"], out / "videos" / v["file"], {}) for v in run["videos"]]
    entries = score_videos(items, motion_metrics, "motion")
    report["motion"] = aggregate_metrics([e["metrics"] for e in entries if "metrics" in e], MOTION_METRICS)
    status, failure = 0, None
    try:
        scores_path = Path(args.scores) if args.scores else run_evaluator(
            args.benchmark, args.evaluator_cmd, out / "videos.csv", out / "scores.csv")
        if args.benchmark == "vbench":
            try:
                report["vbench"] = json.loads(scores_path.read_text())
            except json.JSONDecodeError as e:
                raise InputError(f"{scores_path}: VBench's results must be JSON ({e})") from e
        else:
            report["scores"] = aggregate(args.benchmark, read_scores(scores_path))
    except EvaluatorMissing as e:
        report["evaluator_missing"] = str(e)
        print(f"\n{e}\nThe weight-free motion metrics are in the report.")
    except EvaluatorFailed as e:
        report["evaluator_error"] = e.to_dict()
        status = 1
        failure = f"{e}; its error is recorded in {out / 'report.json'} (evaluator_error), the videos are kept"
    except UserError as e:  # scores that cannot be read or aggregated
        report["evaluator_error"] = {"error": str(e), "exit_status": None}
        status, failure = 1, f"the scores could not be used: {e}"
    _write_text(out / "report.json", json.dumps(_jsonable(report), indent=1) + "\n")
    print()
    print(format_table(report["motion"], MOTION_METRICS, sum("metrics" in e for e in entries)))
    if "scores" in report:
        s = report["scores"]
        print(f"\n{args.benchmark}: SA {s['SA']:.1f}  PC {s['PC']:.1f}  joint {s['joint']:.1f}  (n = {s['n']})")
        for model, (sa, pc) in report["paper"].items():
            print(f"  paper, {model}: SA {sa}" + (f"  PC {pc}" if pc is not None else ""))
    print(f"\nreport: {out / 'report.json'}")
    if failure:
        tail = report["evaluator_error"].get("stderr_tail", "").strip().splitlines()
        if tail:
            print("the evaluator's stderr ends with:\n  " + "\n  ".join(tail[-10:]), file=sys.stderr)
        print(f"lamo eval {args.benchmark}: error: {failure}", file=sys.stderr)
    return status


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # several processes may write the same file
    tmp.write_text(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Shared machinery
# ---------------------------------------------------------------------------------------------


def find_videos(source: str | os.PathLike) -> list[tuple[str, Path, dict]]:
    """``(name, path, metadata record)`` of each video to score (see the module docstring)."""
    from ..physics.dataset import read_metadata

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


def score_videos(items: list[tuple[str, Path, dict]], score: Callable, desc: str) -> list[dict]:
    """Read and score each video; a failure becomes ``{"video", "error"}`` instead of stopping the run.

    Errors that say the clip is bad (unreadable, cut short, wrong size, no object: a ``UserError`` such as
    ``VideoReadError``, or a ``ValueError`` such as ``ClipError`` raised by LaMo) are expected; anything else —
    a bug — is also kept per clip but flagged ``"unexpected": true`` so that the command exits non-zero.
    """
    from tqdm.auto import tqdm

    from ..cli import is_user_error
    from ..video_io import read_video

    entries = []
    for name, path, record in tqdm(items, desc=desc, unit="clip"):
        entry: dict = {"video": name}
        for key in ("caption", "scenario", "seed"):
            if key in record:
                entry[key] = record[key]
        try:
            entry["metrics"] = score(read_video(path)).to_dict()
        except Exception as e:  # noqa: BLE001 — one bad clip must not lose the others' results
            if is_user_error(e):
                entry["error"] = str(e)
            else:
                entry["error"], entry["unexpected"] = f"{type(e).__name__}: {e}", True
        entries.append(entry)
    return entries


def _jsonable(x):
    """NaN / inf -> None, recursively (strict JSON)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"


def format_table(summary: dict[str, dict], info: Mapping[str, tuple[str, str, str]], n_scored: int) -> str:
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


def run_eval(args: argparse.Namespace, score: Callable, info: Mapping[str, tuple[str, str, str]], command: str,
             title: str, header: dict) -> int:
    """Find, score, summarise, print and write the report of one ``lamo eval`` sub-command."""
    from ..physics.metrics import aggregate

    if not Shards.from_env().main:  # started under a launcher: one process scores, the others have nothing to do
        return 0
    src = Path(args.dir)
    out = Path(args.out) if args.out else (src if src.is_dir() else src.parent) / args.report_name
    if out.is_dir():  # checked before scoring, not after
        raise InputError(f"--out {out} is a folder; give the path of the JSON report to write, "
                         f"e.g. {out / args.report_name}")
    if any(p.exists() and not p.is_dir() for p in out.parents):
        raise InputError(f"--out {out}: {next(p for p in out.parents if p.exists() and not p.is_dir())} is a file, "
                         "not a folder")
    items = find_videos(src)
    if not items:
        raise MissingInputError(f"{src}: no videos found ({', '.join(VIDEO_SUFFIXES)})")
    entries = score_videos(items, score, command.split()[-1])
    scored = [e["metrics"] for e in entries if "metrics" in e]
    failed = [e for e in entries if "error" in e]
    summary = aggregate(scored, info)
    report = {
        "command": command, "source": str(src), **header,
        "n_clips": len(entries), "n_scored": len(scored), "n_failed": len(failed),
        "summary": summary,
        "metrics": {k: {"unit": u, "better": b, "meaning": m} for k, (u, b, m) in info.items()},
        "clips": entries,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_text(out, json.dumps(_jsonable(report), indent=1) + "\n")

    print(f"{title}\n{len(entries)} clip(s): {len(scored)} scored, {len(failed)} failed\n")
    print(format_table(summary, info, len(scored)))
    if args.per_clip:
        print()
        for e in entries:
            vals = " ".join(f"{k}={_fmt(e['metrics'][k])}" for k in info if k in e.get("metrics", {}))
            print(f"  {e['video']}: {vals or 'error'}")
    if failed:
        print("\nclips that could not be scored:")
        for e in failed:
            print(f"  {e['video']}: {e['error']}")
    print(f"\nreport: {out}")
    unexpected = any(e.get("unexpected") for e in failed)
    return 1 if not scored or unexpected or (args.strict and failed) else 0
