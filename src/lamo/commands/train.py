"""``lamo train prior|finetune`` — run under ``accelerate launch`` for several processes or GPUs.

Every option is checked here, before a trainer starts, so a bad number or a bad ``--config`` is one line
naming the flag or key. A run folder that already holds a run is refused unless the run is resumed
(``--resume-from-checkpoint``: the run's ``loss.jsonl`` is cut back to the checkpoint's step first, so each
step is logged once) or replaced (``--overwrite``).
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
from pathlib import Path

from ..errors import InputError, MissingInputError
from ._args import add_config_command, config_from_args, flag

#: what a previous run leaves in its folder (trainers' outputs); --overwrite removes these
_RUN_OUTPUTS = ("checkpoints", "loss.jsonl", "prior", "transformer", "lora", "logs", "validation", "config.yaml")
_LOGGERS = ("none", "tensorboard", "wandb", "aim", "trackio", "comet_ml", "mlflow", "clearml", "dvclive", "swanlab")


def check_config(cfg) -> None:
    """Refuse numbers and choices a trainer cannot use, naming the flag (the YAML key is the same name)."""
    def need(ok: bool, name: str, rule: str) -> None:
        if not ok:
            raise InputError(f"{flag(name)} must be {rule}, got {getattr(cfg, name)!r}")

    def finite(x) -> bool:
        return isinstance(x, (int, float)) and math.isfinite(x)

    for name in ("steps", "batch_size", "save_every", "validation_steps", "drift_tau"):
        if hasattr(cfg, name):
            need(getattr(cfg, name) >= 1, name, "≥ 1")
    for name in ("lora_rank", "validation_every", "seed"):
        if hasattr(cfg, name):
            need(getattr(cfg, name) >= 0, name, "≥ 0")
    if cfg.max_steps_this_run is not None:
        need(cfg.max_steps_this_run >= 1, "max_steps_this_run", "≥ 1 (or left out)")
    need(finite(cfg.lr) and cfg.lr > 0, "lr", "a finite number > 0")
    for name in ("weight_decay", "grad_clip", "drift_weight"):
        if hasattr(cfg, name):
            need(finite(getattr(cfg, name)) and getattr(cfg, name) >= 0, name, "a finite number ≥ 0")
    if hasattr(cfg, "val_fraction"):
        need(finite(cfg.val_fraction) and 0 <= cfg.val_fraction < 1, "val_fraction", "in [0, 1)")
    need(cfg.mixed_precision in ("no", "fp16", "bf16"), "mixed_precision", "one of no, fp16, bf16")
    need(cfg.log_with in _LOGGERS, "log_with", f"one of {', '.join(_LOGGERS)}")
    if hasattr(cfg, "drift_mode"):
        from ..losses import ALL_DRIFT_MODES

        need(cfg.drift_mode in ALL_DRIFT_MODES, "drift_mode", f"one of {', '.join(ALL_DRIFT_MODES)}")
    if hasattr(cfg, "preset"):
        from ..prior import PRIOR_PRESETS

        need(cfg.preset in PRIOR_PRESETS, "preset", f"one of {', '.join(sorted(PRIOR_PRESETS))}")
    if cfg.cache and not Path(cfg.cache, "manifest.json").is_file():
        raise MissingInputError(f"--cache {cfg.cache}: no manifest.json there (make the cache with `lamo cache`)")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder")


def prepare_run_folder(cfg, overwrite: bool) -> None:
    """Refuse to start a new run over an old one; on resume, cut ``loss.jsonl`` back to the checkpoint's step.

    Called on every process; only the main one (``RANK`` 0) deletes or rewrites files.
    """
    from ..training.checkpoints import checkpoint_step, latest_checkpoint, trim_jsonl_log

    out = Path(cfg.out)
    main_process = int(os.environ.get("RANK", "0")) == 0
    resume = cfg.resume_from_checkpoint
    if resume and overwrite:
        raise InputError("--resume-from-checkpoint continues the run in --out and --overwrite deletes it: pass one")
    if resume:
        if resume == "latest":
            ckpt = latest_checkpoint(out / "checkpoints")
        else:
            ckpt = Path(resume)
            if not (ckpt / "trainer_state.json").is_file():
                raise MissingInputError(f"--resume-from-checkpoint {ckpt}: not a complete checkpoint "
                                        "(no trainer_state.json there)")
        step = checkpoint_step(ckpt) if ckpt is not None else 0
        if main_process:
            trim_jsonl_log(out / "loss.jsonl", step)  # steps after the checkpoint are trained (and logged) again
        return
    found = [name for name in _RUN_OUTPUTS if (out / name).exists() and name != "config.yaml"]
    if found and not overwrite:
        raise InputError(f"--out {out} already holds a run ({', '.join(found)}): pass --resume-from-checkpoint latest "
                         "to continue it, --overwrite to replace it, or another --out")
    if found and main_process:
        for name in _RUN_OUTPUTS:
            path = out / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def register(sub: argparse._SubParsersAction) -> None:
    from ..configs import FinetuneConfig, PriorTrainConfig

    p = sub.add_parser("train", help="train a motion prior, or fine-tune a backbone with the drift loss")
    tsub = p.add_subparsers(dest="train_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    launch = ("Run under `accelerate launch [--num_processes N] -m lamo.cli train …` for DDP; FSDP / DeepSpeed "
              "through an accelerate config file.")
    t = add_config_command(tsub, "prior", PriorTrainConfig, config_file=True, description=launch,
                           help="train lamo.MotionPrior on a `lamo cache` folder")
    _add_overwrite(t)
    t.set_defaults(func=_train_prior)
    f = add_config_command(tsub, "finetune", FinetuneConfig, config_file=True, description=launch,
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
    if not cfg.cache:
        raise InputError("--cache is required (a folder made by `lamo cache`)")
    check_config(cfg)
    prepare_run_folder(cfg, args.overwrite)
    train_prior(cfg)
    return 0


def _train_finetune(args: argparse.Namespace) -> int:
    from ..training.finetune import FinetuneConfig, train_finetune

    cfg = config_from_args(FinetuneConfig, args)
    if not (cfg.model and cfg.cache):
        raise InputError("--model and --cache are required (the backbone, and a `lamo cache` folder with prompt "
                         "embeddings)")
    check_config(cfg)
    from .sample import _HUB_ID

    if not (os.path.isdir(cfg.model) or _HUB_ID.fullmatch(cfg.model)):
        raise MissingInputError(f"--model {cfg.model}: no such folder (nor a hub id owner/name)")
    prepare_run_folder(cfg, args.overwrite)
    train_finetune(cfg)
    return 0
