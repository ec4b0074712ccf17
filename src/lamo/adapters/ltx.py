"""LTX-Video adapter (0.9.x, 2B / 13B; text- and image-to-video): packed token latents, flow matching.

* **Latent layout**: ``LTXPipeline`` denoises a *token sequence*: the ``(B, C, F, H, W)`` latent video is
  patched (``patch_size_t × patch_size × patch_size``, 1 × 1 × 1 in the released models) and packed to
  ``(B, F·H·W, C)`` (``LTXPipeline._pack_latents``); ``scheduler.step`` sees the packed tensor. A packed
  tensor does not say its grid, so an adapter that unpacks one is bound to the call's latent grid
  (:meth:`LTXAdapter.for_grid`; the LaMo pipeline does it for each call). ``LTXImageToVideoPipeline``
  unpacks before its step and steps only the frames after the image's: there the step sees
  ``(B, C, F − 1, H, W)``, which needs no grid.
* **Prediction and noise levels**: flow velocity with ``FlowMatchEulerDiscreteScheduler`` (dynamic shift from
  the sequence length); the flow-matching families' own (:class:`~lamo.adapters.base.FlowMatchAdapter`).
* **Prompt**: T5-XXL, 128 tokens with an attention mask; the prior is conditioned on the embeddings
  mean-pooled over all tokens (what ``encode_prompt`` returns first — the same in the latent cache and in a
  guided call).
* **Training**: ``x_t = (1 − σ)·x0 + σ·ε`` packed, ``pred = transformer(x_t, σ·N, prompt, mask, grid, RoPE
  scale)``, unpacked, target ``ε − x0``. The RoPE scale is the pipeline's ``(temporal factor / frame rate,
  spatial factor, spatial factor)``; pass ``rope_interpolation_scale=`` for a VAE other than the released one
  (8× in time, 32× in space, 25 fps).
* **Latents**: ``(z − latents_mean) · scaling_factor / latents_std`` per channel (``LTXPipeline._normalize_latents``,
  the inverse of its decode).
"""
from __future__ import annotations

from typing import Any

import torch

from .base import FlowMatchAdapter, NoiseLevel

__all__ = ["LTXAdapter", "pack_latents", "unpack_latents"]

#: the released models' RoPE scale: (VAE temporal factor 8 / 25 fps, spatial factor 32, 32)
RELEASED_ROPE_SCALE = (8 / 25, 32, 32)


def pack_latents(latents: torch.Tensor, patch_size: int = 1, patch_size_t: int = 1) -> torch.Tensor:
    """``(B, C, F, H, W)`` → ``(B, F/p_t · H/p · W/p, C·p_t·p·p)``, as ``LTXPipeline._pack_latents``."""
    from diffusers import LTXPipeline

    return LTXPipeline._pack_latents(latents, patch_size, patch_size_t)


def unpack_latents(latents: torch.Tensor, grid: tuple[int, int, int], patch_size: int = 1,
                   patch_size_t: int = 1) -> torch.Tensor:
    """``(B, S, D)`` tokens of a ``grid = (F, H, W)`` latent video (in patches) → ``(B, C, F·p_t, H·p, W·p)``."""
    from diffusers import LTXPipeline

    return LTXPipeline._unpack_latents(latents, *grid, patch_size, patch_size_t)


