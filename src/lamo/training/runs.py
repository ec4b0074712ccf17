"""A training run's checks and its folder: every option is checked before a trainer starts, so a bad number or a bad
``--config`` is one line naming the option (the YAML key is the same name); a run folder that already holds a run is
refused unless the run is resumed (``resume_from_checkpoint``: the run's ``loss.jsonl`` is cut back to the
checkpoint's step first, so each step is logged once) or replaced (``overwrite``). A resume continues the recipe its
checkpoint recorded in ``config.yaml``: another value of any field but the run controls (:data:`RUN_CONTROLS`) is
refused, naming the field and both values, unless ``resume_override`` (``--resume-override lr,seed``) names it; the
fields that shape the weights (:data:`ARCHITECTURE_FIELDS`) cannot be overridden, nor ``steps`` set below the
checkpoint's step.

:func:`training_run` is how :func:`~lamo.training.prior.train_prior` and :func:`~lamo.training.finetune.train_finetune`
start, before they load anything: it holds the run folder's lock (one trainer per folder, :data:`TRAIN_LOCK`), checks
the options, resolves the recipe and prepares the folder.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from ..errors import HUB_ID, InputError, MissingInputError

__all__ = ["training_run", "TRAIN_LOCK", "apply_recipe", "check_train_config", "prepare_run_folder", "check_resume_recipe",
           "RUN_OUTPUTS", "LOGGERS", "RUN_CONTROLS", "ARCHITECTURE_FIELDS", "TrainingDiverged", "all_finite", "diverged"]

#: what a previous run leaves in its folder (trainers' outputs); ``overwrite`` removes these
RUN_OUTPUTS = ("checkpoints", "loss.jsonl", "prior", "transformer", "lora", "logs", "validation", "config.yaml")
#: ``log_with`` values: none (OUT/loss.jsonl only) or an accelerate tracker
LOGGERS = ("none", "tensorboard", "wandb", "aim", "trackio", "comet_ml", "mlflow", "clearml", "dvclive", "swanlab")
#: fields that steer a run without changing what it trains: a resume may change them freely
RUN_CONTROLS = ("out", "resume_from_checkpoint", "resume_override", "max_steps_this_run", "log_with", "save_every",
                "validation_every", "validation_prompts", "validation_steps", "gradient_checkpointing")
#: fields that set the shape of the trained weights: a checkpoint can only be resumed with its own values
ARCHITECTURE_FIELDS = ("preset", "prior_preset", "prior_options", "lora_rank")
#: the lock file of a run folder while a trainer works in it (one name for both trainers: they refuse each other)
TRAIN_LOCK = ".lamo-train.lock"
_FLOAT32_MAX = 3.4028234663852886e38


@contextlib.contextmanager
def training_run(cfg: Any, recipes: dict[str, dict[str, Any]], overwrite: bool = False,
                 what: str = "lamo train") -> Iterator[Any]:
    """``with training_run(cfg, RECIPES, overwrite, "lamo train prior") as cfg:`` — a trainer's start, in order: hold
    ``OUT/.lamo-train.lock`` (:class:`lamo.locks.FolderLock`: a second trainer started on the same run folder is
    refused, naming the folder and the process that holds it; under a launcher only the main process, ``RANK`` 0,
    takes it), :func:`check_train_config`, :func:`apply_recipe` (yielded: a resume compares the resolved values),
    :func:`prepare_run_folder`. The lock is released when the block ends, however it ends; a folder this call
    created and left empty is removed."""
    from ..locks import FolderLock

    folder = Path(cfg.out)
    lock = created = None
    if int(os.environ.get("RANK", "0")) == 0 and not (folder.exists() and not folder.is_dir()):
        # other processes of one run share the folder; a file as OUT is refused by check_train_config
        created = not folder.exists()
        lock = FolderLock(folder, what, TRAIN_LOCK)
        lock.acquire()
    try:
        check_train_config(cfg)
        cfg = apply_recipe(cfg, recipes)
        prepare_run_folder(cfg, overwrite)
        yield cfg
    finally:
        if lock is not None:
            lock.release()
            if created and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()  # a run refused before it wrote anything leaves no empty folder


def apply_recipe(cfg: Any, recipes: dict[str, dict[str, Any]]) -> Any:
    """``cfg`` with its named recipe's values in every field still at its default."""
    if not cfg.recipe:
        return cfg
    if cfg.recipe not in recipes:
        raise InputError(f"unknown recipe {cfg.recipe!r}; choose from {sorted(recipes)}")
    defaults = {f.name: f.default for f in fields(cfg)}
    return replace(cfg, **{k: v for k, v in recipes[cfg.recipe].items() if getattr(cfg, k) == defaults[k]})


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
    for name in ("lr", "prior_lr"):  # the optimizer multiplies float32 weights by it: beyond 3.4e38 it overflows
        if hasattr(cfg, name):
            lr = getattr(cfg, name)
            need(finite(lr) and 0 < lr < _FLOAT32_MAX, name, "a finite number > 0 (below 3.4e38, float32's range)")
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
    if finetune and not (os.path.isdir(cfg.model) or HUB_ID.fullmatch(cfg.model)):
        raise MissingInputError(f"--model {cfg.model}: no such folder (nor a hub id owner/name)")
    _check_cache_holds_the_lag(cfg)


