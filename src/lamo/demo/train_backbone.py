"""Train the demo backbone (text encoder + CogVideoX transformer) from scratch on a video dataset.

The recipe is plain text-to-video diffusion training on the latent space of
:class:`~lamo.demo.autoencoder.PatchAutoencoder` (fitted by PCA on the training clips first):
v-prediction with CogVideoX's scheduler, AdamW with warm-up and cosine decay, gradient clipping,
caption dropout (so classifier-free guidance works), and an EMA of the weights, which is what gets
saved. Checkpoints are atomic and pickle-free; ``resume=True`` continues from the newest one.

Reproduce the shipped checkpoint: ``lamo demo train-backbone --data DIR --out OUT`` (see README).
"""
from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..losses import ALL_DRIFT_MODES, drift_loss_terms
from ..video_io import VideoReadError, read_video
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .model import DEMO_PRESETS, build_demo_pipeline, caption_vocabulary

__all__ = ["BackboneTrainConfig", "train_backbone", "encode_clips", "export_checkpoint"]

log = logging.getLogger(__name__)


@dataclass
class BackboneTrainConfig:
    """Hyper-parameters of the demo backbone run (recorded next to every checkpoint)."""

    data: str = ""
    out: str = "runs/demo-backbone"
    preset: str = "demo"
    steps: int = 15000
    batch_size: int = 16
    lr: float = 5e-4
    warmup: int = 300
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    caption_dropout: float = 0.1
    ema_decay: float = 0.999
    seed: int = 0
    save_every: int = 500
    threads: int = 0  # torch CPU threads (0: leave torch's default)
    init_from: str = ""  # a demo pipeline folder to fine-tune instead of starting from scratch
    drift_weight: float = 0.0  # λ_drift of the Motion Drift Loss (0: plain denoising loss)
    drift_tau: int = 2
    drift_mode: str = "normalized"  # lamo.losses.ALL_DRIFT_MODES: normalized (per pair, §1.3) | batch_normalized | …
    drift_weighting: str = "per_sample"  # per_sample: w(t) = ᾱ_t per sample | batch_mean: its batch mean (the release)
    train_text_encoder: bool = True  # False: only the transformer learns (fine-tunes keep the text space)


def load_dataset_clips(data: str | Path, frames: int, size: int) -> tuple[np.ndarray, list[str]]:
    """Read a ``metadata.jsonl`` dataset (``lamo data physics`` writes one) into memory.

    Returns ``(N, frames, size, size, 3)`` uint8 clips and their captions. Unreadable clips, or clips
    of another size or too few frames, are skipped with a log line and counted.
    """
    data = Path(data)
    meta = data / "metadata.jsonl"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} not found: make a dataset with `lamo data physics --out {data} -n 4000`")
    videos, captions, skipped = [], [], 0
    lines = [json.loads(line) for line in meta.read_text().splitlines() if line.strip()]
    for row in tqdm(lines, desc="reading clips", unit="clip", dynamic_ncols=True):
        try:
            v = read_video(data / row["video"], max_frames=frames)
        except VideoReadError as e:
            log.warning("skipping clip: %s", e)
            skipped += 1
            continue
        if v.shape[0] < frames or v.shape[1:3] != (size, size):
            log.warning("skipping %s: shape %s, expected at least %d frames of %dx%d", row["video"], v.shape, frames, size, size)
            skipped += 1
            continue
        videos.append(v[:frames])
        captions.append(row["caption"])
    if not videos:
        raise ValueError(f"no usable clips in {data} ({skipped} skipped)")
    if skipped:
        log.warning("skipped %d of %d clips", skipped, len(lines))
    return np.stack(videos), captions


