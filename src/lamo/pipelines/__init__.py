"""LaMo pipelines: the stock diffusers video pipelines plus Motion Prior Guidance.

* :class:`LaMoCogVideoXPipeline` — subclass of ``diffusers.CogVideoXPipeline``;
* :class:`LaMoCogVideoXImageToVideoPipeline` — subclass of ``diffusers.CogVideoXImageToVideoPipeline``;
* :class:`LaMoWanPipeline` — subclass of ``diffusers.WanPipeline`` (Wan 2.1 and 2.2);
* :class:`LaMoWanImageToVideoPipeline` — subclass of ``diffusers.WanImageToVideoPipeline``;
* :class:`LaMoHunyuanVideoPipeline`, :class:`LaMoHunyuanVideoImageToVideoPipeline` — subclasses of
  ``diffusers.HunyuanVideoPipeline`` and ``diffusers.HunyuanVideoImageToVideoPipeline``;
* :class:`LaMoLTXPipeline`, :class:`LaMoLTXImageToVideoPipeline` — subclasses of ``diffusers.LTXPipeline`` and
  ``diffusers.LTXImageToVideoPipeline``;
* :func:`pipeline_class` — the LaMo pipeline class of a backbone family (text- or image-to-video);
* :func:`resolve_sampling_settings` — λ, ρ, steps and CFG of a call: the caller's, else the prior's
  recorded ``sampling.json``, else defaults (:mod:`lamo.pipelines.settings`, with :func:`model_sizes`).

With ``motion_guidance_scale=0`` or no prior, each gives the stock pipeline's output bit for bit.
"""
from __future__ import annotations

from .._quiet import silence_notices

# before diffusers is imported: Python users, too, see no notice about LaMo's own components (the demo's
# autoencoder) on every from_pretrained, nor transformers' torchvision notice
silence_notices()

from ..demo import autoencoder as _demo_autoencoder  # noqa: E402,F401  (lets from_pretrained load the demo's VAE)
from .cogvideox import LaMoCogVideoXImageToVideoPipeline, LaMoCogVideoXPipeline
from .guided import (RELEASE_GUIDANCE_KWARGS, RELEASE_SAMPLING_KWARGS, GuidanceRecord, GuidedSchedulerStep,
                     MotionGuidedPipelineMixin, NonFiniteGuidanceError)
from .release import (RELEASE_SCHEDULER_CONFIG, FirstOrderCogVideoXDPMScheduler, release_scheduler,
                      use_release_sampling)
from .settings import (CPU_OFFLOADS, SAMPLING_DEFAULTS, check_sizes, configure_memory, describe_settings, model_sizes, resolve_sampling_settings,
                       stock_call)
from .hunyuan_video import LaMoHunyuanVideoImageToVideoPipeline, LaMoHunyuanVideoPipeline
from .ltx import LaMoLTXImageToVideoPipeline, LaMoLTXPipeline
from .wan import LaMoWanImageToVideoPipeline, LaMoWanPipeline

__all__ = [
    "LaMoCogVideoXPipeline", "LaMoWanPipeline", "LaMoCogVideoXImageToVideoPipeline", "LaMoWanImageToVideoPipeline",
    "LaMoHunyuanVideoPipeline", "LaMoHunyuanVideoImageToVideoPipeline", "LaMoLTXPipeline", "LaMoLTXImageToVideoPipeline",
    "pipeline_class", "is_image_to_video_model", "takes_image",
    "GuidanceRecord", "GuidedSchedulerStep", "MotionGuidedPipelineMixin", "NonFiniteGuidanceError",
    "RELEASE_GUIDANCE_KWARGS", "RELEASE_SAMPLING_KWARGS", "RELEASE_SCHEDULER_CONFIG", "FirstOrderCogVideoXDPMScheduler",
    "release_scheduler", "use_release_sampling",
    "CPU_OFFLOADS", "configure_memory",
    "resolve_sampling_settings", "describe_settings", "SAMPLING_DEFAULTS", "model_sizes", "check_sizes", "stock_call",
]

PIPELINES = {"cogvideox": LaMoCogVideoXPipeline, "wan": LaMoWanPipeline, "hunyuanvideo": LaMoHunyuanVideoPipeline,
             "ltx": LaMoLTXPipeline}
IMAGE_TO_VIDEO_PIPELINES = {"cogvideox": LaMoCogVideoXImageToVideoPipeline, "wan": LaMoWanImageToVideoPipeline,
                            "hunyuanvideo": LaMoHunyuanVideoImageToVideoPipeline, "ltx": LaMoLTXImageToVideoPipeline}


def pipeline_class(family: str, image_to_video: bool = False) -> type:
    """The LaMo pipeline class for ``family`` (``"cogvideox"``, ``"wan"``, ``"hunyuanvideo"``, ``"ltx"``);
    ``image_to_video=True`` gives the image-to-video one (``pipe(image=…, prompt=…)``)."""
    table = IMAGE_TO_VIDEO_PIPELINES if image_to_video else PIPELINES
    if family not in table:
        raise ValueError(f"no LaMo pipeline for backbone family {family!r}; choose from {sorted(table)}")
    return table[family]


def is_image_to_video_model(model_index: dict) -> bool:
    """Whether a saved pipeline's ``model_index.json`` (as a dict) is an image-to-video one: its class is
    ``CogVideoXImageToVideoPipeline`` / ``WanImageToVideoPipeline`` / ``HunyuanVideoImageToVideoPipeline`` /
    ``LTXImageToVideoPipeline`` (with or without LaMo's prefix)."""
    name = str(model_index.get("_class_name", "")).removeprefix("LaMo")
    return name in ("CogVideoXImageToVideoPipeline", "WanImageToVideoPipeline", "HunyuanVideoImageToVideoPipeline",
                    "LTXImageToVideoPipeline")


def takes_image(model_index: dict) -> bool:
    """Whether a saved pipeline can make a video from an image: an image-to-video one, or Wan 2.2 TI2V-5B
    (saved as a ``WanPipeline`` with ``expand_timesteps``: text- and image-to-video with the same weights;
    load it with ``pipeline_class("wan", image_to_video=True)`` for the latter)."""
    return is_image_to_video_model(model_index) or bool(model_index.get("expand_timesteps", False))
