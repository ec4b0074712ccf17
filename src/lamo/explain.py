"""Where LaMo's readouts look (docs/design.md §1.7): drift and field heatmaps over a clip's frames.

For latents ``z`` ``(F, C, H, W)`` of one clip, with ``Δ_i = z_{i+τ} − z_i`` and macro drift
``μ_i = mean_{h,w} Δ_i``:

* **drift heatmap** ``D_i(h, w) = max(0, ⟨Δ_i(h, w), μ_i⟩) / max_{h,w}(…)`` — how much each location
  moves along the clip's macro drift (the quantity the Motion Drift Loss matches), in ``[0, 1]``;
* **field heatmap** ``M_i(h, w) = ‖f_φ(z_i, c)(h, w) − f_φ(z̄, c)(h, w)‖₂ / max_{h,w}(…)`` — the size of
  the motion the prior predicts at each location, minus what it predicts for the clip's static
  (time-averaged) latent ``z̄``, so a background the prior always "moves" a little cancels out.

Both are ``(F − τ, H, W)`` maps in latent resolution; :func:`render_overlay` upsamples them over the
decoded (or original) frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .motion import check_latents, lag_delta
from .prior import MotionPrior

__all__ = ["Heatmaps", "drift_heatmap", "field_heatmap", "render_overlay", "explain_video"]


@dataclass
class Heatmaps:
    """``(F − τ, H, W)`` maps in ``[0, 1]`` (latent resolution)."""

    drift: np.ndarray
    field: np.ndarray | None


def _normalise(x: torch.Tensor) -> torch.Tensor:
    peak = x.flatten(1).amax(1).clamp_min(1e-12)  # (P,)
    return x / peak[:, None, None]


def drift_heatmap(z: torch.Tensor, tau: int = 2) -> np.ndarray:
    """Drift heatmap of one clip's latents ``(F, C, H, W)`` → ``(F − τ, H, W)`` in ``[0, 1]``."""
    check_latents(z[None], tau, "latents")
    d = lag_delta(z[None].float(), tau)[0]  # (P, C, H, W)
    mu = d.mean(dim=(-2, -1))  # (P, C)
    align = (d * mu[:, :, None, None]).sum(1).clamp_min(0)  # (P, H, W)
    return _normalise(align).numpy()


@torch.no_grad()
def field_heatmap(prior: MotionPrior, z: torch.Tensor, cond: torch.Tensor | None, tau: int | None = None) -> np.ndarray:
    """Field heatmap of one clip's latents ``(F, C, H, W)`` with pooled condition ``(1, D)`` → ``(F − τ, H, W)``."""
    tau = prior.config.tau if tau is None else tau
    check_latents(z[None], tau, "latents", channels=prior.config.latent_channels)
    P = z.shape[0] - tau
    field = prior.predict_motion(z[None].float(), cond, tau)[0].float()  # (P, C, H, W)
    static = prior(z.float().mean(0, keepdim=True), cond).float()  # (1, C, H, W)
    return _normalise((field - static).norm(dim=1)).numpy()[:P]


def render_overlay(frames: np.ndarray, heat: np.ndarray, tau: int = 2, alpha: float = 0.6) -> np.ndarray:
    """Blend heatmaps over frames: ``(T, H, W, 3)`` uint8 and ``(P, h, w)`` → ``(P, H, W, 3)`` uint8.

    Latent pair ``i`` is drawn over the video frame at the same relative time as latent frame ``i``.
    """
    import cv2

    T, H, W, _ = frames.shape
    P = heat.shape[0]
    F = P + tau  # latent frames
    out = []
    for i in range(P):
        t = min(T - 1, int(round(i * T / F)))
        hm = cv2.resize(heat[i].astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        colour = cv2.applyColorMap((hm * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]  # BGR -> RGB
        a = alpha * hm[..., None]
        out.append((frames[t] * (1 - a) + colour * a).round().astype(np.uint8))
    return np.stack(out)


def explain_video(video, model: str, prior=None, prompt: str | None = None, out="explain", fps: float = 8.0):
    """Drift (and, with ``prior``, field) heatmaps of ``video`` in the latents of backbone ``model`` (a diffusers
    pipeline folder or Hub id): ``OUT/heatmaps.gif`` (the video beside each heatmap, at half ``fps``) and
    ``OUT/contact_sheet.png`` (one row per map). ``prior``: a prior folder or :class:`~lamo.prior.MotionPrior`,
    conditioned on ``prompt`` when the pipeline has a text encoder. Returns the two paths (what ``lamo explain`` runs).
    """
    import math
    from pathlib import Path

    from diffusers import DiffusionPipeline
    from PIL import Image

    from ._quiet import quiet_loading
    from .adapters import get_adapter
    from .errors import InputError
    from .pipelines import pipeline_class
    from .report import side_by_side
    from .video_io import read_video

    if not (math.isfinite(fps) and fps > 0):
        raise InputError(f"--fps must be > 0, got {fps}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder")
    frames = read_video(video)  # (T, H, W, 3)
    family = get_adapter(DiffusionPipeline.load_config(model)).family
    with quiet_loading():
        pipe = pipeline_class(family).from_pretrained(model)
    adapter = get_adapter(pipe)
    with torch.no_grad():
        z = adapter.encode_video(pipe.vae, frames, sample=False)[0]  # (F, C, h, w)
    if prior is not None and not isinstance(prior, MotionPrior):
        prior = MotionPrior.from_pretrained(prior)
    tau = prior.config.tau if prior is not None else 2  # both maps over the same (i, i + τ) pairs
    maps, labels = [drift_heatmap(z, tau)], ["drift"]
    if prior is not None:
        pipe.check_motion_prior(prior)
        cond = None
        if prompt and pipe.text_encoder is not None:
            cond = adapter.pool_prompt(adapter.encode_prompt(pipe, [prompt]))
        maps.append(field_heatmap(prior, z, cond, tau))
        labels.append("field")
    overlays = [render_overlay(frames, m, tau) for m in maps]
    P = overlays[0].shape[0]
    idx = [min(len(frames) - 1, int(round(i * len(frames) / (P + tau)))) for i in range(P)]
    gif = side_by_side(out / "heatmaps.gif", [frames[idx]] + overlays, ["video"] + labels, fps=fps / 2)
    sheet = np.concatenate([np.concatenate(list(o), axis=1) for o in [frames[idx]] + overlays], axis=0)
    scale = max(1, 256 // frames.shape[1])
    sheet_path = out / "contact_sheet.png"
    Image.fromarray(sheet).resize((sheet.shape[1] * scale, sheet.shape[0] * scale), Image.NEAREST).save(sheet_path)
    return gif, sheet_path
