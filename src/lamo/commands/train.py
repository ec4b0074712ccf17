"""``lamo train prior``: train a motion prior on a latent cache (run it under ``accelerate launch`` for many processes)."""
from __future__ import annotations

import argparse
from dataclasses import fields


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.prior import PriorTrainConfig

    p = sub.add_parser("train", help="train a motion prior (on a latent cache)")
    tsub = p.add_subparsers(dest="train_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    t = tsub.add_parser("prior", help="train lamo.MotionPrior on a `lamo cache` folder",
                        description="Run under `accelerate launch [--num_processes N] -m lamo.cli train prior …` for "
                                    "DDP; FSDP / DeepSpeed via an accelerate config file.")
    t.add_argument("--config", default=None, help="YAML file of these options (command-line values override it)")
    d = PriorTrainConfig()
    for f in fields(PriorTrainConfig):
        value = getattr(d, f.name)
        kind = int if f.name in ("steps", "batch_size", "seed", "save_every", "max_steps_this_run") else \
            float if isinstance(value, float) else str
        t.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=None,
                       help=f"default: {value}" if value not in (None, "") else None)
    t.set_defaults(func=_train_prior)


def _train_prior(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..training.prior import PriorTrainConfig, train_prior

    overrides = {f.name: getattr(args, f.name) for f in fields(PriorTrainConfig) if getattr(args, f.name) is not None}
    cfg = PriorTrainConfig.from_yaml(args.config, **overrides) if args.config else \
        PriorTrainConfig(**{**asdict(PriorTrainConfig()), **overrides})
    if not cfg.cache:
        raise ValueError("--cache is required (a folder made by `lamo cache`)")
    train_prior(cfg)
    return 0
