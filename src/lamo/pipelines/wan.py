"""``LaMoWanPipeline``: diffusers' ``WanPipeline`` with Motion Prior Guidance."""
from __future__ import annotations

from diffusers import WanPipeline

from ..adapters.wan import WanAdapter
from .guided import MotionGuidedPipelineMixin

__all__ = ["LaMoWanPipeline"]


class LaMoWanPipeline(MotionGuidedPipelineMixin, WanPipeline):
    """``WanPipeline`` (Wan 2.1 / 2.2 text-to-video) plus Motion Prior Guidance.

    Same components, ``from_pretrained`` and call arguments as ``WanPipeline``, plus ``motion_prior=``,
    ``motion_guidance_scale=`` (λ, default 0 = off), ``motion_guidance_window=`` (ρ, 0.8),
    ``motion_guidance_mode=`` and ``motion_guidance_record=`` — see
    :meth:`MotionGuidedPipelineMixin.__call__`. Works with ``UniPCMultistepScheduler`` (flow sigmas, Wan's
    default) and ``FlowMatchEulerDiscreteScheduler``; latents are ``(B, C, F, H, W)`` here and the
    adapter hands guidance ``(B, F, C, H, W)``::

        pipe = LaMoWanPipeline.from_pretrained("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", torch_dtype=torch.bfloat16)
        pipe.to("cuda").load_motion_prior("path/to/prior")
        video = pipe("a ball bounces", motion_guidance_scale=1.0).frames[0]
    """

    adapter = WanAdapter()
