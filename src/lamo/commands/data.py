"""``lamo data …``: make datasets. ``lamo data physics`` writes clips of the embedded physics world.

Add another dataset maker by writing a ``_register_<name>(dsub)`` function and listing it in
:func:`register`.
"""
from __future__ import annotations

import argparse

from ._args import COUNT, SEED, world_preset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="make datasets (physics-world clips with ground truth)")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    _register_physics(dsub)


def _register_physics(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser(
        "physics",
        help="write N clips of the physics world: videos/*.mp4, metadata.jsonl (captions, ground truth), world.json",
        description="Simulate and render clips of the embedded physics world (docs/design.md §3). Writes "
                    "OUT/videos/000000.mp4 …, OUT/metadata.jsonl (one JSON object per clip: video, caption, "
                    "scenario, seed, exact per-frame states) and OUT/world.json (the world's configuration).",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("-n", "--num-clips", type=COUNT, required=True, help="number of clips")
    p.add_argument("--preset", type=world_preset, default="tiny",
                   help="world preset: tiny (32×32 px, 16 frames), small (48 px, 24) or medium (64 px, 32) "
                        "(default: tiny)")
    p.add_argument("--seed", type=SEED, default=0, help="dataset seed; clip i uses seed·10⁶ + i (default: 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a non-empty OUT (the new dataset takes its place only once complete)")
    p.set_defaults(func=_physics)


def _physics(args: argparse.Namespace) -> int:
    from ..physics.dataset import write_dataset
    from ..physics.world import get_world_config

    cfg = get_world_config(args.preset)
    path = write_dataset(args.out, args.num_clips, cfg, seed=args.seed, preset_name=args.preset,
                         progress=True, overwrite=args.overwrite)
    print(f"wrote {args.num_clips} clips ({cfg.size}×{cfg.size} px, {cfg.frames} frames, preset {args.preset}) "
          f"to {path.parent}")
    return 0
