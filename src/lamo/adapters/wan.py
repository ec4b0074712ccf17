"""Wan adapter (2.1 / 2.2, text- and image-to-video): layout ``(B, C, F, H, W)``, flow matching.

* **Prediction**: flow velocity ``v = ε − x0`` with ``x_t = (1 − σ)·x0 + σ·ε``, so ``x̂0 = x_t − σ_t·v``
  (``UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True)``, Wan's default,
  and ``FlowMatchEulerDiscreteScheduler``).
* **Noise level**: ``σ_t = scheduler.sigmas[step_index]`` — both schedulers index their (shifted)
  sigmas by step, not by timestep (UniPC's integer timesteps are truncated ``σ·1000``), and both
  compute ``x̂0`` from exactly that σ inside ``step``. The step index is the scheduler's own counter
  (``step_index``; before its first step, ``begin_index`` or the timestep's position, as the
  scheduler itself would initialise it).
* **Training**: ``σ = s·u / (1 + (s − 1)·u)``, ``u ~ U(0, 1)`` with the scheduler's shift ``s``
  (the sampler's own σ distribution), timestep ``σ·N``; target ``ε − x0``.
* **Prompt**: ``WanPipeline`` cuts the UMT5 output at each prompt's true length and zero-pads it
  (to 512 tokens), so only non-zero tokens are pooled.
* **Image-to-video** (``WanImageToVideoPipeline``): the transformer takes ``2·C + 4`` channels — the noisy
  latents, a 4-channel first-frame mask and the image latents — and predicts ``C``; the scheduler, the
  prior and guidance see only those ``C`` (:meth:`latent_channels` is ``out_channels``).
* **Wan 2.2**: A14B has two transformers (``transformer`` above the boundary timestep
  ``boundary_ratio · N``, ``transformer_2`` below); both must share ``C`` and the text width, and guidance
  corrects whichever one's output the scheduler receives. TI2V-5B has 48 latent channels (its own VAE)
  and ``expand_timesteps`` (one timestep per token): σ still comes from the scheduler's step, which
  takes the scalar timestep; in image-to-video mode the first latent frame is the image's clean latent,
  which the pipeline tells guidance (``motion_guidance_known_latents``).
* **Latents**: ``(z − latents_mean) / latents_std`` per channel (the inverse of what ``WanPipeline``
  does before decoding), then ``(B, C, F, H, W) -> (B, F, C, H, W)``.
"""
from __future__ import annotations

from typing import Any

import torch

from ..parametrization import check_prediction_type
from .base import FlowMatchAdapter, NoiseLevel

__all__ = ["WanAdapter"]


class WanAdapter(FlowMatchAdapter):
    """Adapter for ``WanPipeline`` / ``WanImageToVideoPipeline`` / ``WanTransformer3DModel`` (docs/design.md §2).

    Noise levels, the training σ law and ``x_t`` are the flow-matching families' (:class:`FlowMatchAdapter`);
    Wan adds UniPC's flow sigmas."""

    family = "wan"
    layout = "BCFHW"
    class_prefixes = ("Wan",)
    default_max_sequence_length = 512

    # ---------------------------------------------------------------- noise levels
    def prediction_type(self, scheduler: Any) -> str:
        pt = scheduler.config.get("prediction_type")
        if pt is None or "FlowMatch" in type(scheduler).__name__:
            return "flow"  # flow-matching schedulers have no prediction_type: they integrate a velocity
        if pt == "flow_prediction" and not scheduler.config.get("use_flow_sigmas", False):
            raise ValueError(
                f"{type(scheduler).__name__} is set to predict flow but without use_flow_sigmas=True; "
                "Wan's scheduler is UniPCMultistepScheduler(prediction_type='flow_prediction', use_flow_sigmas=True)"
            )
        if pt in ("epsilon", "v_prediction") and scheduler.config.get("use_flow_sigmas", False):
            raise ValueError(f"{type(scheduler).__name__}: {pt!r} prediction with flow sigmas is not supported")
        return check_prediction_type(pt)

    # ---------------------------------------------------------------- dims
    def text_embed_dim(self, transformer: Any) -> int:
        return int(transformer.config.text_dim)

    # ---------------------------------------------------------------- text
    def prompt_mask(self, prompt_embeds: torch.Tensor) -> torch.Tensor:
        """Tokens within each prompt's true length: ``WanPipeline`` zero-pads past it → ``(B, L)`` bool."""
        return prompt_embeds.abs().amax(dim=-1) > 0  # (B, L, D) -> (B, L)

    def pipeline_class(self) -> type:
        """``diffusers.WanPipeline``: its ``encode_prompt`` gives the UMT5 embeddings zero-padded past each prompt."""
        from diffusers import WanPipeline

        return WanPipeline

    # ---------------------------------------------------------------- latents
    def normalize_latents(self, vae: Any, z: torch.Tensor) -> torch.Tensor:
        """``(z − latents_mean) / latents_std`` per channel (the inverse of ``WanPipeline``'s decode).

        Wan's VAE maps ``1 + 4k`` frames to ``1 + k`` latent frames and compresses 8× in space.
        """
        C = z.shape[1]
        mean = torch.tensor(vae.config.latents_mean, device=z.device, dtype=z.dtype).view(1, C, 1, 1, 1)
        std = torch.tensor(vae.config.latents_std, device=z.device, dtype=z.dtype).view(1, C, 1, 1, 1)
        return (z - mean) / std

    # ---------------------------------------------------------------- training
    def denoise_for_training(
        self, transformer: Any, scheduler: Any, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
        level: NoiseLevel, prompt_embeds: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flow matching: ``x_t = (1 − σ)·x0 + σ·ε``; ``pred = transformer(x_t, σ·N, prompt)``; target ``ε − x0``.
        Inputs and outputs are ``(B, F, C, H, W)``; the transformer runs in its own ``(B, C, F, H, W)``."""
        noisy = self.flow_noisy(self.from_bfchw(latents), self.from_bfchw(noise), level)  # x_t: (B, C, F, H, W)
        pred = transformer(
            hidden_states=noisy.to(transformer.dtype),
            timestep=timesteps,
            encoder_hidden_states=prompt_embeds.to(transformer.dtype),
            return_dict=False,
        )[0]  # (B, C, F, H, W)
        # (B, C, F, H, W) -> (B, F, C, H, W); target ε − x0
        return self.to_bfchw(noisy), self.to_bfchw(pred), noise - latents
