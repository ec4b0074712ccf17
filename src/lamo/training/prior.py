"""``lamo train prior``: train a :class:`~lamo.MotionPrior` on a latent cache under ``accelerate``.

One shape: parse → build → ``accelerator.prepare`` → loop → checkpoint. Data order is a pure function of
``(seed, epoch)`` — a seeded permutation per epoch, split across processes — so a run resumed from a
checkpoint continues exactly where it stopped (model, optimizer, RNG states via ``accelerator.save_state``
with safetensors; the step in ``trainer_state.json``). Checkpoints are written to a temporary folder and
renamed; ``config.yaml`` beside each records the run. DDP, FSDP or DeepSpeed come from the accelerate
config (``accelerate launch --config_file …``).

**Recipes** (``recipe:``): ``"lamo-release"`` is the authors' predictor training (docs/design.md §8):
preset ``"release"`` (their architecture; τ = 1 pairs; loss ``MSE + 0.3·(1 − cos)``; prompt dropout
0.1 per pair to the zero prompt; with p = 0.5 input noise of std ``0.3·√(1 − ᾱ_t)``, ``t`` uniform over
the backbone scheduler's training timesteps — the values of the release's training config, not its
function defaults 0.5 and 1.0), ``prompt_proj`` drawn from N(0, 0.02²) with a zero bias, lr 5e-4 with the
release's ``"cosine"`` (:func:`lr_factor` ``"release-cosine"``), AdamW with β = (0.9, 0.99), ε = 1e-8 and
weight decay 1e-4 (:data:`RELEASE_ADAMW`), 2000 steps of batch 1. A recipe
replaces only the values left at their defaults; ``config.yaml`` records the resolved values. ᾱ_t
comes from the scheduler of ``aug_model`` or, when empty, of the model the cache was made with.
Other MotionPrior config values are set with ``prior_options`` (``"tau=1,noise_aug=diffusion"``).
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..configs import PriorTrainConfig
from ..errors import InputError
from ..prior import parse_prior_options  # also this module's name for it (its interface before it moved)
from .checkpoints import atomic_folder, resume_step, save_checkpoint
from .runs import apply_recipe  # noqa: F401  (re-exported: part of this module's interface)

__all__ = ["PriorTrainConfig", "train_prior", "PriorLoss", "PRIOR_RECIPES", "LR_SCHEDULES", "apply_recipe",
           "lr_factor", "RELEASE_ADAMW", "RELEASE_WARMUP_STEPS", "adamw_options", "init_release_prior",
           "parse_prior_options", "scheduler_noise_stds", "build_prior"]

LR_SCHEDULES = ("constant", "cosine", "release-constant", "release-cosine")
#: the release's learning-rate warm-up (its training config's ``lr_warmup_steps``)
RELEASE_WARMUP_STEPS = 200
#: the release's AdamW (its launcher's ``--beta1 0.9 --beta2 0.99 --epsilon 1e-8 --weight_decay 1e-4``), for the
#: LoRA and the predictor alike
RELEASE_ADAMW: dict[str, Any] = dict(betas=(0.9, 0.99), eps=1e-8, weight_decay=1e-4)
# Named recipes: config values they set (only where the run left the default).
PRIOR_RECIPES: dict[str, dict[str, Any]] = {
    "lamo-release": dict(preset="release", lr=5e-4, lr_schedule="release-cosine", weight_decay=1e-4, steps=2000,
                         batch_size=1),
}


def adamw_options(cfg: Any) -> dict[str, Any]:
    """AdamW keyword arguments of a run: the release's β, ε and weight decay under ``recipe="lamo-release"``
    (a weight decay the run set itself is kept), else torch's defaults with the run's ``weight_decay`` if it has one."""
    wd = getattr(cfg, "weight_decay", None)
    if getattr(cfg, "recipe", "") == "lamo-release":
        return {**RELEASE_ADAMW, **({} if wd is None else {"weight_decay": wd})}
    return {} if wd is None else {"weight_decay": wd}


def init_release_prior(prior: Any) -> Any:
    """The release's initialisation of what LaMo's constructor leaves at torch's default: ``prompt_proj`` weight
    ~ N(0, 0.02²), bias 0 (``arch="release"`` only; anything else is returned untouched)."""
    if prior.config.arch == "release":
        with torch.no_grad():
            torch.nn.init.normal_(prior.prompt_proj.weight, std=0.02)
            torch.nn.init.zeros_(prior.prompt_proj.bias)
    return prior

log = logging.getLogger(__name__)


#: ``--log-with`` tracker → the package accelerate needs for it (any one of them)
TRACKER_PACKAGES: dict[str, tuple[str, ...]] = {"tensorboard": ("tensorboard", "tensorboardX")}


def require_tracker(log_with: str) -> None:
    """Refuse in one line a ``log_with`` tracker whose package is not installed (accelerate would only warn and log
    nothing), saying how to install it; ``"none"`` needs nothing. Losses always go to ``OUT/loss.jsonl`` too."""
    if log_with == "none":
        return
    from ..errors import require

    packages = TRACKER_PACKAGES.get(log_with, (log_with,))
    for package in packages[1:]:  # an alternative that is installed is enough
        try:
            __import__(package)
            return
        except ImportError:
            pass
    require(packages[0], f"--log-with {log_with}",
            "or pass --log-with none (the losses are written to OUT/loss.jsonl either way)")


def lr_factor(schedule: str, step: int, total: int) -> float:
    """Learning-rate multiplier at (0-based) ``step`` of ``total``.

    * ``"constant"``: 1; ``"cosine"``: ``½(1 + cos(π·step/total))`` (cosine to zero, as
      ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total)``);
    * ``"release-constant"``: the release's ``constant_with_warmup`` — ``step / 200`` for the first 200 steps
      (the very first update has lr 0), then 1;
    * ``"release-cosine"``: the release's predictor schedule — the same warm-up, then
      ``max(0, ½(1 + cos(2π·p)))`` with ``p = (step − 200) / (total − 200)``: its trainer asks for one full
      cosine cycle, so the rate falls to 0 halfway and climbs back to the full rate at the end.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))
    if schedule in ("release-constant", "release-cosine"):
        if step < RELEASE_WARMUP_STEPS:
            return float(step) / float(max(1, RELEASE_WARMUP_STEPS))
        if schedule == "release-constant":
            return 1.0
        progress = float(step - RELEASE_WARMUP_STEPS) / float(max(1, total - RELEASE_WARMUP_STEPS))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 2.0 * progress)))
    raise InputError(f"unknown lr_schedule {schedule!r}; choose from {LR_SCHEDULES}")


