"""``LaMoWanPipeline`` / ``LaMoWanImageToVideoPipeline``: diffusers' Wan pipelines with Motion Prior Guidance."""
from __future__ import annotations

from typing import Any

import torch
from diffusers import WanImageToVideoPipeline, WanPipeline

from ..adapters.wan import WanAdapter
from .guided import MotionGuidedPipelineMixin

__all__ = ["LaMoWanPipeline", "LaMoWanImageToVideoPipeline"]


class LaMoWanPipeline(MotionGuidedPipelineMixin, WanPipeline):
    """``WanPipeline`` (Wan 2.1 / 2.2 text-to-video) plus Motion Prior Guidance.

    Same components, ``from_pretrained`` and call arguments as ``WanPipeline``, plus ``motion_prior=``,
    ``motion_guidance_scale=`` (λ; 0 = off), ``motion_guidance_window=`` (ρ) — both, and the steps and CFG
    scale, default to what the prior records (its ``sampling.json``) —, ``motion_guidance_mode=`` and ``motion_guidance_record=`` — see
    :meth:`MotionGuidedPipelineMixin.__call__`. Works with ``UniPCMultistepScheduler`` (flow sigmas, Wan's
    default) and ``FlowMatchEulerDiscreteScheduler``; latents are ``(B, C, F, H, W)`` here and the
    adapter hands guidance ``(B, F, C, H, W)``::

        pipe = LaMoWanPipeline.from_pretrained("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", torch_dtype=torch.bfloat16)
        pipe.to("cuda").load_motion_prior("path/to/prior")
        video = pipe("a ball bounces", motion_guidance_scale=1.0).frames[0]

    Wan 2.2: A14B (``transformer`` for the high-noise steps, ``transformer_2`` below
    ``boundary_ratio · 1000``) — the prior must fit both, guidance corrects whichever one's output the
    step has, and ``motion_guidance_history[i].transformer`` names it; TI2V-5B (48 latent channels,
    ``expand_timesteps``) — a prior trained on its 48-channel latents.
    """

    adapter = WanAdapter()


class LaMoWanImageToVideoPipeline(MotionGuidedPipelineMixin, WanImageToVideoPipeline):
    """``WanImageToVideoPipeline`` (Wan 2.1 I2V, Wan 2.2 I2V-A14B and TI2V-5B) plus Motion Prior Guidance.

    The transformer takes ``2·C + 4`` channels (noisy latents, a first-frame mask and the image latents)
    and predicts ``C``; the scheduler steps, and guidance corrects, those ``C`` denoised channels. Wan 2.1
    also encodes the image with CLIP (``image_encoder``); Wan 2.2 has none, and A14B switches to
    ``transformer_2`` at the boundary timestep as in :class:`LaMoWanPipeline`. With ``expand_timesteps``
    (TI2V-5B) the first latent frame *is* the image's latent, kept clean (timestep 0) rather than
    denoised: guidance reads ``x̂0`` there as that latent and leaves its entries alone
    (:meth:`motion_guidance_known_latents`)::

        from diffusers.utils import load_image

        pipe = LaMoWanImageToVideoPipeline.from_pretrained(
            "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", torch_dtype=torch.bfloat16).to("cuda")
        pipe.load_motion_prior("path/to/prior")  # a prior trained on Wan latents (16 channels)
        video = pipe(image=load_image("first_frame.png"), prompt="a ball bounces", height=480, width=832,
                     motion_guidance_scale=1.0).frames[0]
    """

    adapter = WanAdapter()

    def motion_guidance_known_latents(self, prepared: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
        """With ``expand_timesteps``, ``prepare_latents`` returns ``(latents, condition, first_frame_mask)``:
        the latent is ``condition`` where the mask is 0 (the first frame) — ``(1, 1, F, H, W)`` mask and
        ``(B, C, 1, H, W)`` condition, in Wan's layout."""
        if not self.config.get("expand_timesteps", False):
            return None
        _, condition, first_frame_mask = prepared
        return first_frame_mask, condition
