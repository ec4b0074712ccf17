"""``LaMoCogVideoXPipeline``: diffusers' ``CogVideoXPipeline`` with Motion Prior Guidance."""
from __future__ import annotations

from diffusers import CogVideoXPipeline

from ..adapters.cogvideox import CogVideoXAdapter
from .guided import MotionGuidedPipelineMixin

__all__ = ["LaMoCogVideoXPipeline"]


class LaMoCogVideoXPipeline(MotionGuidedPipelineMixin, CogVideoXPipeline):
    """``CogVideoXPipeline`` (2B / 5B / 1.5 text-to-video) plus Motion Prior Guidance.

    Same components, ``from_pretrained`` and call arguments as ``CogVideoXPipeline``, plus
    ``motion_prior=``, ``motion_guidance_scale=`` (λ, default 0 = off), ``motion_guidance_window=`` (ρ,
    0.8), ``motion_guidance_mode=`` (``"output"`` / ``"latent"``) and ``motion_guidance_record=`` —
    see :meth:`MotionGuidedPipelineMixin.__call__`. Works with ``CogVideoXDDIMScheduler`` and
    ``CogVideoXDPMScheduler``::

        pipe = LaMoCogVideoXPipeline.from_pretrained("THUDM/CogVideoX-2b", torch_dtype=torch.bfloat16).to("cuda")
        pipe.load_motion_prior("path/to/prior")
        video = pipe("a ball bounces", motion_guidance_scale=1.0).frames[0]

    The authors' release (DESIGN.md §8) — their LoRA and predictor, their guidance and sampling setting::

        from lamo.convert import load_release
        from lamo.pipelines import RELEASE_SAMPLING_KWARGS

        load_release(pipe, "path/to/release")  # LoRA weights + predictor.safetensors
        video = pipe("a ball bounces", **RELEASE_SAMPLING_KWARGS).frames[0]
    """

    adapter = CogVideoXAdapter()
