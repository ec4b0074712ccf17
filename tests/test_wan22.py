"""Wan 2.2 under LaMo, on tiny random models: A14B (two transformers split at a boundary timestep) and
TI2V-5B (48 latent channels, per-token timesteps ``expand_timesteps``), text- and image-to-video.

* guidance off → bit-identical to stock diffusers;
* guidance on → the trajectory changes only from the first guided step on, whichever transformer ran;
  the guided output is the one of the transformer that ran, and the history names it;
* no gradient into either transformer;
* the prior must fit every transformer (A14B) and the 48 channels TI2V denoises;
* with ``expand_timesteps`` the ``x̂0`` guidance sees is the scheduler's own (σ from its step), and in
  image-to-video mode the image's latent frame reads as the image and is left alone.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import torch
from diffusers import WanImageToVideoPipeline, WanPipeline
from tiny_models import (TEXT_DIM, TI2V_SIZE, WAN22_TI2V_LATENT_CHANNELS, WAN_LATENT_CHANNELS,
                         random_prompt_embeds, tiny_image, tiny_motion_prior, tiny_pipeline, tiny_wan22_components,
                         tiny_wan22_ti2v_components, wan22_ti2v_call_kwargs, wan_call_kwargs)

from lamo import MotionPriorGuidance
from lamo import guidance as guidance_module
from lamo.pipelines import LaMoWanImageToVideoPipeline, LaMoWanPipeline

pytest.register_assert_rewrite("pipeline_checks")  # its asserts report like the tests' own
from pipeline_checks import check_guidance_window  # noqa: E402


@dataclass
class Backbone:
    components: Callable[[], dict[str, Any]]
    image_to_video: bool
    call_kwargs: Callable[..., dict[str, Any]]
    channels: int
    image_size: int = 32

    def pipelines(self):
        comps = self.components()
        stock, lamo = ((WanImageToVideoPipeline, LaMoWanImageToVideoPipeline) if self.image_to_video
                       else (WanPipeline, LaMoWanPipeline))
        return tiny_pipeline(stock, comps), tiny_pipeline(lamo, comps)

    def prior(self, **kwargs):
        return tiny_motion_prior(self.channels, backbone="wan2.2", **kwargs)


BACKBONES = {
    "a14b-t2v": Backbone(lambda: tiny_wan22_components(), False, wan_call_kwargs, WAN_LATENT_CHANNELS),
    "a14b-i2v": Backbone(lambda: tiny_wan22_components(image_to_video=True), True, wan_call_kwargs,
                         WAN_LATENT_CHANNELS),
    "a14b-t2v-euler": Backbone(lambda: tiny_wan22_components(scheduler="euler", boundary_ratio=0.7), False,
                               wan_call_kwargs, WAN_LATENT_CHANNELS),
    "ti2v-t2v": Backbone(lambda: tiny_wan22_ti2v_components(), False, wan22_ti2v_call_kwargs,
                         WAN22_TI2V_LATENT_CHANNELS, TI2V_SIZE),
    "ti2v-i2v": Backbone(lambda: tiny_wan22_ti2v_components(image_to_video=True), True, wan22_ti2v_call_kwargs,
                         WAN22_TI2V_LATENT_CHANNELS, TI2V_SIZE),
}
A14B = [name for name in BACKBONES if name.startswith("a14b")]
STEPS, WINDOW, FIRST_GUIDED = 5, 0.6, 2  # steps s ≥ ⌈(1 − 0.6)·5⌉ = 2 are guided
CFG = 5.0  # wan_call_kwargs' guidance_scale


def _embeds():
    return (random_prompt_embeds(1, seed=1, true_lengths=[5]), random_prompt_embeds(1, seed=2, true_lengths=[3]))


def _run(pipe, backbone: Backbone, seed: int = 0, **kwargs):
    positive, negative = _embeds()
    call = backbone.call_kwargs(num_inference_steps=STEPS)
    call.update(kwargs)
    if backbone.image_to_video:
        call["image"] = tiny_image(backbone.image_size)
    return pipe(prompt_embeds=positive, negative_prompt_embeds=negative,
                generator=torch.Generator().manual_seed(seed), **call).frames


def _spy_step(scheduler) -> list[dict[str, torch.Tensor]]:
    """Record what ``scheduler.step`` receives (after LaMo's guidance, which wraps this spy)."""
    seen: list[dict[str, torch.Tensor]] = []
    step = scheduler.step

    @functools.wraps(step)
    def spy(model_output, timestep, sample, *args, **kwargs):
        seen.append(dict(model_output=model_output.clone(), sample=sample.clone()))
        return step(model_output, timestep, sample, *args, **kwargs)

    scheduler.step = spy
    return seen


def _spy_transformers(pipe) -> tuple[list[tuple[str, torch.Tensor, bool]], list[Any]]:
    """(name, output, grad state) of every transformer call, and the hook handles."""
    calls: list[tuple[str, torch.Tensor, bool]] = []
    handles = []
    for name, module in pipe.backbone_transformers.items():
        def hook(module, args, kwargs, output, name=name):
            out = output[0] if isinstance(output, tuple) else output.sample
            calls.append((name, out.detach().clone(), torch.is_grad_enabled() or out.requires_grad))

        handles.append(module.register_forward_hook(hook, with_kwargs=True))
    return calls, handles


# ---------------------------------------------------------------------------------------- guidance off
@pytest.mark.parametrize("name", list(BACKBONES))
def test_wan22_bit_identical_to_stock_when_guidance_is_off(name):
    backbone = BACKBONES[name]
    stock, lamo = backbone.pipelines()
    reference = _run(stock, backbone)
    assert reference.shape[1] == backbone.channels
    assert torch.equal(_run(lamo, backbone), reference)
    prior = backbone.prior()
    assert torch.equal(_run(lamo, backbone, motion_prior=prior, motion_guidance_scale=0.0), reference)
    assert torch.equal(_run(lamo, backbone, motion_prior=prior, motion_guidance_scale=0.0, motion_guidance_record=True), reference)
    history = lamo.motion_guidance_history
    assert len(history) == STEPS and not any(r.guided for r in history)
    expected = ["transformer"] * 3 + ["transformer_2"] * 2 if name in A14B else ["transformer"] * STEPS
    assert [r.transformer for r in history] == expected
    assert "step" not in vars(lamo.scheduler) and not {"encode_prompt", "prepare_latents"} & set(vars(lamo))


# ---------------------------------------------------------------------------------------- guidance on
@pytest.mark.parametrize("name", list(BACKBONES))
def test_wan22_guidance_changes_the_trajectory_from_the_first_guided_step(name):
    check_guidance_window(BACKBONES[name], _run, WINDOW, FIRST_GUIDED, STEPS)


@pytest.mark.parametrize("name", A14B)
def test_a14b_guides_the_output_of_the_transformer_that_ran(name):
    """Both stages are in the window; each guided step corrects the CFG mix of the transformer the history names."""
    backbone = BACKBONES[name]
    _, lamo = backbone.pipelines()
    prior = backbone.prior()
    received = _spy_step(lamo.scheduler)
    calls, handles = _spy_transformers(lamo)
    try:
        _run(lamo, backbone, motion_prior=prior, motion_guidance_scale=1.0, motion_guidance_window=WINDOW)
    finally:
        for h in handles:
            h.remove()
    history = lamo.motion_guidance_history
    assert len(calls) == 2 * STEPS and len(received) == STEPS  # CFG: conditional, then unconditional
    ran = [calls[2 * i][0] for i in range(STEPS)]
    assert all(calls[2 * i + 1][0] == ran[i] for i in range(STEPS))
    assert [r.transformer for r in history] == ran[FIRST_GUIDED:]
    assert {"transformer", "transformer_2"} <= set(ran[FIRST_GUIDED:])  # both stages were guided

    adapter, guidance = lamo.adapter, MotionPriorGuidance(prior, scale=1.0, window=WINDOW)
    cond = adapter.pool_prompt(_embeds()[0])
    lamo.scheduler.set_timesteps(STEPS)
    for record in history:
        i = record.step
        o_text, o_uncond = calls[2 * i][1], calls[2 * i + 1][1]
        o = o_uncond + CFG * (o_text - o_uncond)  # the CFG mix of the transformer that ran (B, C, F, H, W)
        sigma = lamo.scheduler.sigmas[i].float()
        expected = guidance.loss(adapter.to_bfchw(o), adapter.to_bfchw(received[i]["sample"]), "flow",
                                 sigma=sigma, cond=cond)
        torch.testing.assert_close(record.loss, expected, rtol=1e-5, atol=1e-6)
        assert not torch.equal(received[i]["model_output"], o)  # ... and corrected it


@pytest.mark.parametrize("name", ["a14b-t2v", "a14b-i2v", "ti2v-i2v"])
@pytest.mark.parametrize("mode", ["output", "latent"])
def test_wan22_no_gradient_reaches_either_transformer(name, mode):
    backbone = BACKBONES[name]
    _, lamo = backbone.pipelines()
    prior = backbone.prior()
    calls, handles = _spy_transformers(lamo)
    try:
        _run(lamo, backbone, motion_prior=prior, motion_guidance_scale=1.0, motion_guidance_window=WINDOW,
             motion_guidance_mode=mode)
    finally:
        for h in handles:
            h.remove()
    assert len(calls) == 2 * STEPS and not any(grad for _, _, grad in calls)
    assert {n for n, _, _ in calls} == set(lamo.backbone_transformers)
    for module in [*lamo.backbone_transformers.values(), prior]:
        assert all(p.grad is None for p in module.parameters())


# ---------------------------------------------------------------------------------------- the prior
def test_a14b_prior_must_fit_both_transformers():
    comps = tiny_wan22_components()
    lamo = tiny_pipeline(LaMoWanPipeline, comps)
    assert list(lamo.backbone_transformers) == ["transformer", "transformer_2"]
    lamo.motion_prior = BACKBONES["a14b-t2v"].prior()
    # a transformer_2 of another text width: the prior fits `transformer` but not it
    other = tiny_wan22_components(text_dim=TEXT_DIM + 8)["transformer_2"]
    lamo = tiny_pipeline(LaMoWanPipeline, dict(comps, transformer_2=other))
    with pytest.raises(ValueError, match="text embedding width"):
        lamo.motion_prior = BACKBONES["a14b-t2v"].prior()
    # Wan 2.2 saved with `transformer_2` only: the prior is checked against it, and loads beside it
    lamo = tiny_pipeline(LaMoWanPipeline, dict(comps, transformer=None))
    assert list(lamo.backbone_transformers) == ["transformer_2"]
    lamo.motion_prior = BACKBONES["a14b-t2v"].prior()


@pytest.mark.parametrize("name", ["ti2v-t2v", "ti2v-i2v"])
def test_ti2v_prior_has_the_48_channels_the_transformer_denoises(name):
    backbone = BACKBONES[name]
    _, lamo = backbone.pipelines()
    assert lamo.adapter.latent_channels(lamo.transformer) == WAN22_TI2V_LATENT_CHANNELS == lamo.vae.config.z_dim
    assert not lamo.adapter.is_image_to_video(lamo.transformer)  # TI2V puts the image in a frame, not channels
    lamo.motion_prior = backbone.prior()
    with pytest.raises(ValueError, match="latent channels"):
        lamo.motion_prior = tiny_motion_prior(WAN_LATENT_CHANNELS, backbone="wan")


# ---------------------------------------------------------------------------------------- expand_timesteps
@pytest.mark.parametrize("name", ["ti2v-t2v", "ti2v-i2v"])
def test_ti2v_x0_is_the_schedulers_own(name, monkeypatch):
    """Per-token timesteps do not change σ: the x̂0 guidance reads is UniPC's own ``convert_model_output``;
    in image-to-video mode the first latent frame reads as the image's latent (what the video starts from)."""
    backbone = BACKBONES[name]
    _, lamo = backbone.pipelines()
    guided_x0: list[torch.Tensor] = []
    real_loss = guidance_module.guidance_loss

    def spy_loss(prior, x0, *args, **kwargs):
        guided_x0.append(x0.detach().clone())
        return real_loss(prior, x0, *args, **kwargs)

    monkeypatch.setattr(guidance_module, "guidance_loss", spy_loss)
    scheduler_x0: list[torch.Tensor] = []
    convert = lamo.scheduler.convert_model_output

    def spy_convert(*args, **kwargs):
        out = convert(*args, **kwargs)
        scheduler_x0.append(out.detach().clone())
        return out

    monkeypatch.setattr(lamo.scheduler, "convert_model_output", spy_convert)
    video = _run(lamo, backbone, motion_prior=backbone.prior(), motion_guidance_scale=0.0, motion_guidance_record=True)
    assert len(guided_x0) == len(scheduler_x0) == STEPS
    for ours, theirs in zip(guided_x0, scheduler_x0):
        theirs = lamo.adapter.to_bfchw(theirs)  # (B, C, F, H, W) -> (B, F, C, H, W)
        first = 1 if backbone.image_to_video else 0
        torch.testing.assert_close(ours[:, first:], theirs[:, first:], rtol=1e-5, atol=1e-5)
        if backbone.image_to_video:  # the image's latent frame: the video's first latent frame, not UniPC's x̂0
            torch.testing.assert_close(ours[:, 0], lamo.adapter.to_bfchw(video)[:, 0], rtol=1e-5, atol=1e-5)
            assert not torch.allclose(ours[:, 0], theirs[:, 0], atol=1e-3)


def test_ti2v_i2v_guidance_leaves_the_image_frame_alone():
    """At the first guided step guidance corrects every denoised frame, but not the image's latent frame."""
    backbone = BACKBONES["ti2v-i2v"]
    _, lamo = backbone.pipelines()
    prior = backbone.prior()

    def received(**kwargs) -> dict[str, torch.Tensor]:
        seen = _spy_step(lamo.scheduler)
        try:
            _run(lamo, backbone, motion_prior=prior, **kwargs)
        finally:
            del lamo.scheduler.step  # the spy
        return seen[FIRST_GUIDED]

    plain = received(motion_guidance_scale=0.0, motion_guidance_record=True)
    output = received(motion_guidance_scale=1.0, motion_guidance_window=WINDOW)
    latent = received(motion_guidance_scale=1.0, motion_guidance_window=WINDOW, motion_guidance_mode="latent")
    # (B, C, F, H, W): frame 0 is the image's
    assert torch.equal(plain["sample"], output["sample"])  # same x_t: nothing before the window changed
    assert torch.equal(plain["model_output"][:, :, 0], output["model_output"][:, :, 0])
    assert not torch.equal(plain["model_output"][:, :, 1:], output["model_output"][:, :, 1:])
    assert torch.equal(plain["model_output"], latent["model_output"])  # latent mode edits x_t, not o ...
    assert torch.equal(plain["sample"][:, :, 0], latent["sample"][:, :, 0])  # ... and not the image frame
    assert not torch.equal(plain["sample"][:, :, 1:], latent["sample"][:, :, 1:])


def test_ti2v_saved_as_a_wan_pipeline_loads_for_image_to_video(tmp_path):
    """TI2V-5B is saved as a ``WanPipeline``; the same folder loads into the image-to-video pipeline
    (``pipeline_class("wan", image_to_video=True)``, what ``takes_image`` allows), which matches stock."""
    from lamo.pipelines import pipeline_class, takes_image

    stock_t2v, _ = BACKBONES["ti2v-t2v"].pipelines()
    stock_t2v.save_pretrained(tmp_path / "model")
    assert takes_image(dict(WanPipeline.load_config(tmp_path / "model")))
    kwargs = dict(tokenizer=None, text_encoder=None)
    lamo = pipeline_class("wan", image_to_video=True).from_pretrained(tmp_path / "model", **kwargs)
    stock = WanImageToVideoPipeline.from_pretrained(tmp_path / "model", **kwargs)
    for pipe in (lamo, stock):
        pipe.set_progress_bar_config(disable=True)
    assert isinstance(lamo, LaMoWanImageToVideoPipeline) and lamo.config.expand_timesteps
    backbone = BACKBONES["ti2v-i2v"]
    assert torch.equal(_run(lamo, backbone), _run(stock, backbone))
    guided = _run(lamo, backbone, motion_prior=backbone.prior(), motion_guidance_scale=1.0)
    assert not torch.equal(guided, _run(stock, backbone))