def scheduler_noise_stds(model: str) -> torch.Tensor:
    """``(T,)`` noise std ``√(1 − ᾱ_t)`` (σ_t for flow) at each training timestep of ``model``'s scheduler."""
    import diffusers
    from diffusers import DiffusionPipeline

    from ..adapters import get_adapter

    index = DiffusionPipeline.load_config(model)
    library, name = index["scheduler"]
    scheduler = getattr(diffusers, name).from_pretrained(model, subfolder="scheduler")
    return get_adapter(index).training_noise_stds(scheduler)


def build_prior(preset: str, options: str, latent_channels: int, text_dim: int, family: str,
                aug_model: str = "", cache_model: str = ""):
    """The prior a run trains, and — when it augments with ``noise_aug="diffusion"`` — its ``(T,)`` noise table."""
    from ..prior import MotionPrior

    prior = init_release_prior(MotionPrior.from_preset(preset, latent_channels=latent_channels,
                                                       text_embed_dim=text_dim, backbone=family,
                                                       **parse_prior_options(options)))
    levels = None
    if prior.config.noise_aug == "diffusion" and prior.config.noise_aug_prob > 0 and prior.config.noise_aug_std > 0:
        model = aug_model or cache_model
        if not model:
            raise InputError("noise_aug='diffusion' needs ᾱ_t of the backbone's scheduler: pass --aug-model (a model "
                             "folder or hub id), or use a cache whose manifest names its model")
        levels = scheduler_noise_stds(model)
    return prior, levels


