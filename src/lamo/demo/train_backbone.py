"""Train the demo backbone (text encoder + CogVideoX transformer) from scratch on a video dataset.

The recipe is plain text-to-video diffusion training on the latent space of the preset's autoencoder —
:class:`~lamo.demo.autoencoder.ConvAutoencoder` trained first on the training clips (preset ``world``),
or :class:`~lamo.demo.autoencoder.PatchAutoencoder` fitted by PCA (preset ``demo``) — then frozen:
v-prediction with CogVideoX's scheduler, AdamW with warm-up and cosine decay, gradient clipping,
caption dropout (so classifier-free guidance works), and an EMA of the weights, which is what gets
saved. Checkpoints are atomic and pickle-free; ``resume=True`` continues from the newest one.
``export_steps`` also saves the EMA pipeline at chosen steps (backbones of graded quality).

Data: a dataset folder (``lamo data physics`` writes one), or ``world:PRESET:N[:SEED]`` — the same
clips simulated and rendered in memory by a process pool (no video files; the frames skip the H.264
round trip), which is how a GPU run gets 100 000 clips in a minute.

Reproduce the shipped checkpoint: ``lamo demo train-backbone --data DIR --out OUT`` (benchmarks/README.md, "Reproduce the shipped backbone …").
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..losses import ALL_DRIFT_MODES, drift_loss_terms
from ..video_io import VideoReadError, read_video
from ..configs import BackboneTrainConfig  # noqa: F401  (defined there, stdlib only: `lamo --help` stays light)
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .model import DEMO_PRESETS, build_demo_pipeline, caption_vocabulary

__all__ = ["BackboneTrainConfig", "train_backbone", "encode_clips", "export_checkpoint"]

log = logging.getLogger(__name__)


def _world_clip(job: tuple[str, int]) -> tuple[np.ndarray, str]:
    from ..physics.dataset import make_clip
    from ..physics.world import get_world_config

    clip = make_clip(get_world_config(job[0]), job[1])
    return clip.frames, clip.caption


def world_clips(spec: str, frames: int, size: int, workers: int = 0) -> tuple[np.ndarray, list[str]]:
    """Clips of ``world:PRESET:N[:SEED]``: clip ``i`` is the one ``lamo data physics --preset PRESET
    --seed SEED`` writes as clip ``i`` (SEED defaults to 1), rendered in memory by a process pool."""
    from ..errors import InputError
    from ..physics.dataset import clip_seed
    from ..physics.world import WORLD_PRESETS

    parts = spec.split(":")
    try:
        preset, n, seed = parts[1], int(parts[2]), int(parts[3]) if len(parts) > 3 else 1
    except (IndexError, ValueError):
        raise InputError(f"bad data spec {spec!r}: write world:PRESET:N or world:PRESET:N:SEED, "
                         f"e.g. world:tiny:100000:1") from None
    if preset not in WORLD_PRESETS or n < 1 or len(parts) > 4:
        raise InputError(f"bad data spec {spec!r}: the preset must be one of {list(WORLD_PRESETS)} and N ≥ 1")
    world = WORLD_PRESETS[preset]
    if world.frames < frames or world.size != size:
        raise InputError(f"world preset {preset!r} makes {world.frames} frames of {world.size}² px; "
                         f"this backbone needs {frames} frames of {size}² px")
    jobs = [(preset, clip_seed(seed, i)) for i in range(n)]
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as ex:
        out = list(tqdm(ex.map(_world_clip, jobs, chunksize=256), total=n, desc="simulating clips", unit="clip",
                        dynamic_ncols=True))
    return np.stack([f[:frames] for f, _ in out]), [c for _, c in out]


def load_dataset_clips(data: str | Path, frames: int, size: int, workers: int = 0) -> tuple[np.ndarray, list[str]]:
    """Read a ``metadata.jsonl`` dataset (``lamo data physics`` writes one) into memory.

    Returns ``(N, frames, size, size, 3)`` uint8 clips and their captions. Unreadable clips, or clips
    of another size or too few frames, are skipped with a log line and counted. ``world:PRESET:N[:SEED]``
    simulates the clips instead (:func:`world_clips`).
    """
    if str(data).startswith("world:"):
        return world_clips(str(data), frames, size, workers)
    from ..errors import MissingInputError
    from ..physics.dataset import read_metadata

    data = Path(data)
    meta = data / "metadata.jsonl"
    if not meta.is_file():
        raise MissingInputError(f"{meta} not found: make a dataset with `lamo data physics --out {data} -n 4000`")
    videos, captions, skipped = [], [], 0
    lines = read_metadata(data)
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


def _pixels(videos: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(n, T, H, W, 3)`` uint8 → ``(n, 3, T, H, W)`` float in ``[-1, 1]`` on ``device``."""
    v = torch.from_numpy(np.ascontiguousarray(videos)).to(device)
    return v.float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)