def _check_cache_holds_the_lag(cfg: Any) -> None:
    """Read the cache's manifest and shard headers (a garbled or truncated cache is one line) and refuse a lag τ
    its clips cannot hold (τ + 1 latent frames needed) — before any model is loaded or the run folder written."""
    from ..cache import check_shards, load_manifest

    manifest = load_manifest(cfg.cache)
    check_shards(cfg.cache, manifest)
    shape = manifest.get("latent_shape")
    frames = shape[0] if isinstance(shape, list) and shape and isinstance(shape[0], int) else None
    if frames is None:
        return
    lags = []
    if hasattr(cfg, "drift_tau"):
        lags.append(("--drift-tau", cfg.drift_tau))
    if hasattr(cfg, "preset"):  # the prior's τ: --prior-options tau=N, else its preset's, else MotionPrior's default
        import inspect

        from ..prior import PRIOR_PRESETS, MotionPrior, parse_prior_options  # a malformed one is refused here

        tau = parse_prior_options(cfg.prior_options).get("tau", PRIOR_PRESETS.get(cfg.preset, {}).get(
            "tau", inspect.signature(MotionPrior.__init__).parameters["tau"].default))
        if isinstance(tau, int):
            lags.append(("--prior-options tau", tau))
    for flag, tau in lags:
        if tau >= frames:
            raise InputError(f"{flag}={tau}: the latent cache {cfg.cache} holds clips of {frames} latent frames and a "
                             f"lag τ needs τ + 1; pass a lag ≤ {frames - 1}, or cache longer clips (lamo cache --frames)")


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
        if ckpt is not None:
            check_resume_recipe(cfg, ckpt, step)
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


def _same(name: str, recorded: Any, given: Any) -> bool:
    if name in ("cache", "model", "aug_model") and isinstance(recorded, str) and isinstance(given, str):
        return os.path.normpath(recorded) == os.path.normpath(given) if recorded and given else recorded == given
    return recorded == given


