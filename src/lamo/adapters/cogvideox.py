"""CogVideoX adapter (2B / 5B / 1.5, text- and image-to-video): layout ``(B, F, C, H, W)``, DDPM-family noise.

* **Prediction**: ``scheduler.config.prediction_type`` — ``"v_prediction"`` for the released models.
* **Noise level**: ``ᾱ_t = scheduler.alphas_cumprod[t]``. CogVideoX's schedulers apply their SNR shift
  ``ᾱ ← ᾱ / (s + (1 − s)·ᾱ)`` (``snr_shift_scale``, 3.0 for 2B) and zero-terminal-SNR rescaling to
  that tensor at construction, so reading the scheduler's own tensor gives the ᾱ_t its ``step`` uses —
  for ``CogVideoXDDIMScheduler`` and ``CogVideoXDPMScheduler`` alike.
* **Training**: ``x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε`` (``scheduler.add_noise``), target
  ``v = √ᾱ_t·ε − √(1−ᾱ_t)·x0`` (``scheduler.get_velocity``) or ``ε``; 5B-style transformers get the
  3D rotary embeddings :func:`rotary_embeddings` computes exactly as ``CogVideoXPipeline`` does.
* **Prompt**: T5-XXL padded to 226 tokens, no mask — the padding tokens' embeddings are part of
  what the transformer sees, so all tokens are pooled.
* **Image-to-video** (``CogVideoXImageToVideoPipeline``): the transformer takes ``2·C`` channels — the
  noisy latents and the image latents concatenated along ``C`` — and predicts ``C``; the scheduler, the
  prior and guidance see only those ``C`` (:meth:`~lamo.adapters.base.BackboneAdapter.latent_channels`
  is ``out_channels``).
* **Latents**: ``vae.encode(video).latent_dist.sample() · scaling_factor``, then
  ``(B, C, F, H, W) -> (B, F, C, H, W)`` (the inverse of ``CogVideoXPipeline.decode_latents``).
"""
from __future__ import annotations

from typing import Any

import torch

from ..parametrization import check_prediction_type
from .base import BackboneAdapter, NoiseLevel, generator_device, on_device

__all__ = ["CogVideoXAdapter", "rotary_embeddings"]


