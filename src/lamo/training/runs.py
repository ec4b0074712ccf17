"""A training run's checks and its folder: every option is checked before a trainer starts, so a bad number or a bad
``--config`` is one line naming the option (the YAML key is the same name); a run folder that already holds a run is
refused unless the run is resumed (``resume_from_checkpoint``: the run's ``loss.jsonl`` is cut back to the
checkpoint's step first, so each step is logged once) or replaced (``overwrite``).

:func:`~lamo.training.prior.train_prior` and :func:`~lamo.training.finetune.train_finetune` call both before they
load anything.
"""
from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..errors import InputError, MissingInputError

__all__ = ["check_train_config", "prepare_run_folder", "RUN_OUTPUTS", "LOGGERS"]

#: what a previous run leaves in its folder (trainers' outputs); ``overwrite`` removes these
RUN_OUTPUTS = ("checkpoints", "loss.jsonl", "prior", "transformer", "lora", "logs", "validation", "config.yaml")
#: ``log_with`` values: none (OUT/loss.jsonl only) or an accelerate tracker
LOGGERS = ("none", "tensorboard", "wandb", "aim", "trackio", "comet_ml", "mlflow", "clearml", "dvclive", "swanlab")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # owner/name on the Hugging Face Hub


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def check_train_config(cfg: Any) -> None:
    """Refuse numbers, choices and paths a trainer cannot use (a :class:`~lamo.configs.PriorTrainConfig` or
    :class:`~lamo.configs.FinetuneConfig`), naming the option."""
    def need(ok: bool, name: str, rule: str) -> None:
        if not ok:
            raise InputError(f"{_flag(name)} must be {rule}, got {getattr(cfg, name)!r}")

    def finite(x) -> bool:
        return isinstance(x, (int, float)) and math.isfinite(x)

    finetune = hasattr(cfg, "model")
    if finetune and not (cfg.model and cfg.cache):
        raise InputError("--model and --cache are required (the backbone, and a `lamo cache` folder with prompt "
                         "embeddings)")
    if not cfg.cache:
        raise InputError("--cache is required (a folder made by `lamo cache`)")
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
    need(cfg.log_with in LOGGERS, "log_with", f"one of {', '.join(LOGGERS)}")
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
    if finetune and not (os.path.isdir(cfg.model) or _HUB_ID.fullmatch(cfg.model)):
        raise MissingInputError(f"--model {cfg.model}: no such folder (nor a hub id owner/name)")


def prepare_run_folder(cfg: Any, overwrite: bool = False) -> None:
    """Refuse to start a new run over an old one (unless ``overwrite``: its outputs are deleted); on resume, cut
    ``loss.jsonl`` back to the checkpoint's step.

    Called on every process; only the main one (``RANK`` 0) deletes or rewrites files.
    """
    from .checkpoints import checkpoint_step, latest_checkpoint, trim_jsonl_log

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
    found = [name for name in RUN_OUTPUTS if (out / name).exists() and name != "config.yaml"]
    if found and not overwrite:
        raise InputError(f"--out {out} already holds a run ({', '.join(found)}): pass --resume-from-checkpoint latest "
                         "to continue it, --overwrite to replace it, or another --out")
    if found and main_process:
        for name in RUN_OUTPUTS:
            path = out / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
