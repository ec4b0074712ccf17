"""``LaMoHunyuanVideoPipeline`` / ``LaMoHunyuanVideoImageToVideoPipeline``: diffusers' HunyuanVideo pipelines with
Motion Prior Guidance."""
from __future__ import annotations

from typing import Any

from diffusers import HunyuanVideoImageToVideoPipeline, HunyuanVideoPipeline

from ..adapters.hunyuan_video import HunyuanVideoAdapter
from .guided import MotionGuidedPipelineMixin
from .ltx import fill_prompt_masks

__all__ = ["LaMoHunyuanVideoPipeline", "LaMoHunyuanVideoImageToVideoPipeline"]


class _HunyuanVideoMixin(MotionGuidedPipelineMixin):
    """What both HunyuanVideo pipelines add to the mixin: prompt embeddings without a mask attend to every token,
    and prompt embeddings without the CLIP pooled prompt are refused in one line (the stock pipeline fails deep
    inside its CLIP encoder)."""

    adapter = HunyuanVideoAdapter()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("prompt_embeds") is not None and kwargs.get("pooled_prompt_embeds") is None:
            raise ValueError("HunyuanVideo: prompt_embeds (Llama) need pooled_prompt_embeds (the CLIP pooled prompt) "
                             "too; a prompt-embeddings file holds no pooled prompt: give the prompts as text")
        return super().__call__(*args, **fill_prompt_masks(kwargs))


class LaMoHunyuanVideoPipeline(_HunyuanVideoMixin, HunyuanVideoPipeline):
    """``HunyuanVideoPipeline`` (HunyuanVideo 13B text-to-video) plus Motion Prior Guidance.

    Same components, ``from_pretrained`` and call arguments as ``HunyuanVideoPipeline``, plus the ``motion_*``
    arguments of :meth:`MotionGuidedPipelineMixin.__call__`. Latents are ``(B, C, F, H, W)``, flow matching
    (``FlowMatchEulerDiscreteScheduler``); the prior is conditioned on the Llama prompt embeddings (mean over
    their tokens). ``guidance_scale`` is the distilled guidance the transformer takes, ``true_cfg_scale`` > 1
    with a negative prompt adds a classifier-free branch; guidance corrects what ``scheduler.step`` receives
    either way::

        pipe = LaMoHunyuanVideoPipeline.from_pretrained("hunyuanvideo-community/HunyuanVideo",
                                                        torch_dtype=torch.bfloat16).to("cuda")
        pipe.load_motion_prior("path/to/prior")  # a prior trained on HunyuanVideo latents (16 channels)
        video = pipe("a ball bounces", motion_guidance_scale=1.0).frames[0]

    Called with ``prompt_embeds=`` it needs ``pooled_prompt_embeds=`` (CLIP) too, as the stock pipeline does;
    without ``prompt_attention_mask=`` every token is attended to.
    """



class LaMoHunyuanVideoImageToVideoPipeline(_HunyuanVideoMixin, HunyuanVideoImageToVideoPipeline):
    """``HunyuanVideoImageToVideoPipeline`` (HunyuanVideo-I2V) plus Motion Prior Guidance.

    Its transformer takes the image one of two ways (``image_condition_type``): ``"latent_concat"`` — ``2·C + 1``
    input channels (noisy latents, image latents, a first-frame mask), predicting ``C``; the scheduler steps, and
    guidance corrects, all ``C``-channel frames — or ``"token_replace"`` — the image latent replaces the first
    frame, and the pipeline steps (guidance corrects) the frames after it. The prompt goes through a LLaVA text
    encoder with the image; the prior is conditioned on those embeddings' mean, as for text-to-video::

        from diffusers.utils import load_image

        pipe = LaMoHunyuanVideoImageToVideoPipeline.from_pretrained(
            "hunyuanvideo-community/HunyuanVideo-I2V", torch_dtype=torch.bfloat16).to("cuda")
        pipe.load_motion_prior("path/to/prior")  # a prior trained on HunyuanVideo latents (16 channels)
        video = pipe(image=load_image("first_frame.png"), prompt="a ball bounces", motion_guidance_scale=1.0).frames[0]
    """