class LTXAdapter(FlowMatchAdapter):
    """Adapter for ``LTXPipeline`` / ``LTXImageToVideoPipeline`` / ``LTXVideoTransformer3DModel`` (docs/design.md §2).

    Args:
        grid: ``(F, H, W)`` latent grid in patches of the packed tensors this adapter unpacks (``None``: it
            takes ``(B, C, F, H, W)`` tensors only).
        patch: ``(patch_size_t, patch_size)`` of the transformer.
    """

    family = "ltx"
    layout = "BCFHW"  # unpacked; packed (B, S, D) tensors need a grid
    class_prefixes = ("LTXPipeline", "LTXImageToVideoPipeline", "LTXVideoTransformer3DModel")
    default_max_sequence_length = 128
    rope_interpolation_scale = RELEASED_ROPE_SCALE

    def __init__(self, grid: tuple[int, int, int] | None = None, patch: tuple[int, int] = (1, 1)):
        self.grid = None if grid is None else tuple(int(n) for n in grid)
        self.patch = (int(patch[0]), int(patch[1]))

    def for_grid(self, grid: tuple[int, int, int], patch: tuple[int, int] = (1, 1)) -> "LTXAdapter":
        """An adapter that unpacks ``(B, S, D)`` tensors of this ``(F, H, W)`` grid (in patches)."""
        return type(self)(grid, patch)

    # ---------------------------------------------------------------- layout
    def to_bfchw(self, latents: torch.Tensor) -> torch.Tensor:
        """Packed ``(B, S, D)`` (needs the grid) or ``(B, C, F, H, W)`` → ``(B, F, C, H, W)``."""
        if latents.ndim == 3:
            if self.grid is None:
                raise ValueError("LTX latents are packed (B, S, D): use an adapter bound to the latent grid "
                                 "(LTXAdapter().for_grid((F, H, W))); LaMo's LTX pipelines bind it for each call")
            latents = unpack_latents(latents, self.grid, self.patch[1], self.patch[0])  # (B, C, F, H, W)
        return super().to_bfchw(latents)

    def from_bfchw(self, latents: torch.Tensor) -> torch.Tensor:
        """``(B, F, C, H, W)`` → the packed ``(B, S, D)`` when bound to a grid, else ``(B, C, F, H, W)``."""
        out = super().from_bfchw(latents)  # (B, C, F, H, W)
        return out if self.grid is None else pack_latents(out, self.patch[1], self.patch[0])

    # ---------------------------------------------------------------- dims
    def latent_channels(self, transformer: Any) -> int:
        """``C`` of the unpacked latent: the transformer's ``out_channels`` over its patch volume."""
        cfg = transformer.config
        return int(cfg.out_channels) // (int(cfg.patch_size) ** 2 * int(cfg.patch_size_t))

    def input_channels(self, transformer: Any) -> int:
        cfg = transformer.config
        return int(cfg.in_channels) // (int(cfg.patch_size) ** 2 * int(cfg.patch_size_t))

    def text_embed_dim(self, transformer: Any) -> int:
        return int(transformer.config.caption_channels)

    # ---------------------------------------------------------------- text / latents
    def pipeline_class(self) -> type:
        """``diffusers.LTXPipeline``: its ``encode_prompt`` gives ``(T5 embeddings, mask, negatives, their mask)``."""
        from diffusers import LTXPipeline

        return LTXPipeline

    def normalize_latents(self, vae: Any, z: torch.Tensor) -> torch.Tensor:
        """``(z − latents_mean) · scaling_factor / latents_std`` per channel (``LTXPipeline._normalize_latents``)."""
        C = z.shape[1]
        mean = vae.latents_mean.to(z.device, z.dtype).view(1, C, 1, 1, 1)
        std = vae.latents_std.to(z.device, z.dtype).view(1, C, 1, 1, 1)
        return (z - mean) * vae.config.scaling_factor / std

    # ---------------------------------------------------------------- training
    def denoise_for_training(
        self, transformer: Any, scheduler: Any, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
        level: NoiseLevel, prompt_embeds: torch.Tensor, prompt_attention_mask: torch.Tensor | None = None,
        rope_interpolation_scale: tuple[float, float, float] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flow matching on the packed tokens; inputs and outputs ``(B, F, C, H, W)``.
        ``prompt_attention_mask`` ``(B, L)`` defaults to every token."""
        cfg = transformer.config
        p, p_t = int(cfg.patch_size), int(cfg.patch_size_t)
        F, H, W = latents.shape[1], latents.shape[3], latents.shape[4]
        if F % p_t or H % p or W % p:
            raise ValueError(f"LTX training_forward: a latent grid of {F}×{H}×{W} does not split into "
                             f"{p_t}×{p}×{p} patches")
        grid = (F // p_t, H // p, W // p)
        bound = self.for_grid(grid, (p_t, p))
        if prompt_attention_mask is None:
            prompt_attention_mask = prompt_embeds.new_ones(prompt_embeds.shape[:2])
        noisy = self.flow_noisy(super().from_bfchw(latents), super().from_bfchw(noise), level)  # (B, C, F, H, W)
        pred = transformer(
            hidden_states=pack_latents(noisy, p, p_t).to(transformer.dtype),
            encoder_hidden_states=prompt_embeds.to(transformer.dtype),
            timestep=timesteps,
            encoder_attention_mask=prompt_attention_mask,
            num_frames=grid[0], height=grid[1], width=grid[2],
            rope_interpolation_scale=rope_interpolation_scale or self.rope_interpolation_scale,
            return_dict=False,
        )[0]  # (B, S, D)
        return super().to_bfchw(noisy), bound.to_bfchw(pred), noise - latents