def encode_clips(vae, videos: np.ndarray, batch: int = 64) -> torch.Tensor:
    """``(N, T, H, W, 3)`` uint8 → latents ``(N, F, C, h, w)`` (LaMo's layout), on the VAE's device."""
    device = next(iter(vae.buffers())).device
    out = []
    for i in range(0, len(videos), batch):
        with torch.no_grad():
            z = vae.encode(_pixels(videos[i : i + batch], device)).latent_dist.sample()  # (n, C, F, h, w)
        out.append(z.permute(0, 2, 1, 3, 4))  # (n, C, F, h, w) -> (n, F, C, h, w)
    return torch.cat(out)


def train_conv_autoencoder(vae, videos: np.ndarray, cfg: "BackboneTrainConfig", device: torch.device,
                           log_path: Path | None = None) -> dict:
    """Train a :class:`~lamo.demo.autoencoder.ConvAutoencoder` on clips, then calibrate its latents.

    AdamW with warm-up and cosine decay over ``cfg.ae_steps`` batches of ``cfg.ae_batch_size`` clips;
    loss :meth:`ConvAutoencoder.loss` (object pixels up-weighted, noised latents decoded too).
    Returns the final loss and the reconstruction error on held-back clips.
    """
    from ..physics.world import BACKGROUND

    vae.to(device).train()
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    bg = torch.tensor(BACKGROUND, dtype=torch.float32, device=device) / 127.5 - 1
    held = videos[-64:]
    train = videos[:-64] if len(videos) > 128 else videos
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.ae_lr, weight_decay=0.0)
    warm = max(1, cfg.ae_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / max(1, cfg.ae_steps)))))
    hist = []
    for step in tqdm(range(cfg.ae_steps), desc="autoencoder", unit="step", dynamic_ncols=True):
        idx = torch.randint(0, len(train), (cfg.ae_batch_size,), generator=gen).numpy()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16" and device.type == "cuda"):
            loss = vae.loss(_pixels(train[idx], device), latent_noise=cfg.ae_latent_noise, background=bg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        hist.append(loss.item())
        if log_path is not None and ((step + 1) % 250 == 0 or step + 1 == cfg.ae_steps):
            with open(log_path, "a") as f:
                f.write(json.dumps({"step": step + 1, "loss": float(np.mean(hist[-250:]))}) + "\n")
    vae.eval().requires_grad_(False)
    vae.calibrate(_pixels(videos[:512], device))
    with torch.no_grad():
        x = _pixels(held, device)
        rec = vae.decode(vae.encode(x).latent_dist.sample()).sample
        mse = float(((rec - x) ** 2).mean())
        max_err = float((rec - x).abs().amax())
    return {"loss": float(np.mean(hist[-100:])) if hist else math.nan, "held_mse": mse, "held_max_abs_err": max_err}


def _lr_at(step: int, cfg: BackboneTrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _export_steps(text: str) -> set[int]:
    try:
        return {int(x) for x in str(text).replace(" ", "").split(",") if x}
    except ValueError:
        raise ValueError(f"export_steps must be comma-separated integers, got {text!r}") from None


def _save_pipeline(pipe, modules, ema, folder: Path, preset, cfg: BackboneTrainConfig, step: int, extra: dict) -> Path:
    """Save the EMA weights as a diffusers pipeline folder (the training weights are put back after)."""
    live = {k: v.detach().clone() for k, v in modules.state_dict().items()}
    modules.load_state_dict(ema.state_dict())
    pipe.save_pretrained(folder)
    modules.load_state_dict(live)
    (folder / "lamo_demo.json").write_text(json.dumps(
        {"preset": asdict(preset), "train": asdict(cfg), "step": step, **extra}, indent=2))
    return folder


def train_backbone(cfg: BackboneTrainConfig, resume: bool = True) -> Path:
    """Run (or resume) the demo backbone training; return the folder of the saved pipeline."""
    if cfg.drift_mode not in ALL_DRIFT_MODES:
        raise ValueError(f"unknown drift_mode {cfg.drift_mode!r}; choose from {ALL_DRIFT_MODES}")
    if cfg.drift_weighting not in ("per_sample", "batch_mean"):
        raise ValueError(f"unknown drift_weighting {cfg.drift_weighting!r}; choose per_sample or batch_mean")
    if cfg.precision not in ("fp32", "bf16"):
        raise ValueError(f"unknown precision {cfg.precision!r}; choose fp32 or bf16")
    if cfg.anchor_weight > 0 and not cfg.init_from:
        from ..errors import InputError

        raise InputError(f"--anchor-weight {cfg.anchor_weight:g} anchors a fine-tune to the model it starts from: "
                         "pass --init-from PIPELINE_FOLDER, or --anchor-weight 0")
    exports = _export_steps(cfg.export_steps)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = _device(cfg.device)
    preset = DEMO_PRESETS[cfg.preset]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    videos, captions = load_dataset_clips(cfg.data, frames=preset.frames, size=preset.size, workers=cfg.workers)
    log.info("loaded %d clips from %s", len(videos), cfg.data)

    torch.manual_seed(cfg.seed)
    if cfg.init_from:
        from diffusers import CogVideoXPipeline

        pipe = CogVideoXPipeline.from_pretrained(cfg.init_from)  # tokenizer, VAE and weights of a trained run
    else:
        words = caption_vocabulary(captions)
        (out / "vocabulary.json").write_text(json.dumps(words))  # lets export_checkpoint rebuild the tokenizer
        pipe = build_demo_pipeline(preset, words)
    pipe.to(device)
    step = 0
    ckpt = latest_checkpoint(out / "checkpoints") if resume else None
    ae_stats: dict = {}
    if ckpt is None and not cfg.init_from:
        if preset.autoencoder == "conv":
            ae_stats = train_conv_autoencoder(pipe.vae, videos, cfg, device, out / "autoencoder_loss.jsonl")
            log.info("autoencoder: %s", ae_stats)
        else:
            pipe.vae.fit(_pixels(videos[:2048]))  # fills the buffers on the device
    pipe.vae.requires_grad_(False)

    tok = pipe.tokenizer(list(captions) + [""], padding="max_length", max_length=preset.max_text_len,
                         truncation=True, return_tensors="pt").input_ids
    ids, null_ids = tok[:-1].to(device), tok[-1].to(device)  # (N, L), (L,)

    transformer, text_encoder, scheduler = pipe.transformer, pipe.text_encoder, pipe.scheduler
    text_encoder.requires_grad_(cfg.train_text_encoder)
    modules = torch.nn.ModuleDict({"transformer": transformer, "text_encoder": text_encoder})
    ema = copy.deepcopy(modules).requires_grad_(False)
    # The anchor's frozen reference v_0: the --init-from weights as loaded (before any checkpoint is restored, so a
    # resumed run anchors to the same start), no gradient, eval mode
    reference = copy.deepcopy(modules).requires_grad_(False).eval() if cfg.anchor_weight > 0 else None
    params = [p for p in modules.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    gen = torch.Generator(device).manual_seed(cfg.seed)
    if ckpt is not None:
        step, tensors, rng = load_checkpoint(ckpt, opt)
        modules.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        ema.load_state_dict({k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")})
        pipe.vae.load_state_dict({k[len("vae."):]: v for k, v in tensors.items() if k.startswith("vae.")})
        gen.set_state(rng)
        log.info("resumed from %s (step %d)", ckpt, step)
    latents = encode_clips(pipe.vae, videos)  # (N, F, C, h, w), on the device

    alphas = scheduler.alphas_cumprod.float().to(device)  # (1000,)
    modules.train()
    ema_params = [pe for pe, pm in zip(ema.parameters(), modules.parameters()) if pm.requires_grad]
    history, drift_history, denoise_history, anchor_history = [], [], [], []
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    end = min(cfg.stop_at, cfg.steps) if cfg.stop_at > 0 else cfg.steps
    bar = tqdm(total=end, initial=step, desc="backbone", unit="step", dynamic_ncols=True)
    t0 = time.time()
    while step < end:
        idx = torch.randint(0, len(latents), (cfg.batch_size,), generator=gen, device=device)
        x0 = latents[idx]  # (B, F, C, h, w)
        noise = torch.randn(x0.shape, generator=gen, device=device)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (cfg.batch_size,), generator=gen, device=device)
        drop = torch.rand(cfg.batch_size, generator=gen, device=device) < cfg.caption_dropout
        batch_ids = torch.where(drop[:, None], null_ids[None], ids[idx])  # (B, L)
        a = alphas[t].view(-1, 1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        v_target = a.sqrt() * noise - (1 - a).sqrt() * x0
        with autocast:
            emb = text_encoder(batch_ids)[0]  # (B, L, D)
            pred = transformer(hidden_states=x_t, encoder_hidden_states=emb, timestep=t, return_dict=False)[0]
        pred = pred.float()
        loss = denoise = torch.nn.functional.mse_loss(pred, v_target)
        drift = torch.zeros((), device=device)
        if cfg.drift_weight > 0:
            # L = L_denoise + λ_drift · w(t) · L_drift, x̂0 from the v-prediction, w(t) = ᾱ_t (docs/design.md §1.3)
            x0_hat = a.sqrt() * x_t - (1 - a).sqrt() * pred
            w = a.flatten() if cfg.drift_weighting == "per_sample" else a.flatten().mean().expand(cfg.batch_size)
            drift = drift_loss_terms(x0_hat, x0, tau=cfg.drift_tau, mode=cfg.drift_mode, weight=w).weighted.mean()
            loss = loss + cfg.drift_weight * drift
        anchor = torch.zeros((), device=device)
        if reference is not None:
            # L += β · mean((v_θ(x_t, t, c) − v_0(x_t, t, c))²): the same x_t, t and caption, v_0 frozen
            with torch.no_grad(), autocast:
                ref_emb = emb.detach() if not cfg.train_text_encoder else reference["text_encoder"](batch_ids)[0]
                ref = reference["transformer"](hidden_states=x_t, encoder_hidden_states=ref_emb, timestep=t,
                                               return_dict=False)[0]
            anchor = torch.nn.functional.mse_loss(pred, ref.float())
            loss = loss + cfg.anchor_weight * anchor
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + step) / (10 + step))
            torch._foreach_lerp_(ema_params, params, 1 - d)
        step += 1
        history.append(loss.detach())
        drift_history.append(drift.detach())
        denoise_history.append(denoise.detach())
        anchor_history.append(anchor.detach())
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{torch.stack(history[-100:]).mean().item():.4f}")
        if step in exports:
            _save_pipeline(pipe, modules, ema, out / f"pipeline-step-{step}", preset, cfg, step, {})
        if step % cfg.save_every == 0 or step == end:
            tensors = {f"model.{k}": v for k, v in modules.state_dict().items()}
            tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
            tensors.update({f"vae.{k}": v for k, v in pipe.vae.state_dict().items()})
            save_checkpoint(out / "checkpoints", step, tensors, opt, asdict(cfg), gen.get_state())
            k = cfg.save_every
            with open(out / "loss.jsonl", "a") as f:
                f.write(json.dumps({"step": step, "loss": torch.stack(history[-k:]).mean().item(),
                                    "drift": torch.stack(drift_history[-k:]).mean().item(),
                                    "denoise": torch.stack(denoise_history[-k:]).mean().item(),
                                    **({"anchor": torch.stack(anchor_history[-k:]).mean().item()}
                                       if reference is not None else {}),
                                    "elapsed_s": time.time() - t0}) + "\n")
            history, drift_history, denoise_history = history[-k:], drift_history[-k:], denoise_history[-k:]
            anchor_history = anchor_history[-k:]
    bar.close()

    # Ship the EMA weights as a standard diffusers pipeline folder.
    extra = {"autoencoder": ae_stats} if ae_stats else {}
    return _save_pipeline(pipe, modules, ema, out / "pipeline", preset, cfg, step, extra)


def export_checkpoint(run: str | Path, out: str | Path, checkpoint: str | Path | None = None) -> Path:
    """Save the EMA weights of a checkpoint (default: the newest) of a run as a pipeline folder.

    Lets a long run be inspected — or shipped — before it ends. The vocabulary comes from the run's
    ``vocabulary.json`` (or, for older runs, its dataset's ``metadata.jsonl``; no video is read).
    """
    run = Path(run)
    ckpt = Path(checkpoint) if checkpoint else latest_checkpoint(run / "checkpoints")
    if ckpt is None or not (ckpt / "config.json").is_file():
        raise FileNotFoundError(f"no complete checkpoint in {run / 'checkpoints'}")
    cfg = BackboneTrainConfig(**json.loads((ckpt / "config.json").read_text()))
    if cfg.init_from:
        from diffusers import CogVideoXPipeline

        pipe = CogVideoXPipeline.from_pretrained(cfg.init_from)
    elif (run / "vocabulary.json").is_file():
        pipe = build_demo_pipeline(cfg.preset, json.loads((run / "vocabulary.json").read_text()))
    else:
        from ..physics.dataset import read_metadata

        pipe = build_demo_pipeline(cfg.preset, caption_vocabulary(r["caption"] for r in read_metadata(cfg.data)))
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