class PriorLoss(torch.nn.Module):
    """``forward(latents, pooled) → mean training loss`` of a prior: what DDP/FSDP wrap, so gradients sync."""

    def __init__(self, prior, aug_noise_levels: torch.Tensor | None = None):
        super().__init__()
        self.prior = prior
        self.aug_noise_levels = aug_noise_levels  # (T,) for noise_aug="diffusion"; not a parameter or buffer

    def forward(self, latents: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        return self.prior.training_loss(latents, pooled, aug_noise_levels=self.aug_noise_levels).per_sample.mean()


def _batch(ds, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    items = [ds[i] for i in idx]
    return torch.stack([it["latents"] for it in items]).float(), torch.stack([it["pooled"] for it in items]).float()


def train_prior(cfg: PriorTrainConfig, overwrite: bool = False) -> Path:
    """Train (or resume) and save the prior to ``cfg.out/prior``; returns that folder.

    ``cfg`` is checked first and a folder holding another run is refused unless ``overwrite`` (which deletes that
    run) or ``cfg.resume_from_checkpoint``; one trainer at a time in a run folder (:func:`lamo.training.runs.training_run`).
    """
    from .runs import training_run

    with training_run(cfg, PRIOR_RECIPES, overwrite, "lamo train prior") as cfg:
        return _train_prior(cfg)


def _train_prior(cfg: PriorTrainConfig) -> Path:
    """:func:`train_prior` once the run has started: ``cfg`` checked, its recipe resolved, its folder prepared."""
    from .runs import all_finite, diverged

    import yaml
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from ..cache import CachedLatentDataset

    lr_factor(cfg.lr_schedule, 0, 1)  # an unknown schedule fails before anything is loaded
    require_tracker(cfg.log_with)
    out = Path(cfg.out)
    acc = Accelerator(mixed_precision=cfg.mixed_precision, log_with=None if cfg.log_with == "none" else cfg.log_with,
                      project_dir=str(out))
    set_seed(cfg.seed)
    ds = CachedLatentDataset(cfg.cache)
    m = ds.manifest
    from ..cache import check_text_len

    check_text_len(m, folder=cfg.cache)  # a cache made at another prompt length than `lamo sample` uses is refused
    g = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(ds), generator=g).tolist()
    n_val = max(1, int(round(cfg.val_fraction * len(ds)))) if len(ds) > 1 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    if len(train_idx) < cfg.batch_size * acc.num_processes:
        raise ValueError(f"{len(train_idx)} training rows cannot fill a batch of {cfg.batch_size} on "
                         f"{acc.num_processes} process(es); lower --batch-size or cache more videos")
    C, D = m["latent_shape"][1], m["text_dim"]
    prior, levels = build_prior(cfg.preset, cfg.prior_options, C, D, m["family"], cfg.aug_model,
                                m.get("config", {}).get("model", ""))
    opt = torch.optim.AdamW(prior.parameters(), lr=cfg.lr, **adamw_options(cfg))
    model, opt = acc.prepare(PriorLoss(prior, levels), opt)
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
    if acc.trackers == [] and cfg.log_with != "none":
        acc.init_trackers("logs", config={k: v for k, v in asdict(cfg).items() if v is not None})

    step = resume_step(acc, out, cfg.resume_from_checkpoint)

    per_step = cfg.batch_size * acc.num_processes
    steps_per_epoch = len(train_idx) // per_step

    def batch_indices(s: int) -> list[int]:
        """The rows this process trains on at step ``s`` — a pure function of (seed, epoch, step)."""
        epoch, k = divmod(s, steps_per_epoch)
        perm = torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(cfg.seed + 1 + epoch)).tolist()
        rows = perm[k * per_step : (k + 1) * per_step][acc.process_index :: acc.num_processes]
        return [train_idx[r] for r in rows]

    def validate() -> dict:
        if not val_idx:
            return {}
        p = acc.unwrap_model(model).prior
        p.eval()
        with torch.no_grad():
            z, c = _batch(ds, val_idx)
            o = p.training_loss(z.to(acc.device), c.to(acc.device))
        p.train()
        return {"val_loss": float(o.per_sample.mean()), "val_cosine": float(o.cosine.mean())}

    stop = cfg.steps if cfg.max_steps_this_run is None else min(cfg.steps, step + cfg.max_steps_this_run)
    model.train()
    bar = tqdm(total=cfg.steps, initial=step, desc="motion prior", unit="step", disable=not acc.is_main_process,
               dynamic_ncols=True)
    while step < stop:
        z, c = _batch(ds, batch_indices(step))
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(cfg.lr_schedule, step, cfg.steps)
        with acc.autocast():
            loss = model(z.to(acc.device), c.to(acc.device))
        if not all_finite(acc, [loss]):  # stop before the update: the last checkpoint stays the last good state
            bar.close()
            raise diverged("the loss", step + 1, cfg)
        acc.backward(loss)
        if cfg.grad_clip:
            acc.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        record = {"step": step, "loss": loss.item()}
        if cfg.log_with != "none":
            acc.log({"train/loss": loss.item()}, step=step)
        if step % cfg.save_every == 0 or step == stop:
            if not all_finite(acc, model.parameters()):  # a finite loss, then an update that overflowed
                bar.close()
                raise diverged("the weights", step, cfg)
            val = validate()
            save_checkpoint(acc, out, step, cfg, val)
            record.update(val)
            if cfg.log_with != "none" and acc.is_main_process:
                acc.log({f"val/{k[4:]}": v for k, v in val.items()}, step=step)
        if acc.is_main_process:  # one line per step, as the fine-tune writes; a resumed run first cuts it back
            with open(out / "loss.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
    bar.close()
    final = out / "prior"
    if step >= cfg.steps and acc.is_main_process:
        with atomic_folder(final) as tmp:  # an interrupted save leaves no half-written prior
            acc.unwrap_model(model).prior.save_pretrained(tmp)
        acc.print(f"saved the motion prior to {final} ({validate()})")
    acc.wait_for_everyone()
    acc.end_training()
    return final

