"""LaMo pipelines: the stock diffusers video pipelines plus Motion Prior Guidance.

* :class:`LaMoCogVideoXPipeline` — subclass of ``diffusers.CogVideoXPipeline``;
* :class:`LaMoWanPipeline` — subclass of ``diffusers.WanPipeline``;
* :func:`pipeline_class` — the LaMo pipeline class of a backbone family.

With ``motion_guidance_scale=0`` (the default) or no prior, each gives the stock pipeline's output
bit for bit.
"""
from __future__ import annotations

from ..demo import autoencoder as _demo_autoencoder  # noqa: F401  (lets from_pretrained load the demo's VAE)
from .cogvideox import LaMoCogVideoXPipeline
from .guided import (RELEASE_GUIDANCE_KWARGS, RELEASE_SAMPLING_KWARGS, GuidanceRecord, GuidedSchedulerStep,
                     MotionGuidedPipelineMixin, NonFiniteGuidanceError)
from .wan import LaMoWanPipeline

__all__ = [
    "LaMoCogVideoXPipeline", "LaMoWanPipeline", "pipeline_class",
    "GuidanceRecord", "GuidedSchedulerStep", "MotionGuidedPipelineMixin", "NonFiniteGuidanceError",
    "RELEASE_GUIDANCE_KWARGS", "RELEASE_SAMPLING_KWARGS",
]

PIPELINES = {"cogvideox": LaMoCogVideoXPipeline, "wan": LaMoWanPipeline}


def pipeline_class(family: str) -> type:
    """The LaMo pipeline class for ``family`` (``"cogvideox"`` or ``"wan"``)."""
    if family not in PIPELINES:
        raise ValueError(f"no LaMo pipeline for backbone family {family!r}; choose from {sorted(PIPELINES)}")
    return PIPELINES[family]