def rotary_embeddings(
    transformer: Any, latent_frames: int, latent_height: int, latent_width: int, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """CogVideoX's 3D RoPE ``(cos, sin)`` for a latent grid, as ``CogVideoXPipeline`` computes it.

    Mirrors ``CogVideoXPipeline._prepare_rotary_positional_embeddings`` (which takes pixel sizes and
    divides by the VAE's spatial factor): the grid is ``latent size // patch_size`` and positions are
    cropped (1.0) or sliced (1.5, ``patch_size_t`` set) against the transformer's sample size.
    Each tensor is ``(F'·H'·W', attention_head_dim)`` with ``F'`` the (temporally patched) frames.
    """
    from diffusers.models.embeddings import get_3d_rotary_pos_embed
    from diffusers.pipelines.cogvideo.pipeline_cogvideox import get_resize_crop_region_for_grid

    cfg = transformer.config
    p, p_t = cfg.patch_size, cfg.patch_size_t
    grid_height, grid_width = latent_height // p, latent_width // p
    base_height, base_width = cfg.sample_height // p, cfg.sample_width // p
    if p_t is None:
        crops = get_resize_crop_region_for_grid((grid_height, grid_width), base_width, base_height)
        return get_3d_rotary_pos_embed(
            embed_dim=cfg.attention_head_dim, crops_coords=crops, grid_size=(grid_height, grid_width),
            temporal_size=latent_frames, device=device,
        )
    return get_3d_rotary_pos_embed(
        embed_dim=cfg.attention_head_dim, crops_coords=None, grid_size=(grid_height, grid_width),
        temporal_size=(latent_frames + p_t - 1) // p_t, grid_type="slice", max_size=(base_height, base_width),
        device=device,
    )


class CogVideoXAdapter(BackboneAdapter):
    """Adapter for ``CogVideoXPipeline`` / ``CogVideoXTransformer3DModel`` (docs/design.md §2)."""

    family = "cogvideox"
    layout = "BFCHW"
    class_prefixes = ("CogVideoX",)
    default_max_sequence_length = 226

    # ---------------------------------------------------------------- noise levels
    def prediction_type(self, scheduler: Any) -> str:
        pt = scheduler.config.get("prediction_type", "epsilon")
        if pt not in ("epsilon", "v_prediction"):
            raise ValueError(
                f"CogVideoX adapter: scheduler {type(scheduler).__name__} predicts {pt!r}; LaMo supports "
                "'v_prediction' (the released CogVideoX models) and 'epsilon'"
            )
        return check_prediction_type(pt)

    def alpha_bar(self, scheduler: Any, timesteps: torch.Tensor | int | float) -> torch.Tensor:
        """``ᾱ_t`` from the scheduler's own (SNR-shifted) ``alphas_cumprod``: fp32, shaped like ``timesteps``."""
        t = torch.as_tensor(timesteps)
        # look up on the timestep's device with index_select: no host sync (t[0-d tensor] would read it)
        table = on_device(scheduler.alphas_cumprod, t.device)  # (num_train_timesteps,)
        return table.index_select(0, t.reshape(-1).long()).reshape(t.shape).float()

    def noise_level(
        self,
        scheduler: Any,
        timestep: torch.Tensor | float,
        sample: torch.Tensor | None = None,
        step_index: int | None = None,
    ) -> NoiseLevel:
        """``ᾱ_t`` at ``timestep`` (scalar or ``(B,)``); CogVideoX's schedulers index by timestep, so
        ``step_index`` is not needed."""
        a = self.alpha_bar(scheduler, timestep)
        if sample is not None:
            a = a.to(sample.device)
        return NoiseLevel(self.prediction_type(scheduler), alpha_bar=a)

    def training_noise_stds(self, scheduler: Any) -> torch.Tensor:
        """``√(1 − ᾱ_t)`` for ``t = 0 … N−1`` from the scheduler's own (SNR-shifted) ``alphas_cumprod``."""
        return (1.0 - scheduler.alphas_cumprod.double()).clamp(0.0, 1.0).sqrt().float()

    # ---------------------------------------------------------------- dims
    def text_embed_dim(self, transformer: Any) -> int:
        return int(transformer.config.text_embed_dim)

    # ---------------------------------------------------------------- text
    def pipeline_class(self) -> type:
        """``diffusers.CogVideoXPipeline``: its ``encode_prompt`` gives the T5 embeddings, padding tokens included."""
        from diffusers import CogVideoXPipeline

        return CogVideoXPipeline

    # ---------------------------------------------------------------- latents
    def normalize_latents(self, vae: Any, z: torch.Tensor) -> torch.Tensor:
        """``z · scaling_factor`` (the inverse of ``CogVideoXPipeline.decode_latents``).

        CogVideoX's VAE maps ``1 + 4k`` frames to ``1 + k`` latent frames and compresses 8× in space.
        """
        return z * vae.config.scaling_factor

    # ---------------------------------------------------------------- training
    def training_noise(
        self, scheduler: Any, batch: int, timesteps: torch.Tensor | None, generator: torch.Generator | None,
        like: torch.Tensor,
    ) -> tuple[torch.Tensor, NoiseLevel]:
        """``t ~ U{0, …, N−1}`` unless given (as diffusers' CogVideoX fine-tuning scripts draw it); ``ᾱ_t``."""
        if timesteps is None:
            timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator,
                                      device=generator_device(generator))
        timesteps = torch.as_tensor(timesteps, device=like.device).long().expand(batch)  # (B,)
        return timesteps, self.noise_level(scheduler, timesteps, sample=like)  # ᾱ_t: (B,)

    def denoise_for_training(
        self, transformer: Any, scheduler: Any, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
        level: NoiseLevel, prompt_embeds: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """DDPM: ``x_t = scheduler.add_noise(x0, ε, t)``; ``pred = transformer(x_t, prompt, t [, RoPE])``; target
        ``v = scheduler.get_velocity(x0, ε, t)`` (or ``ε``). Shapes ``(B, F, C, H, W)``, the family's own layout."""
        F, H, W = latents.shape[1], latents.shape[3], latents.shape[4]
        cfg = transformer.config
        if cfg.patch_size_t is not None and F % cfg.patch_size_t:
            raise ValueError(
                f"this CogVideoX transformer patches {cfg.patch_size_t} latent frames together; got {F} latent "
                f"frames — use clips whose latent frame count is a multiple of {cfg.patch_size_t}"
            )
        noisy = scheduler.add_noise(latents, noise, timesteps)  # (B, F, C, H, W)
        rope = rotary_embeddings(transformer, F, H, W, latents.device) if cfg.use_rotary_positional_embeddings else None
        ofs = latents.new_full((1,), 2.0) if cfg.ofs_embed_dim else None  # CogVideoX 1.5's fixed ofs, as its pipeline
        pred = transformer(
            hidden_states=noisy.to(transformer.dtype),
            encoder_hidden_states=prompt_embeds.to(transformer.dtype),
            timestep=timesteps,
            ofs=ofs,
            image_rotary_emb=rope,
            return_dict=False,
        )[0]  # (B, F, C, H, W)
        if level.prediction_type == "v_prediction":
            return noisy, pred, scheduler.get_velocity(latents, noise, timesteps)  # √ᾱ·ε − √(1−ᾱ)·x0
        return noisy, pred, noise
