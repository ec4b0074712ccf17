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
from dataclasses import MISSING, fields
from pathlib import Path

from ..errors import InputError, MissingInputError

_OPTIONAL_INTS = {"max_steps_this_run"}  # fields whose default is None but whose values are integers
#: what a previous run leaves in its folder (trainers' outputs); --overwrite removes these
_RUN_OUTPUTS = ("checkpoints", "loss.jsonl", "prior", "transformer", "lora", "logs", "validation", "config.yaml")
_LOGGERS = ("none", "tensorboard", "wandb", "aim", "trackio", "comet_ml", "mlflow", "clearml", "dvclive", "swanlab")


def _yes_no(text: str) -> bool:
    if text.lower() in ("yes", "true", "1"):
        return True
    if text.lower() in ("no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def _kind(cls: type, name: str, value) -> type:
    return _yes_no if isinstance(value, bool) else int if isinstance(value, int) or name in _OPTIONAL_INTS \
        else float if isinstance(value, float) else str


def _add_config_args(p: argparse.ArgumentParser, cls: type) -> None:
    """One option per config field; unset options stay ``None`` so a YAML ``--config`` can fill them."""
    p.add_argument("--config", default=None, help="YAML file of these options (command-line values override it)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (its checkpoints, logs and saved model are deleted); "
                        "without it, or --resume-from-checkpoint, a run folder holding a run is refused")
    d = cls()
    for f in fields(cls):
        value = getattr(d, f.name)
        p.add_argument(f"--{f.name.replace('_', '-')}", type=_kind(cls, f.name, value), default=None,
                       help=f"default: {value}" if value not in (None, "") else None)


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _read_yaml(path: str, cls: type) -> dict:
    """The options of a ``--config`` YAML file, each checked against the type of its field."""
    import yaml

    if not os.path.isfile(path):
        raise MissingInputError(f"--config {path}: no such file")
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise InputError(f"--config {path} is not valid YAML: {' '.join(str(e).split())}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"--config {path} must hold a mapping of option: value, got a {type(data).__name__}")
    defaults = {f.name: f.default for f in fields(cls)}
    unknown = sorted(str(k) for k in set(data) - set(defaults))
    if unknown:
        raise InputError(f"--config {path}: unknown keys {unknown}; known keys are {sorted(defaults)}")
    for key, value in data.items():
        want = _kind(cls, key, defaults[key])
        ok = (value is None and defaults[key] is None) or {
            _yes_no: isinstance(value, bool),
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, (int, float)) and not isinstance(value, bool),
            str: isinstance(value, str),
        }[want]
        if not ok:
            kind = {_yes_no: "yes/no", int: "an integer", float: "a number", str: "a string"}[want]
            raise InputError(f"--config {path}: {key} must be {kind}, got {value!r}")
    return data


def _config(cls: type, args: argparse.Namespace):
    """The config from ``--config`` YAML (if any) with command-line values on top; ``config.yaml`` of a run
    is such a file, so ``--config runs/x/config.yaml`` repeats a run."""
    values = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
    if args.config:
        values.update(_read_yaml(args.config, cls))
    values.update({f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name) is not None})
    for name, value in values.items():  # float fields given as YAML integers
        if isinstance(getattr(cls(), name), float) and isinstance(value, int):
            values[name] = float(value)
    return cls(**values)


def check_config(cfg) -> None:
    """Refuse numbers and choices a trainer cannot use, naming the flag (the YAML key is the same name)."""
    def need(ok: bool, name: str, rule: str) -> None:
        if not ok:
            raise InputError(f"{_flag(name)} must be {rule}, got {getattr(cfg, name)!r}")

    def finite(x) -> bool:
        return isinstance(x, (int, float)) and math.isfinite(x)

    for name in ("steps", "batch_size", "save_every", "validation_steps", "tau"):
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
        raise InputError("--cache is required (a folder made by `lamo cache`)")
    check_config(cfg)
    prepare_run_folder(cfg, args.overwrite)
    train_prior(cfg)
    return 0


def _train_finetune(args: argparse.Namespace) -> int:
    from ..training.finetune import FinetuneConfig, train_finetune

    cfg = _config(FinetuneConfig, args)
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
