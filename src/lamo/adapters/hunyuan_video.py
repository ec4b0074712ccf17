"""HunyuanVideo adapter (13B, text- and image-to-video): layout ``(B, C, F, H, W)``, flow matching.

* **Prediction and noise levels**: flow velocity with ``FlowMatchEulerDiscreteScheduler`` (shift 7 in the
  released scheduler config) — the flow-matching families' own (:class:`~lamo.adapters.base.FlowMatchAdapter`):
  ``σ_t = scheduler.sigmas[step_index]``, ``x̂0 = x_t − σ_t·v``. ``HunyuanVideoPipeline`` sets the
  scheduler's ``begin_index`` to 0 before its loop.
* **Prompt**: two text encoders. Llama (``text_encoder``) gives the token embeddings ``(B, L, 4096)`` the
  transformer attends to (256 tokens, with an attention mask); CLIP (``text_encoder_2``) gives a pooled
  ``(B, 768)`` vector that modulates every block beside the timestep. The prior is conditioned on the Llama
  embeddings, mean-pooled over all ``L`` tokens (what ``encode_prompt`` returns first, padding included —
  the same in the latent cache and in a guided call).
* **Guidance embedding**: the released model is guidance-distilled: ``guidance_scale`` is an input of the
  transformer (``guidance · 1000``), not a second CFG branch (``true_cfg_scale`` > 1 adds one).
* **Training**: ``x_t = (1 − σ)·x0 + σ·ε``, ``pred = transformer(x_t, σ·N, prompt, mask, pooled, guidance)``,
  target ``ε − x0``; pass ``pooled_prompt_embeds=`` (and ``prompt_attention_mask=``) to ``training_forward``
  (``lamo train finetune``, whose cache holds no pooled prompt, refuses HunyuanVideo).
* **Image-to-video** (``HunyuanVideoImageToVideoPipeline``): ``"latent_concat"`` transformers take ``2·C + 1``
  channels (noisy latents, image latents, a first-frame mask) and predict ``C``; ``"token_replace"`` ones take
  ``C`` and the pipeline steps the frames after the image's. Either way the scheduler sees ``C`` channels.
* **Latents**: ``vae.encode(video).latent_dist · scaling_factor`` (``HunyuanVideoPipeline`` divides by it
  before decoding); its VAE maps ``1 + 4k`` frames to ``1 + k`` latent frames and compresses 8× in space.
"""
from __future__ import annotations

from typing import Any

import torch

from .base import FlowMatchAdapter, NoiseLevel

__all__ = ["HunyuanVideoAdapter"]


class HunyuanVideoAdapter(FlowMatchAdapter):
    """Adapter for ``HunyuanVideoPipeline`` / ``HunyuanVideoTransformer3DModel`` (docs/design.md §2)."""

    family = "hunyuanvideo"
    layout = "BCFHW"
    # full names: HunyuanVideo 1.5, Framepack and SkyReels are other models
    class_prefixes = ("HunyuanVideoPipeline", "HunyuanVideoImageToVideoPipeline", "HunyuanVideoTransformer3DModel")
    default_max_sequence_length = 256
    #: the guidance embedding a training forward gives the guidance-distilled transformer (``guidance · 1000``)
    training_guidance = 1.0

    def text_embed_dim(self, transformer: Any) -> int:
        return int(transformer.config.text_embed_dim)

    def pipeline_class(self) -> type:
        """``diffusers.HunyuanVideoPipeline``: its ``encode_prompt`` gives ``(Llama embeddings, CLIP pooled, mask)``."""
        from diffusers import HunyuanVideoPipeline

        return HunyuanVideoPipeline

    def normalize_latents(self, vae: Any, z: torch.Tensor) -> torch.Tensor:
        """``z · scaling_factor`` (the inverse of ``HunyuanVideoPipeline``'s decode)."""
        return z * vae.config.scaling_factor

    def denoise_for_training(
        self, transformer: Any, scheduler: Any, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
        level: NoiseLevel, prompt_embeds: torch.Tensor, pooled_prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flow matching in the transformer's ``(B, C, F, H, W)``; inputs and outputs ``(B, F, C, H, W)``.

        ``pooled_prompt_embeds`` ``(B, D_clip)`` is required (the transformer's CLIP input);
        ``prompt_attention_mask`` ``(B, L)`` defaults to every token."""
        if pooled_prompt_embeds is None:
            from ..errors import UserError  # not a ValueError: no trainer may read it as a diverged step

            raise UserError(
                "HunyuanVideo training needs the CLIP pooled prompt (pooled_prompt_embeds, "
                f"(B, {transformer.config.pooled_projection_dim})), which modulates its transformer; a latent cache "
                "holds the Llama embeddings only, so `lamo train finetune` cannot fine-tune HunyuanVideo yet — call "
                "HunyuanVideoAdapter.training_forward(…, pooled_prompt_embeds=…) from Python"
            )
        B, dtype = latents.shape[0], transformer.dtype
        if prompt_attention_mask is None:
            prompt_attention_mask = prompt_embeds.new_ones(prompt_embeds.shape[:2])
        noisy = self.flow_noisy(self.from_bfchw(latents), self.from_bfchw(noise), level)  # x_t: (B, C, F, H, W)
        guidance = None
        if transformer.config.guidance_embeds:
            guidance = torch.full((B,), self.training_guidance * 1000.0, device=latents.device, dtype=dtype)
        pred = transformer(
            hidden_states=noisy.to(dtype),
            timestep=timesteps.to(dtype),
            encoder_hidden_states=prompt_embeds.to(dtype),
            encoder_attention_mask=prompt_attention_mask.to(dtype),
            pooled_projections=pooled_prompt_embeds.to(dtype),
            guidance=guidance,
            return_dict=False,
        )[0]  # (B, C, F, H, W)
        return self.to_bfchw(noisy), self.to_bfchw(pred), noise - latents
