"""``lamo train prior|finetune`` — run under ``accelerate launch`` for several processes or GPUs.

The options are the fields of :class:`lamo.configs.PriorTrainConfig` / :class:`lamo.configs.FinetuneConfig` (or a
``--config`` YAML file of them); :func:`lamo.training.prior.train_prior` and
:func:`lamo.training.finetune.train_finetune` check them before anything is loaded (one line naming the option) and
refuse a run folder that already holds a run unless it is resumed (``--resume-from-checkpoint``) or replaced
(``--overwrite``) — see :mod:`lamo.training.runs`.
"""
from __future__ import annotations

import argparse

from ._args import (COUNT, LR, NON_NEGATIVE, NON_NEGATIVE_REAL, SEED, Number, add_config_command,
                    config_from_args)

#: the type (valid range) of PriorTrainConfig's numeric fields
_PRIOR_TYPES = dict(steps=COUNT, batch_size=COUNT, lr=LR, weight_decay=NON_NEGATIVE_REAL, grad_clip=NON_NEGATIVE_REAL,
                    seed=SEED, val_fraction=Number(float, 0, 1, high_open=True), save_every=COUNT,
                    max_steps_this_run=COUNT)
#: the type (valid range) of FinetuneConfig's numeric fields
_FINETUNE_TYPES = dict(steps=COUNT, batch_size=COUNT, lr=LR, lora_rank=NON_NEGATIVE, drift_weight=NON_NEGATIVE_REAL,
                       drift_tau=COUNT, grad_clip=NON_NEGATIVE_REAL, seed=SEED, save_every=COUNT,
                       max_steps_this_run=COUNT, validation_every=NON_NEGATIVE, validation_steps=COUNT,
                       lora_alpha=NON_NEGATIVE_REAL, prior_lr=LR,
                       anchor_weight=NON_NEGATIVE_REAL)


def register(sub: argparse._SubParsersAction) -> None:
    from ..configs import FinetuneConfig, PriorTrainConfig

    p = sub.add_parser("train", help="train a motion prior, or fine-tune a backbone with the drift loss")
    tsub = p.add_subparsers(dest="train_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    launch = ("Run under `accelerate launch [--num_processes N] -m lamo.cli train …` for DDP; FSDP / DeepSpeed "
              "through an accelerate config file.")
    t = add_config_command(tsub, "prior", PriorTrainConfig, config_file=True, types=_PRIOR_TYPES, description=launch,
                           help="train lamo.MotionPrior on a `lamo cache` folder")
    _add_overwrite(t)
    t.set_defaults(func=_train_prior)
    f = add_config_command(tsub, "finetune", FinetuneConfig, config_file=True, types=_FINETUNE_TYPES, description=launch,
                           help="fine-tune a backbone (LoRA or full) with the Motion Drift Loss")
    _add_overwrite(f)
    f.set_defaults(func=_train_finetune)


def _add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (its checkpoints, logs and saved model are deleted); "
                        "without it, or --resume-from-checkpoint, a run folder holding a run is refused")


def _train_prior(args: argparse.Namespace) -> int:
    from ..training.prior import PriorTrainConfig, train_prior

    cfg = config_from_args(PriorTrainConfig, args)
    train_prior(cfg, overwrite=args.overwrite)
    return 0


def _train_finetune(args: argparse.Namespace) -> int:
    from ..training.finetune import FinetuneConfig, train_finetune

    cfg = config_from_args(FinetuneConfig, args)
    train_finetune(cfg, overwrite=args.overwrite)
    return 0
