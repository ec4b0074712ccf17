"""Checks shared by the pipeline tests (``test_pipelines``, ``test_pipelines_i2v``, ``test_wan22``).

Each test file defines its own ``Backbone`` (with ``pipelines()`` → ``(stock, lamo)`` built from the same
weights, and ``prior()``), a ``run(pipe, backbone, **call_kwargs)`` that calls a pipeline and returns its
``.frames``; these functions take them as arguments (:func:`trajectory` records the latents after each
step through that ``run``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
import torch
from tiny_models import tiny_motion_prior, tiny_pipeline

Run = Callable[..., Any]


def plain_prompt_kwargs(positive: torch.Tensor, negative: torch.Tensor | None = None) -> dict[str, Any]:
    """A pipeline's prompt arguments from prompt embeddings (CogVideoX, Wan): the embeddings alone."""
    return dict(prompt_embeds=positive, negative_prompt_embeds=negative)


@dataclass
class Backbone:
    """A tiny backbone under test: how to build it (stock and LaMo pipelines from the same weights), call it,
    and the prior that fits it."""

    components: Callable[[], dict[str, Any]]
    stock: type
    lamo: type
    call_kwargs: Callable[..., dict[str, Any]]
    family: str
    channels: int  # latent channels the transformer predicts (the prior's)
    true_lengths: list[int] | None = None  # Wan zero-pads prompt embeddings past the prompt
    condition_channels: int = 0  # image-to-video: extra input channels the transformer is given
    # (positive, negative) prompt embeddings → the call's prompt arguments (HunyuanVideo adds CLIP pooled and masks)
    prompt_kwargs: Callable[..., dict[str, Any]] = plain_prompt_kwargs

    def pipelines(self):
        comps = self.components()
        return tiny_pipeline(self.stock, comps), tiny_pipeline(self.lamo, comps)

    def prior(self, **kwargs):
        return tiny_motion_prior(self.channels, backbone=self.family, **kwargs)


def check_bit_identical_decoded(backbone, run: Run) -> None:
    """Decoded to pixels (``output_type="np"``), a LaMo pipeline with a prior, measuring ``L_guide`` but not
    guiding, gives the stock pipeline's video bit for bit."""
    stock, lamo = backbone.pipelines()
    reference = run(stock, backbone, output_type="np", num_inference_steps=2)
    ours = run(lamo, backbone, output_type="np", num_inference_steps=2, motion_prior=backbone.prior(),
               motion_guidance_scale=0.0, motion_guidance_record=True)
    assert isinstance(ours, np.ndarray) and ours.shape == reference.shape and np.array_equal(ours, reference)


def trajectory(run: Run, pipe, backbone, **kwargs) -> list[torch.Tensor]:
    """Latents after each denoising step of ``run(pipe, backbone, **kwargs)`` (``callback_on_step_end``)."""
    steps: list[torch.Tensor] = []

    def keep(_pipe, i, t, tensors):
        steps.append(tensors["latents"].clone())
        return {}

    run(pipe, backbone, callback_on_step_end=keep, **kwargs)
    return steps


def check_guidance_window(backbone, run: Run, window: float, first_guided: int, steps: int, *,
                          every_step_recorded: bool = False) -> None:
    """Guidance on from ``first_guided`` (the first step in ``window``): the steps before it equal the stock
    pipeline's, every step from it on differs, the history marks exactly those steps guided, and ``L_guide``
    is lower than along the unguided trajectory after the first guided step.

    ``every_step_recorded``: also assert the history holds one record for every step, in order.
    """
    stock, lamo = backbone.pipelines()
    prior = backbone.prior()
    reference = trajectory(run, stock, backbone)
    guided = trajectory(run, lamo, backbone, motion_prior=prior, motion_guidance_scale=1.0,
                        motion_guidance_window=window, motion_guidance_record=True)
    assert len(guided) == len(reference) == steps
    for i, (a, b) in enumerate(zip(reference, guided)):
        if i < first_guided:
            assert torch.equal(a, b), f"step {i} is before the window but changed"
        else:
            assert not torch.equal(a, b), f"step {i} is guided but did not change"
    history = lamo.motion_guidance_history
    if every_step_recorded:
        assert [r.step for r in history] == list(range(steps))
    assert [r.step for r in history if r.guided] == list(range(first_guided, steps))
    guided_loss = [float(r.loss.sum()) for r in history]

    # the same measurement along the unguided trajectory: L_guide is lower wherever guidance acted before
    run(lamo, backbone, motion_prior=prior, motion_guidance_scale=0.0, motion_guidance_record=True)
    plain_loss = [float(r.loss.sum()) for r in lamo.motion_guidance_history]
    assert guided_loss[:first_guided + 1] == pytest.approx(plain_loss[:first_guided + 1], rel=1e-6)
    for s in range(first_guided + 1, steps):
        assert guided_loss[s] < plain_loss[s], f"step {s}: L_guide {guided_loss[s]} ≥ unguided {plain_loss[s]}"


def check_activation_budget(backbone, run: Run, window: float) -> None:
    """Guidance with the τ-pairs split to a tiny activation budget (one pair per prior call) samples what one
    call over all pairs samples (to float round-off), and differs from the unguided video."""
    _, lamo = backbone.pipelines()
    prior = backbone.prior()
    kw = dict(motion_prior=prior, motion_guidance_scale=1.0, motion_guidance_window=window)
    whole = run(lamo, backbone, motion_guidance_activation_gib=None, **kw)
    split = run(lamo, backbone, motion_guidance_activation_gib=1e-12, **kw)
    torch.testing.assert_close(split, whole, rtol=1e-4, atol=1e-5)
    assert not torch.equal(whole, run(lamo, backbone))
