"""``LaMoCogVideoXPipeline`` / ``LaMoCogVideoXImageToVideoPipeline``: diffusers' CogVideoX pipelines with
Motion Prior Guidance."""
from __future__ import annotations

from diffusers import CogVideoXImageToVideoPipeline, CogVideoXPipeline

from ..adapters.cogvideox import CogVideoXAdapter
from .guided import MotionGuidedPipelineMixin

__all__ = ["LaMoCogVideoXPipeline", "LaMoCogVideoXImageToVideoPipeline"]


class LaMoCogVideoXPipeline(MotionGuidedPipelineMixin, CogVideoXPipeline):
    """``CogVideoXPipeline`` (2B / 5B / 1.5 text-to-video) plus Motion Prior Guidance.

    Same components, ``from_pretrained`` and call arguments as ``CogVideoXPipeline``, plus
    ``motion_prior=``, ``motion_guidance_scale=`` (λ; 0 = off), ``motion_guidance_window=`` (ρ) — both, and the
    steps and CFG scale, default to what the prior records (its ``sampling.json``) —, ``motion_guidance_mode=`` (``"output"`` / ``"latent"``) and ``motion_guidance_record=`` —
    see :meth:`MotionGuidedPipelineMixin.__call__`. Works with ``CogVideoXDDIMScheduler`` and
    ``CogVideoXDPMScheduler``::

        pipe = LaMoCogVideoXPipeline.from_pretrained("THUDM/CogVideoX-2b", torch_dtype=torch.bfloat16).to("cuda")
        pipe.load_motion_prior("path/to/prior")
        video = pipe("a ball bounces", motion_guidance_scale=1.0).frames[0]

    The authors' release (docs/design.md §8) — their LoRA and predictor, their guidance and sampling setting::

        from lamo.convert import load_release
        from lamo.pipelines import RELEASE_SAMPLING_KWARGS, use_release_sampling

        load_release(pipe, "path/to/release")  # LoRA weights or transformer/ + predictor.safetensors
        use_release_sampling(pipe)              # their DPM scheduler (trailing timesteps, first-order steps)
        video = pipe("a ball bounces", **RELEASE_SAMPLING_KWARGS).frames[0]  # + dynamic CFG, their guidance
    """

    adapter = CogVideoXAdapter()


class LaMoCogVideoXImageToVideoPipeline(MotionGuidedPipelineMixin, CogVideoXImageToVideoPipeline):
    """``CogVideoXImageToVideoPipeline`` (CogVideoX-5B-I2V, 1.5-5B-I2V) plus Motion Prior Guidance.

    The transformer takes ``2·C`` channels (noisy latents and image latents concatenated) and predicts
    ``C``; the scheduler steps, and guidance corrects, those ``C`` denoised channels, so a prior trained on
    the backbone's ``C``-channel latents fits (the first latent frame is denoised too, towards the image).
    Same components, ``from_pretrained`` and call arguments as ``CogVideoXImageToVideoPipeline``, plus the
    ``motion_*`` arguments of :meth:`MotionGuidedPipelineMixin.__call__`::

        from diffusers.utils import load_image

        pipe = LaMoCogVideoXImageToVideoPipeline.from_pretrained(
            "THUDM/CogVideoX-5b-I2V", torch_dtype=torch.bfloat16).to("cuda")
        pipe.load_motion_prior("path/to/prior")  # a prior trained on CogVideoX-5B latents (16 channels)
        video = pipe(image=load_image("first_frame.png"), prompt="a ball bounces",
                     motion_guidance_scale=1.0).frames[0]
    """

    adapter = CogVideoXAdapter()
