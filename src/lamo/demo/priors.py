"""Motion priors for the effect benchmark: trained in memory on clips of the world encoded by the backbone's
own VAE and text encoder (videos and captions only, never the simulator's states), and identified by their
weights' hash."""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..adapters import get_adapter
from ..prior import MotionPrior
from .config import DemoConfig
from .variants import _prompts

__all__ = ["fit_prior", "encode_world_clips", "train_prior"]

log = logging.getLogger(__name__)


def fit_prior(prior: MotionPrior, latents: torch.Tensor, cond: torch.Tensor, steps: int, batch: int,
              lr: float, seed: int = 0, val_fraction: float = 0.1,
              aug_noise_levels: torch.Tensor | None = None) -> dict:
    """Train ``prior`` in memory on ``(N, F, C, H, W)`` latents with ``(N, D)`` pooled conditions.

    Adam with gradient clipping at 1 (docs/design.md §7: without it a run stalled). ``aug_noise_levels``: the
    backbone's √(1 − ᾱ_t) table, needed by a prior with ``noise_aug="diffusion"``. Returns the validation
    loss and cosine (to the true τ-lag change) before and after.
    """
    g = torch.Generator().manual_seed(seed)
    n_val = max(1, int(len(latents) * val_fraction))
    perm = torch.randperm(len(latents), generator=g)
    val, train = perm[:n_val], perm[n_val:]
    opt = torch.optim.AdamW(prior.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)

    def validate() -> tuple[float, float]:
        prior.eval()
        with torch.no_grad():
            out = prior.training_loss(latents[val], cond[val], aug_noise_levels=aug_noise_levels)
        prior.train()
        return float(out.per_sample.mean()), float(out.cosine.mean())

    before = validate()
    bar = tqdm(range(steps), desc="motion prior", unit="step", dynamic_ncols=True)
    for step in bar:
        idx = train[torch.randint(0, len(train), (batch,), generator=g)]
        loss = prior.training_loss(latents[idx], cond[idx], generator=g, aug_noise_levels=aug_noise_levels).per_sample.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(prior.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    after = validate()
    prior.eval()
    return {"val_loss_before": before[0], "val_cosine_before": before[1], "val_loss": after[0], "val_cosine": after[1]}


def encode_world_clips(pipe, preset: dict, world, n: int, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` clips of world seed ``seed`` → ``(N, F, C, h, w)`` latents and ``(N, D)`` pooled prompts, by the
    backbone's own VAE and text encoder (videos and captions only: what a motion prior learns from)."""
    adapter = get_adapter(pipe)
    clips = _prompts(world, seed=seed, n=n)
    with torch.no_grad():
        latents = torch.cat([adapter.encode_video(pipe.vae, np.stack([c.frames for c in clips[i:i + 64]]), sample=False)
                             for i in range(0, len(clips), 64)])  # (N, F, C, h, w)
        cond = adapter.pool_prompt(adapter.encode_prompt(pipe, [c.caption for c in clips],
                                                         max_sequence_length=preset["max_text_len"]))  # (N, D)
    return latents, cond


def train_prior(cfg: DemoConfig, latents: torch.Tensor, cond: torch.Tensor, folder: Path, options: dict,
                extra: dict | None = None, aug_noise_levels: torch.Tensor | None = None) -> tuple[MotionPrior, dict]:
    """A ``cfg.prior_preset`` prior with ``options`` on top, trained by :func:`fit_prior` with ``cfg``'s
    steps, batch, learning rate and seed, saved in ``folder`` with ``training_stats.json`` (``extra`` added
    to the stats) → ``(prior, stats)``."""
    torch.manual_seed(cfg.seed)
    prior = MotionPrior.from_preset(cfg.prior_preset, latent_channels=latents.shape[2], text_embed_dim=cond.shape[1],
                                    backbone="cogvideox-demo", **options)
    t = time.time()
    st = fit_prior(prior, latents, cond, cfg.prior_steps, cfg.prior_batch, cfg.prior_lr, cfg.seed,
                   aug_noise_levels=aug_noise_levels)
    st.update(**(extra or {}), preset=cfg.prior_preset, clips=len(latents), steps=cfg.prior_steps, batch=cfg.prior_batch,
              lr=cfg.prior_lr, seed=cfg.seed, seconds=time.time() - t, parameters_m=prior.num_parameters_m())
    prior.save_pretrained(folder)
    (Path(folder) / "training_stats.json").write_text(json.dumps(st, indent=2))
    return prior, st


def _train_priors(cfg: DemoConfig, pipe, preset: dict, world, outdir: Path) -> tuple[dict, dict]:
    """One prior per lag in ``cfg.prior_taus`` on ``cfg.prior_clips`` fresh clips → ``{label: prior}``,
    ``{label: stats}``; each saved under ``OUT/prior-tau{τ}`` with its stats."""
    latents, cond = encode_world_clips(pipe, preset, world, cfg.prior_clips)
    priors, stats = {}, {}
    for tau in cfg.prior_taus:
        prior, st = train_prior(cfg, latents, cond, outdir / f"prior-tau{tau}", {"tau": tau}, {"tau": tau})
        log.info("motion prior τ=%d: validation cosine %.3f (before training %.3f)", tau, st["val_cosine"],
                 st["val_cosine_before"])
        priors[f"τ={tau}"], stats[f"τ={tau}"] = prior, st
    return priors, stats


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _prior_hash(folder: str | Path) -> str:
    return _sha256(Path(folder) / "diffusion_pytorch_model.safetensors")
