"""``lamo eval …``: score videos; each sub-command prints a table and writes a JSON report (:mod:`lamo.evaluation`).

* ``lamo eval physics DIR`` — track the balls of the physics world and score gravity, ballistic fit,
  bounces, velocity jumps, object permanence, shape stability and fidelity (:mod:`lamo.physics.metrics`);
* ``lamo eval motion DIR`` — weight-free VBench-style dynamic degree, motion smoothness and temporal
  flickering on any video (:mod:`lamo.motion_metrics`);
* ``lamo eval videophy|videophy2|vbench PROMPTS`` — generate, score with the benchmark's evaluator, aggregate;
* ``lamo eval prior`` — is a motion prior worth sampling with? (:mod:`lamo.commands._eval_prior`).

``DIR`` is a dataset folder with ``metadata.jsonl`` (its ``"video"`` entries are scored, in order), a
folder searched recursively for videos, or one video file. A clip that cannot be scored (unreadable,
empty, wrong frame size, no object …) gets an entry with an ``"error"`` message and the other clips'
results are kept. Exit status: 0 when at least one clip was scored; 1 when none was, when an
unexpected error happened, or (with ``--strict``) when any clip failed.

Under ``torchrun`` / ``accelerate launch``, ``lamo eval videophy|videophy2|vbench`` shares the generation out over
the processes (see :mod:`lamo.commands.sample`); rank 0 writes ``videos.csv``, scores and reports once every
video is made, and the other processes exit. The folder scorers run on rank 0 alone.
"""
from __future__ import annotations

import argparse
import sys

from ._args import COUNT, NON_NEGATIVE_REAL, SEED, plain, world_preset

__all__ = ["register", "add_common_arguments"]


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


def _register_physics(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser("physics", help="physics metrics of clips of the ball world (tracker + fits)",
                        description=plain(__doc__.split("\n\n")[0]))
    add_common_arguments(p, "eval_physics.json")
    p.add_argument("--preset", type=world_preset, default=None,
                   help="world preset of the clips (default: DIR/world.json)")
    p.add_argument("--world", default=None, help="a world.json to use (overrides DIR/world.json and --preset)")
    p.set_defaults(func=_physics)


def _register_motion(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser("motion", help="VBench-style motion metrics (OpenCV flow) of any videos",
                        description=plain(__doc__.split("\n\n")[0]))
    add_common_arguments(p, "eval_motion.json")
    p.set_defaults(func=_motion)


def _is_main_process() -> bool:
    from ..sharding import Shards

    return Shards.from_env().main  # under a launcher one process scores, the others have nothing to do


def _check_report_out(out: str | None, command: str) -> None:
    """Refuse an ``--out`` file that exists and is not an earlier report of ``command`` (which is refreshed): a
    user's file is never overwritten."""
    import json
    import os

    from ..errors import InputError

    if out is None or not os.path.isfile(out):
        return
    try:
        with open(out, encoding="utf-8") as f:
            earlier = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError):
        earlier = None
    if not (isinstance(earlier, dict) and earlier.get("command") == command):
        raise InputError(f"--out {out} exists and is not a report of `{command}`: it is kept; pass another --out "
                         "(or move the file aside)")


def _physics(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate_physics

    if not _is_main_process():
        return 0
    _check_report_out(args.out, "lamo eval physics")
    result = evaluate_physics(args.dir, preset=args.preset, world=args.world, out=args.out)
    if result.note:
        print(f"note: {result.note}", file=sys.stderr)
    print(result.text(per_clip=args.per_clip))
    return result.exit_status(strict=args.strict)


def _motion(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate_motion

    if not _is_main_process():
        return 0
    _check_report_out(args.out, "lamo eval motion")
    result = evaluate_motion(args.dir, out=args.out)
    print(result.text(per_clip=args.per_clip))
    return result.exit_status(strict=args.strict)


def _register_benchmark(esub: argparse._SubParsersAction, name: str) -> None:
    p = esub.add_parser(name, help=f"generate for the {name} prompts (resumable), score with its evaluator, aggregate",
                        description="See lamo.evals.benchmarks for the prompt-file formats, the evaluators and the "
                                    "aggregation; lamo.evaluation.run_benchmark is the same run from Python.")
    p.add_argument("prompts", help="the benchmark's prompt file (CSV / VBench JSON / JSONL / text), or a suite: "
                                   "vbench2-physics (shipped), vbench or vbench2 (read from the installed package), "
                                   "each optionally :Dim,Dim")
    p.add_argument("--model", required=True, help="diffusers pipeline folder or hub id (CogVideoX or Wan)")
    p.add_argument("--prior", default=None, help="motion prior folder (MPG on when given)")
    p.add_argument("--motion-guidance-scale", type=NON_NEGATIVE_REAL, default=None, help="λ (default: 1 with --prior, else 0)")
    p.add_argument("--seeds", type=SEED, nargs="+", default=[0], help="random seeds, one video per prompt and seed "
                                                                    "(default: 0)")
    p.add_argument("--steps", type=COUNT, default=50, help="denoising steps (default: 50)")
    p.add_argument("--out", required=True, help="output folder: videos, videos.csv, scores and report.json")
    p.add_argument("--scores", default=None, help="per-video scores the evaluator wrote (CSV/JSONL: videopath, sa, pc)")
    p.add_argument("--evaluator-cmd", default=None,
                   help="command that runs the evaluator: {input} = OUT/videos.csv, {output} = the scores file it writes")
    p.add_argument("--sample-args", default="", help="extra `lamo sample` arguments, e.g. \"--height 480 --width 720\"")
    p.add_argument("--cpu-offload", choices=("none", "model", "sequential"), default="none",
                   help="as `lamo sample --cpu-offload`: weights on the CPU, each model (or layer) on the GPU while "
                        "it runs (default: none)")
    p.add_argument("--vae-slicing", action="store_true", help="as `lamo sample --vae-slicing` (default: off)")
    p.add_argument("--vae-tiling", action="store_true", help="as `lamo sample --vae-tiling` (default: off)")
    p.set_defaults(func=_benchmark, benchmark=name)


def _benchmark(args: argparse.Namespace) -> int:
    from ..evaluation import run_benchmark

    result = run_benchmark(args.benchmark, args.prompts, model=args.model, out=args.out, prior=args.prior,
                           motion_guidance_scale=args.motion_guidance_scale, seeds=args.seeds, steps=args.steps,
                           scores=args.scores, evaluator_cmd=args.evaluator_cmd, sample_args=args.sample_args,
                           cpu_offload=args.cpu_offload, vae_slicing=args.vae_slicing, vae_tiling=args.vae_tiling)
    if result is None:  # another process of a launcher: rank 0 reports
        return 0
    print(result.text())
    if result.failure:
        tail = result.evaluator_stderr_tail()
        if tail:
            print("the evaluator's stderr ends with:\n  " + "\n  ".join(tail), file=sys.stderr)
        print(f"lamo eval {args.benchmark}: error: {result.failure}", file=sys.stderr)
    return result.status
