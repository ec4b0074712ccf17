"""A LaMo pipeline samples with what the prior was validated at and what the model was made for, and says so.

* λ, ρ, steps and CFG: the caller's, else the prior's ``sampling.json``, else defaults — recorded on
  ``pipe.motion_guidance_settings`` with their sources; a prior without settings is reported once.
* frames, size and prompt length: the model's own config (the shipped demo backbone fails with diffusers'
  226-token default: "354 vs 160").
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from tiny_models import COGVIDEOX_LATENT_CHANNELS, tiny_motion_prior

import lamo.assets
from lamo.pipelines import LaMoCogVideoXPipeline, resolve_sampling_settings
from lamo.prior import MotionPrior, write_sampling_settings

PROMPT = "a red ball is thrown to the right"


@pytest.fixture(scope="module")
def demo():
    pipe = LaMoCogVideoXPipeline.from_pretrained(lamo.assets.demo_backbone())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_the_shipped_model_samples_with_its_defaults(demo, caplog):
    """The README's call: no sizes, no λ, no steps — the model's config and the prior's settings fill them."""
    prior = MotionPrior.from_pretrained(lamo.assets.demo_prior())
    with caplog.at_level(logging.INFO, logger="lamo.pipelines"):
        video = demo(prompt=PROMPT, motion_prior=prior, output_type="np").frames[0]
    assert "λ=3 (prior), ρ=0.5 (prior), steps=25 (prior), CFG=2 (prior)" in caplog.text  # says what it used
    values, sources = demo.motion_guidance_settings["values"], demo.motion_guidance_settings["sources"]
    assert video.shape == (16, 32, 32, 3) and np.isfinite(video).all()
    for key, value in prior.sampling_settings.items():
        assert values[key] == value and sources[key] == "prior", key
    assert {k: values[k] for k in ("num_frames", "height", "width", "max_sequence_length")} == dict(
        num_frames=15, height=32, width=32, max_sequence_length=32)
    assert all(sources[k] == "config" for k in ("num_frames", "height", "width", "max_sequence_length"))
    guided = [r.step for r in demo.motion_guidance_history if r.guided]
    assert guided == list(range(13, 25))  # ρ = 0.5 of 25 steps: from ⌈12.5⌉ on, at λ = 3


def test_caller_beats_prior_beats_default(demo, tmp_path, caplog):
    tiny = tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox")
    with caplog.at_level(logging.WARNING, logger="lamo.pipelines"):
        values, sources = resolve_sampling_settings(demo, tiny)
        resolve_sampling_settings(demo, tiny, motion_guidance_scale=2.0)
    # no recorded settings: defaults (λ 1 with a prior, ρ 0.8, steps and CFG the stock CogVideoXPipeline's 50 / 6)
    assert values == dict(motion_guidance_scale=1.0, motion_guidance_window=0.8, num_inference_steps=50,
                          guidance_scale=6)
    assert set(sources.values()) == {"default"}
    warnings = [r for r in caplog.records if "no validated sampling settings" in r.getMessage()]
    assert len(warnings) == 1 and "write_sampling_settings" in warnings[0].getMessage() and "lamo settings" in warnings[0].getMessage()  # once per prior
    assert resolve_sampling_settings(demo, None)[0]["motion_guidance_scale"] == 0.0  # no prior: off

    tiny.save_pretrained(tmp_path)
    write_sampling_settings(tmp_path, dict(motion_guidance_scale=3.0, num_inference_steps=7), source="test")
    recorded = MotionPrior.from_pretrained(tmp_path)
    values, sources = resolve_sampling_settings(demo, recorded, num_inference_steps=4)
    assert (values["motion_guidance_scale"], sources["motion_guidance_scale"]) == (3.0, "prior")
    assert (values["num_inference_steps"], sources["num_inference_steps"]) == (4, "caller")
    assert (values["motion_guidance_window"], sources["motion_guidance_window"]) == (0.8, "default")


def test_the_prior_settings_reach_the_denoising_loop(demo, tmp_path):
    """Steps and CFG recorded with the prior are what the stock loop runs; the caller's win; λ = 0 is off."""
    shipped = MotionPrior.from_pretrained(lamo.assets.demo_prior())
    shipped.save_pretrained(tmp_path)
    write_sampling_settings(tmp_path, dict(motion_guidance_scale=3.0, motion_guidance_window=1.0,
                                           num_inference_steps=3, guidance_scale=1.0), source="test")
    prior = MotionPrior.from_pretrained(tmp_path)

    def run(**kwargs):
        return demo(prompt=PROMPT, motion_prior=prior, output_type="latent",
                    generator=torch.Generator().manual_seed(0), **kwargs).frames

    run()
    assert len(demo.scheduler.timesteps) == 3 and [r.step for r in demo.motion_guidance_history if r.guided] == [0, 1, 2]
    assert demo.motion_guidance_settings["values"]["guidance_scale"] == 1.0
    run(num_inference_steps=2)
    assert len(demo.scheduler.timesteps) == 2 and demo.motion_guidance_settings["sources"]["num_inference_steps"] == "caller"
    off = run(motion_guidance_scale=0.0)
    stock = super(LaMoCogVideoXPipeline, demo).__call__(
        prompt=PROMPT, output_type="latent", num_inference_steps=3, guidance_scale=1.0, max_sequence_length=32,
        generator=torch.Generator().manual_seed(0)).frames
    assert torch.equal(off, stock)  # λ = 0: the stock loop at the prior's steps and CFG, bit for bit