def check_resume_recipe(cfg: Any, ckpt: str | os.PathLike, step: int) -> None:
    """Refuse to resume checkpoint ``ckpt`` (written at ``step``) with another recipe than it recorded in its
    ``config.yaml``: every field but :data:`RUN_CONTROLS` must match, except those named in ``cfg.resume_override``
    (``"lr,seed"``); :data:`ARCHITECTURE_FIELDS` cannot be overridden, nor can ``steps`` go below ``step``.
    ``cfg`` holds the resolved values (its recipe applied). A checkpoint without ``config.yaml`` is not checked."""
    from dataclasses import fields

    import yaml

    ckpt = Path(ckpt)
    names = [f.name for f in fields(cfg)]
    if cfg.steps < step:
        raise InputError(f"--steps {cfg.steps} is below step {step} of the checkpoint {ckpt}, which has trained "
                         f"{step} steps already: pass --steps {step} or more, or resume from an earlier checkpoint")
    overrides = [x.strip() for x in (cfg.resume_override or "").split(",") if x.strip()]
    unknown = [x for x in overrides if x not in names]
    if unknown:
        raise InputError(f"--resume-override {cfg.resume_override}: no such field {', '.join(unknown)} "
                         f"(choose from {', '.join(n for n in names if n not in RUN_CONTROLS)})")
    if not (ckpt / "config.yaml").is_file():
        return
    try:
        recorded = yaml.safe_load((ckpt / "config.yaml").read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"{ckpt / 'config.yaml'} is not valid YAML ({str(e).splitlines()[0]}); resume from another "
                         "checkpoint") from None
    if not isinstance(recorded, dict):
        raise InputError(f"{ckpt / 'config.yaml'} does not hold a mapping of settings; resume from another checkpoint")
    differ = [(n, recorded[n], getattr(cfg, n)) for n in names
              if n in recorded and n not in RUN_CONTROLS and not _same(n, recorded[n], getattr(cfg, n))]
    fixed = [d for d in differ if d[0] in ARCHITECTURE_FIELDS]
    if fixed:
        said = "; ".join(f"{n} {r!r} in the checkpoint, {g!r} given" for n, r, g in fixed)
        raise InputError(f"--resume-from-checkpoint {ckpt}: {said} — this sets the shape of the weights, which "
                         "--resume-override cannot change: pass the checkpoint's value, or start a new run "
                         "(--overwrite or another --out)")
    differ = [d for d in differ if d[0] not in overrides]
    if differ:
        said = "; ".join(f"{n} {r!r} in the checkpoint, {g!r} given" for n, r, g in differ)
        raise InputError(f"--resume-from-checkpoint {ckpt}: the recipe differs from the checkpoint's: {said}. Pass "
                         "the checkpoint's values, or --resume-override "
                         f"{','.join(overrides + [n for n, _, _ in differ])} to continue with the new ones")


class TrainingDiverged(InputError):
    """The loss or the weights of a run became non-finite (NaN or ±inf): the run stopped before saving them; its
    last checkpoint (all finite) is kept. The CLI prints it in one line and exits with status 2."""


def all_finite(acc: Any, tensors: Any) -> bool:
    """Whether every tensor in ``tensors`` is finite on every process (all processes call it and get one answer);
    ``acc=None``: on this process only."""
    import torch

    ok = all(bool(torch.isfinite(t.detach()).all()) for t in tensors)
    if getattr(acc, "num_processes", 1) > 1:
        ok = bool(acc.gather(torch.tensor([0.0 if ok else 1.0], device=acc.device)).sum() == 0)
    return ok


def diverged(what: str, step: int, cfg: Any) -> TrainingDiverged:
    """The one-line error of a run whose ``what`` ("the loss", "the weights") is non-finite at ``step``."""
    from .checkpoints import latest_checkpoint

    lrs = f"--lr {cfg.lr:g}" + (f", --prior-lr {cfg.prior_lr:g}" if getattr(cfg, "prior_preset", "") else "")
    last = latest_checkpoint(Path(cfg.out) / "checkpoints")
    kept = (f"the last checkpoint, {last}, is kept (continue from it with a lower --lr: --resume-from-checkpoint "
            f"{last} --resume-override lr)" if last else "no checkpoint was written")
    return TrainingDiverged(f"training diverged: {what} became non-finite (NaN or inf) at step {step} with {lrs}; "
                            f"lower the learning rate (or --grad-clip) and train again; {kept}; nothing non-finite "
                            "was saved")