def encode_clips(vae, videos: np.ndarray, batch: int = 64) -> torch.Tensor:
    """``(N, T, H, W, 3)`` uint8 → latents ``(N, F, C, h, w)`` (LaMo's layout)."""
    out = []
    for i in range(0, len(videos), batch):
        v = torch.from_numpy(videos[i : i + batch]).float().div(127.5).sub(1)  # (n, T, H, W, 3) in [-1, 1]
        v = v.permute(0, 4, 1, 2, 3)  # (n, T, H, W, 3) -> (n, 3, T, H, W)
        with torch.no_grad():
            z = vae.encode(v).latent_dist.sample()  # (n, C, F, h, w)
        out.append(z.permute(0, 2, 1, 3, 4))  # (n, C, F, h, w) -> (n, F, C, h, w)
    return torch.cat(out)


def _lr_at(step: int, cfg: BackboneTrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def train_backbone(cfg: BackboneTrainConfig, resume: bool = True) -> Path:
    """Run (or resume) the demo backbone training; return the folder of the saved pipeline."""
    if cfg.drift_mode not in ALL_DRIFT_MODES:
        raise ValueError(f"unknown drift_mode {cfg.drift_mode!r}; choose from {ALL_DRIFT_MODES}")
    if cfg.drift_weighting not in ("per_sample", "batch_mean"):
        raise ValueError(f"unknown drift_weighting {cfg.drift_weighting!r}; choose per_sample or batch_mean")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    preset = DEMO_PRESETS[cfg.preset]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    videos, captions = load_dataset_clips(cfg.data, frames=preset.frames, size=preset.size)
    log.info("loaded %d clips from %s", len(videos), cfg.data)

    torch.manual_seed(cfg.seed)
    if cfg.init_from:
        from diffusers import CogVideoXPipeline

        pipe = CogVideoXPipeline.from_pretrained(cfg.init_from)  # tokenizer, VAE and weights of a trained run
    else:
        pipe = build_demo_pipeline(preset, caption_vocabulary(captions))
        pipe.vae.fit(torch.from_numpy(videos[:2048]).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3))
    latents = encode_clips(pipe.vae, videos)  # (N, F, C, h, w)
    tok = pipe.tokenizer(list(captions) + [""], padding="max_length", max_length=preset.max_text_len,
                         truncation=True, return_tensors="pt").input_ids
    ids, null_ids = tok[:-1], tok[-1]  # (N, L), (L,)

    transformer, text_encoder, scheduler = pipe.transformer, pipe.text_encoder, pipe.scheduler
    text_encoder.requires_grad_(cfg.train_text_encoder)
    modules = torch.nn.ModuleDict({"transformer": transformer, "text_encoder": text_encoder})
    ema = copy.deepcopy(modules).requires_grad_(False)
    params = [p for p in modules.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(cfg.seed)
    step = 0
    ckpt = latest_checkpoint(out / "checkpoints") if resume else None
    if ckpt is not None:
        step, tensors, rng = load_checkpoint(ckpt, opt)
        modules.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        ema.load_state_dict({k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")})
        pipe.vae.load_state_dict({k[len("vae."):]: v for k, v in tensors.items() if k.startswith("vae.")})
        latents = encode_clips(pipe.vae, videos)
        gen.set_state(rng)
        log.info("resumed from %s (step %d)", ckpt, step)

    alphas = scheduler.alphas_cumprod.float()  # (1000,)
    modules.train()
    history, drift_history, denoise_history = [], [], []
    bar = tqdm(total=cfg.steps, initial=step, desc="backbone", unit="step", dynamic_ncols=True)
    t0 = time.time()
    while step < cfg.steps:
        idx = torch.randint(0, len(latents), (cfg.batch_size,), generator=gen)
        x0 = latents[idx]  # (B, F, C, h, w)
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (cfg.batch_size,), generator=gen)
        drop = torch.rand(cfg.batch_size, generator=gen) < cfg.caption_dropout
        batch_ids = torch.where(drop[:, None], null_ids[None], ids[idx])  # (B, L)
        a = alphas[t].view(-1, 1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        v_target = a.sqrt() * noise - (1 - a).sqrt() * x0
        emb = text_encoder(batch_ids)[0]  # (B, L, D)
        pred = transformer(hidden_states=x_t, encoder_hidden_states=emb, timestep=t, return_dict=False)[0]
        loss = denoise = torch.nn.functional.mse_loss(pred, v_target)
        drift = torch.zeros(())
        if cfg.drift_weight > 0:
            # L = L_denoise + λ_drift · w(t) · L_drift, x̂0 from the v-prediction, w(t) = ᾱ_t (DESIGN.md §1.3)
            x0_hat = a.sqrt() * x_t - (1 - a).sqrt() * pred
            w = a.flatten() if cfg.drift_weighting == "per_sample" else a.flatten().mean().expand(cfg.batch_size)
            drift = drift_loss_terms(x0_hat, x0, tau=cfg.drift_tau, mode=cfg.drift_mode, weight=w).weighted.mean()
            loss = loss + cfg.drift_weight * drift
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), modules.parameters()):
                if pm.requires_grad:
                    pe.lerp_(pm, 1 - d)
        step += 1
        history.append(loss.item())
        drift_history.append(drift.item())
        denoise_history.append(denoise.item())
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(history[-100:]):.4f}")
        if step % cfg.save_every == 0 or step == cfg.steps:
            tensors = {f"model.{k}": v for k, v in modules.state_dict().items()}
            tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
            tensors.update({f"vae.{k}": v for k, v in pipe.vae.state_dict().items()})
            save_checkpoint(out / "checkpoints", step, tensors, opt, asdict(cfg), gen.get_state())
            with open(out / "loss.jsonl", "a") as f:
                f.write(json.dumps({"step": step, "loss": float(np.mean(history[-cfg.save_every:])),
                                    "drift": float(np.mean(drift_history[-cfg.save_every:])),
                                    "denoise": float(np.mean(denoise_history[-cfg.save_every:])),
                                    "elapsed_s": time.time() - t0}) + "\n")
    bar.close()

    # Ship the EMA weights as a standard diffusers pipeline folder.
    modules.load_state_dict(ema.state_dict())
    final = out / "pipeline"
    pipe.save_pretrained(final)
    (final / "lamo_demo.json").write_text(json.dumps({"preset": asdict(preset), "train": asdict(cfg)}, indent=2))
    return final


