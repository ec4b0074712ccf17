"""``LaMoLTXPipeline`` / ``LaMoLTXImageToVideoPipeline``: diffusers' LTX-Video pipelines with Motion Prior Guidance.

``LTXPipeline`` steps packed ``(B, F·H·W, C)`` token latents; each guided call binds the adapter to its
latent grid (from ``num_frames``, ``height``, ``width``) so guidance unpacks them to ``(B, F, C, H, W)``
and packs its correction back. ``LTXImageToVideoPipeline`` steps unpacked ``(B, C, F − 1, H, W)`` latents
(the frames after the image's), which need no grid.
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
from diffusers import LTXImageToVideoPipeline, LTXPipeline

from ..adapters.ltx import LTXAdapter
from .guided import MotionGuidedPipelineMixin

__all__ = ["LaMoLTXPipeline", "LaMoLTXImageToVideoPipeline", "fill_prompt_masks"]


def _stock_arguments(pipe: Any, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The stock ``__call__``'s arguments of a call, defaults filled in (LaMo's ``motion_*`` left out)."""
    from .settings import stock_call

    signature = inspect.signature(stock_call(pipe))
    stock = {k: v for k, v in kwargs.items() if k in signature.parameters}
    bound = signature.bind_partial(pipe, *args, **stock)
    bound.apply_defaults()
    return bound.arguments


def fill_prompt_masks(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Call arguments where prompt embeddings given without their attention mask get one over every token (the
    stock HunyuanVideo and LTX pipelines refuse or fail on them; a prompt-embeddings file holds no mask)."""
    for embeds, mask in (("prompt_embeds", "prompt_attention_mask"),
                         ("negative_prompt_embeds", "negative_prompt_attention_mask")):
        if kwargs.get(embeds) is not None and kwargs.get(mask) is None:
            e = kwargs[embeds]
            kwargs[mask] = torch.ones(e.shape[:2], dtype=torch.bool, device=e.device)
    return kwargs


class _LTXMixin(MotionGuidedPipelineMixin):
    """What both LTX pipelines add to the mixin: prompt embeddings given without a mask attend to every token
    (the stock pipeline refuses them)."""

    adapter = LTXAdapter()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(*args, **fill_prompt_masks(kwargs))


class LaMoLTXPipeline(_LTXMixin, LTXPipeline):
    """``LTXPipeline`` (LTX-Video 0.9.x text-to-video) plus Motion Prior Guidance.

    Same components, ``from_pretrained`` and call arguments as ``LTXPipeline``, plus the ``motion_*`` arguments
    of :meth:`MotionGuidedPipelineMixin.__call__`; ``prompt_embeds`` without ``prompt_attention_mask`` attend
    to every token. Guidance sees the packed latents unpacked to ``(B, F, C, H, W)``::

        pipe = LaMoLTXPipeline.from_pretrained("Lightricks/LTX-Video", torch_dtype=torch.bfloat16).to("cuda")
        pipe.load_motion_prior("path/to/prior")  # a prior trained on LTX-Video latents (128 channels)
        video = pipe("a ball bounces", width=768, height=512, num_frames=121, motion_guidance_scale=1.0).frames[0]
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        call = _stock_arguments(self, args, kwargs)
        p, p_t = self.transformer_spatial_patch_size, self.transformer_temporal_patch_size
        grid = ((call["num_frames"] - 1) // self.vae_temporal_compression_ratio + 1,
                call["height"] // self.vae_spatial_compression_ratio, call["width"] // self.vae_spatial_compression_ratio)
        self.__dict__["adapter"] = LTXAdapter().for_grid((grid[0] // p_t, grid[1] // p, grid[2] // p), (p_t, p))
        try:
            return super().__call__(*args, **kwargs)
        finally:
            del self.__dict__["adapter"]


class LaMoLTXImageToVideoPipeline(_LTXMixin, LTXImageToVideoPipeline):
    """``LTXImageToVideoPipeline`` (LTX-Video 0.9.x image-to-video) plus Motion Prior Guidance.

    The image is the first latent frame, kept clean; the pipeline steps — and guidance corrects — the frames
    after it, ``(B, C, F − 1, H, W)``, so the prior's τ-pairs start at the first generated frame::

        from diffusers.utils import load_image

        pipe = LaMoLTXImageToVideoPipeline.from_pretrained("Lightricks/LTX-Video", torch_dtype=torch.bfloat16)
        pipe.to("cuda").load_motion_prior("path/to/prior")
        video = pipe(image=load_image("first_frame.png"), prompt="a ball bounces", width=768, height=512,
                     num_frames=121, motion_guidance_scale=1.0).frames[0]
    """
