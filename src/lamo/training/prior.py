"""``lamo train prior``: train a :class:`~lamo.MotionPrior` on a latent cache under ``accelerate``.

One shape: parse → build → ``accelerator.prepare`` → loop → checkpoint. Data order is a pure function of
``(seed, epoch)`` — a seeded permutation per epoch, split across processes — so a run resumed from a
checkpoint continues exactly where it stopped (model, optimizer, RNG states via ``accelerator.save_state``
with safetensors; the step in ``trainer_state.json``). Checkpoints are written to a temporary folder and
renamed; ``config.yaml`` beside each records the run. DDP, FSDP or DeepSpeed come from the accelerate
config (``accelerate launch --config_file …``).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .checkpoints import resume_step, save_checkpoint

__all__ = ["PriorTrainConfig", "train_prior", "PriorLoss"]

log = logging.getLogger(__name__)


@dataclass
class PriorTrainConfig:
    """Hyper-parameters of a prior training run (YAML keys = these names)."""

    cache: str = ""
    out: str = "runs/prior"
    preset: str = "base"
    steps: int = 3000
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    mixed_precision: str = "no"  # no | fp16 | bf16
    val_fraction: float = 0.1
    save_every: int = 500
    log_with: str = "tensorboard"  # tensorboard | none
    resume_from_checkpoint: str | None = None  # None | "latest" | a checkpoint folder
    max_steps_this_run: int | None = None  # stop early (a checkpoint is written) — for tests and time limits


class PriorLoss(torch.nn.Module):
    """``forward(latents, pooled) → mean training loss`` of a prior: what DDP/FSDP wrap, so gradients sync."""

    def __init__(self, prior):
        super().__init__()
        self.prior = prior

    def forward(self, latents: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        return self.prior.training_loss(latents, pooled).per_sample.mean()


def _batch(ds, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    items = [ds[i] for i in idx]
    return torch.stack([it["latents"] for it in items]).float(), torch.stack([it["pooled"] for it in items]).float()


def train_prior(cfg: PriorTrainConfig) -> Path:
    """Train (or resume) and save the prior to ``cfg.out/prior``; returns that folder."""
    import yaml
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from ..cache import CachedLatentDataset
    from ..prior import MotionPrior

    out = Path(cfg.out)
    acc = Accelerator(mixed_precision=cfg.mixed_precision, log_with=None if cfg.log_with == "none" else cfg.log_with,
                      project_dir=str(out))
    set_seed(cfg.seed)
    ds = CachedLatentDataset(cfg.cache)
    m = ds.manifest
    g = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(ds), generator=g).tolist()
    n_val = max(1, int(round(cfg.val_fraction * len(ds)))) if len(ds) > 1 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    if len(train_idx) < cfg.batch_size * acc.num_processes:
        raise ValueError(f"{len(train_idx)} training rows cannot fill a batch of {cfg.batch_size} on "
                         f"{acc.num_processes} process(es); lower --batch-size or cache more videos")
    C, D = m["latent_shape"][1], m["text_dim"]
    prior = MotionPrior.from_preset(cfg.preset, latent_channels=C, text_embed_dim=D, backbone=m["family"])
    opt = torch.optim.AdamW(prior.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model, opt = acc.prepare(PriorLoss(prior), opt)
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
        with acc.autocast():
            loss = model(z.to(acc.device), c.to(acc.device))
        acc.backward(loss)
        if cfg.grad_clip:
            acc.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if cfg.log_with != "none":
            acc.log({"train/loss": loss.item()}, step=step)
        if step % cfg.save_every == 0 or step == stop:
            save_checkpoint(acc, out, step, cfg, validate())
            if cfg.log_with != "none" and acc.is_main_process:
                acc.log({f"val/{k[4:]}": v for k, v in validate().items()}, step=step)
    bar.close()
    final = out / "prior"
    if step >= cfg.steps and acc.is_main_process:
        acc.unwrap_model(model).prior.save_pretrained(final)
        acc.print(f"saved the motion prior to {final} ({validate()})")
    acc.wait_for_everyone()
    acc.end_training()
    return final

