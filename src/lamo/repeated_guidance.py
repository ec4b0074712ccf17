"""More than one Motion Prior Guidance correction per denoising step.

:class:`~lamo.guidance.MotionPriorGuidance` corrects the backbone's output once per guided step,
``o ← o − λ·∇_o L_guide(x̂0(o))``. :class:`RepeatedCorrections` takes ``K`` smaller corrections instead,
re-evaluating the gradient after each: ``o_{k+1} = o_k − (λ/K)·∇_o L_guide(x̂0(o_k))``, ``k = 0 … K−1`` — the
same total step length as one correction at λ when the gradient does not change, closer to the minimum of
``L_guide`` along the way when it does (gradient descent with ``K`` steps instead of one). ``K = 1`` is the
single correction, bit for bit. The recorded ``L_b`` is the one before the first correction, as with one.

The pipelines build their guidance object themselves; :func:`repeated_corrections` makes the pipeline calls
inside it use ``K`` corrections (it swaps the class the pipelines construct, and restores it on exit)::

    with repeated_corrections(3):
        video = pipe(prompt, motion_prior=prior, motion_guidance_scale=10.0).frames[0]

This is a measurement option (``benchmarks/effect_levers.py``), not a sampling default.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

from .guidance import GuidanceOutput, MotionPriorGuidance

__all__ = ["RepeatedCorrections", "repeated_corrections"]


class RepeatedCorrections(MotionPriorGuidance):
    """:class:`~lamo.guidance.MotionPriorGuidance` with ``corrections`` gradient steps of ``λ/K`` per guided step
    (every other argument as there)."""

    def __init__(self, *args, corrections: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(corrections, bool) or not isinstance(corrections, int) or corrections < 1:
            raise ValueError(f"corrections must be an integer ≥ 1, got {corrections!r}")
        self.corrections = corrections

    def __call__(self, model_output: torch.Tensor, sample: torch.Tensor, **kwargs) -> GuidanceOutput:
        if self.corrections == 1:
            return super().__call__(model_output, sample, **kwargs)
        scale = self.scale
        self.scale = scale / self.corrections
        try:
            o, x, first, finite = model_output, sample, None, None
            for _ in range(self.corrections):
                res = super().__call__(o, x, **kwargs)  # output mode moves o, latent mode x
                if not res.active:
                    return res
                first = res if first is None else first
                o, x = res.model_output, res.sample
                if res.finite is not None:
                    finite = res.finite if finite is None else finite & res.finite
            return GuidanceOutput(o, x, first.loss, True, finite)
        finally:
            self.scale = scale


@contextlib.contextmanager
def repeated_corrections(corrections: int) -> Iterator[None]:
    """Inside this block, every LaMo pipeline call guides with ``corrections`` corrections per guided step
    (:class:`RepeatedCorrections`); ``1`` changes nothing."""
    from .pipelines import guided

    if isinstance(corrections, bool) or not isinstance(corrections, int) or corrections < 1:
        raise ValueError(f"corrections must be an integer ≥ 1, got {corrections!r}")
    previous = guided.MotionPriorGuidance
    guided.MotionPriorGuidance = functools.partial(RepeatedCorrections, corrections=corrections)
    try:
        yield
    finally:
        guided.MotionPriorGuidance = previous