def export_checkpoint(run: str | Path, out: str | Path, checkpoint: str | Path | None = None) -> Path:
    """Save the EMA weights of a checkpoint (default: the newest) of a run as a pipeline folder.

    Lets a long run be inspected — or shipped — before it ends. The vocabulary is rebuilt from the
    run's dataset captions (``metadata.jsonl`` only; no video is read).
    """
    run = Path(run)
    ckpt = Path(checkpoint) if checkpoint else latest_checkpoint(run / "checkpoints")
    if ckpt is None or not (ckpt / "config.json").is_file():
        raise FileNotFoundError(f"no complete checkpoint in {run / 'checkpoints'}")
    cfg = BackboneTrainConfig(**json.loads((ckpt / "config.json").read_text()))
    rows = [json.loads(x) for x in (Path(cfg.data) / "metadata.jsonl").read_text().splitlines() if x.strip()]
    if cfg.init_from:
        from diffusers import CogVideoXPipeline

        pipe = CogVideoXPipeline.from_pretrained(cfg.init_from)
    else:
        pipe = build_demo_pipeline(cfg.preset, caption_vocabulary(r["caption"] for r in rows))
    from safetensors.torch import load_file

    state = json.loads((ckpt / "trainer_state.json").read_text())
    tensors = load_file(ckpt / "model.safetensors")
    for alias, name in state.get("aliases", {}).items():
        tensors[alias] = tensors[name]
    modules = torch.nn.ModuleDict({"transformer": pipe.transformer, "text_encoder": pipe.text_encoder})
    modules.load_state_dict({k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")})
    pipe.vae.load_state_dict({k[len("vae."):]: v for k, v in tensors.items() if k.startswith("vae.")})
    out = Path(out)
    pipe.save_pretrained(out)
    (out / "lamo_demo.json").write_text(json.dumps(
        {"preset": asdict(DEMO_PRESETS[cfg.preset]), "train": asdict(cfg), "step": state["step"]}, indent=2))
    return out
