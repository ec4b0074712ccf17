"""``lamo train prior|finetune`` — run under ``accelerate launch`` for several processes or GPUs."""
from __future__ import annotations

import argparse
from dataclasses import MISSING, fields

_OPTIONAL_INTS = {"max_steps_this_run"}  # fields whose default is None but whose values are integers


def _yes_no(text: str) -> bool:
    if text.lower() in ("yes", "true", "1"):
        return True
    if text.lower() in ("no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def _add_config_args(p: argparse.ArgumentParser, cls: type) -> None:
    """One option per config field; unset options stay ``None`` so a YAML ``--config`` can fill them."""
    p.add_argument("--config", default=None, help="YAML file of these options (command-line values override it)")
    d = cls()
    for f in fields(cls):
        value = getattr(d, f.name)
        kind = _yes_no if isinstance(value, bool) else int if isinstance(value, int) or f.name in _OPTIONAL_INTS \
            else float if isinstance(value, float) else str
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=None,
                       help=f"default: {value}" if value not in (None, "") else None)


def _config(cls: type, args: argparse.Namespace):
    """The config from ``--config`` YAML (if any) with command-line values on top; ``config.yaml`` of a run
    is such a file, so ``--config runs/x/config.yaml`` repeats a run."""
    import yaml

    values = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
    if args.config:
        data = yaml.safe_load(open(args.config)) or {}
        unknown = set(data) - set(values)
        if unknown:
            raise ValueError(f"{args.config}: unknown keys {sorted(unknown)}")
        values.update(data)
    values.update({f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name) is not None})
    return cls(**values)


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.finetune import FinetuneConfig
    from ..training.prior import PriorTrainConfig

    p = sub.add_parser("train", help="train a motion prior, or fine-tune a backbone with the drift loss")
    tsub = p.add_subparsers(dest="train_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    launch = ("Run under `accelerate launch [--num_processes N] -m lamo.cli train …` for DDP; FSDP / DeepSpeed "
              "through an accelerate config file.")
    t = tsub.add_parser("prior", help="train lamo.MotionPrior on a `lamo cache` folder", description=launch)
    _add_config_args(t, PriorTrainConfig)
    t.set_defaults(func=_train_prior)
    f = tsub.add_parser("finetune", help="fine-tune a backbone (LoRA or full) with the Motion Drift Loss",
                        description=launch)
    _add_config_args(f, FinetuneConfig)
    f.set_defaults(func=_train_finetune)


def _train_prior(args: argparse.Namespace) -> int:
    from ..training.prior import PriorTrainConfig, train_prior

    cfg = _config(PriorTrainConfig, args)
    if not cfg.cache:
        raise ValueError("--cache is required (a folder made by `lamo cache`)")
    train_prior(cfg)
    return 0


def _train_finetune(args: argparse.Namespace) -> int:
    from ..training.finetune import FinetuneConfig, train_finetune

    cfg = _config(FinetuneConfig, args)
    if not (cfg.model and cfg.cache):
        raise ValueError("--model and --cache are required (the backbone, and a `lamo cache` folder with prompt embeddings)")
    train_finetune(cfg)
    return 0

