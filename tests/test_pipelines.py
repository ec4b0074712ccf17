"""LaMo pipelines vs the stock diffusers pipelines, on tiny random CogVideoX, Wan, HunyuanVideo and LTX-Video backbones.

* guidance off (λ = 0, or no prior) → bit-identical output (``torch.equal``);
* guidance on → identical trajectory up to the first guided step, different from it on, lower
  ``L_guide`` along the way, and no gradient anywhere near the transformer;
* a prior trained for another backbone is refused with a clear ``ValueError``.
"""
from __future__ import annotations

import pytest
import torch
from diffusers import CogVideoXPipeline, HunyuanVideoPipeline, LTXPipeline, WanPipeline
from tiny_models import (COGVIDEOX_LATENT_CHANNELS, HUNYUAN_LATENT_CHANNELS, LATENT_FRAMES, LTX_LATENT_CHANNELS, TEXT_DIM,
                         WAN_LATENT_CHANNELS, cogvideox_call_kwargs, hunyuan_video_call_kwargs,
                         hunyuan_video_prompt_kwargs, ltx_call_kwargs, ltx_prompt_kwargs, random_prompt_embeds,
                         tiny_cogvideox_components, tiny_hunyuan_video_components, tiny_ltx_components,
                         tiny_motion_prior, tiny_pipeline, tiny_text_encoder, tiny_wan_components, wan_call_kwargs)

from lamo.adapters import CogVideoXAdapter, WanAdapter
from lamo.pipelines import LaMoCogVideoXPipeline, LaMoHunyuanVideoPipeline, LaMoLTXPipeline, LaMoWanPipeline
from lamo.pipelines.guided import GuidedSchedulerStep

pytest.register_assert_rewrite("pipeline_checks")  # its asserts report like the tests' own
from pipeline_checks import (Backbone, check_activation_budget, check_bit_identical_decoded,  # noqa: E402
                             check_guidance_window)


BACKBONES = {
    "cogvideox-2b-ddim": Backbone(lambda: tiny_cogvideox_components(), CogVideoXPipeline, LaMoCogVideoXPipeline,
                                  cogvideox_call_kwargs, "cogvideox", COGVIDEOX_LATENT_CHANNELS),
    "cogvideox-2b-dpm": Backbone(lambda: tiny_cogvideox_components(scheduler="dpm"), CogVideoXPipeline,
                                 LaMoCogVideoXPipeline, cogvideox_call_kwargs, "cogvideox", COGVIDEOX_LATENT_CHANNELS),
    "cogvideox-5b-ddim": Backbone(lambda: tiny_cogvideox_components(rope=True), CogVideoXPipeline,
                                  LaMoCogVideoXPipeline, cogvideox_call_kwargs, "cogvideox", COGVIDEOX_LATENT_CHANNELS),
    "cogvideox-5b-dpm": Backbone(lambda: tiny_cogvideox_components(rope=True, scheduler="dpm"), CogVideoXPipeline,
                                 LaMoCogVideoXPipeline, cogvideox_call_kwargs, "cogvideox", COGVIDEOX_LATENT_CHANNELS),
    "wan-unipc": Backbone(lambda: tiny_wan_components(scheduler="unipc"), WanPipeline, LaMoWanPipeline,
                          wan_call_kwargs, "wan", WAN_LATENT_CHANNELS, [5, 11]),
    "wan-euler": Backbone(lambda: tiny_wan_components(scheduler="euler"), WanPipeline, LaMoWanPipeline,
                          wan_call_kwargs, "wan", WAN_LATENT_CHANNELS, [5, 11]),
    "hunyuanvideo": Backbone(tiny_hunyuan_video_components, HunyuanVideoPipeline, LaMoHunyuanVideoPipeline,
                             hunyuan_video_call_kwargs, "hunyuanvideo", HUNYUAN_LATENT_CHANNELS,
                             prompt_kwargs=hunyuan_video_prompt_kwargs),
    # true classifier-free guidance: a second, negative-prompt branch beside the distilled guidance
    "hunyuanvideo-true-cfg": Backbone(tiny_hunyuan_video_components, HunyuanVideoPipeline, LaMoHunyuanVideoPipeline,
                                      lambda **kw: hunyuan_video_call_kwargs(true_cfg_scale=3.0, **kw),
                                      "hunyuanvideo", HUNYUAN_LATENT_CHANNELS, prompt_kwargs=hunyuan_video_prompt_kwargs),
    "ltx": Backbone(tiny_ltx_components, LTXPipeline, LaMoLTXPipeline, ltx_call_kwargs, "ltx", LTX_LATENT_CHANNELS,
                    prompt_kwargs=ltx_prompt_kwargs),
}
STEPS, WINDOW, FIRST_GUIDED = 5, 0.6, 2  # steps s ≥ ⌈(1 − 0.6)·5⌉ = 2 are guided


def _embeds(backbone: Backbone, batch: int = 1):
    lengths = backbone.true_lengths[:batch] if backbone.true_lengths else None
    return (random_prompt_embeds(batch, seed=1, true_lengths=lengths),
            random_prompt_embeds(batch, seed=2, true_lengths=[3] * batch if lengths else None))


def _run(pipe, backbone: Backbone, batch: int = 1, seed: int = 0, **kwargs):
    positive, negative = _embeds(backbone, batch)
    call = backbone.call_kwargs(num_inference_steps=STEPS)
    call.update(kwargs)
    return pipe(**backbone.prompt_kwargs(positive, negative), generator=torch.Generator().manual_seed(seed),
                **call).frames


# ---------------------------------------------------------------------------------------- guidance off
@pytest.mark.parametrize("name", list(BACKBONES))
def test_bit_identical_to_stock_when_guidance_is_off(name):
    backbone = BACKBONES[name]
    stock, lamo = backbone.pipelines()
    reference = _run(stock, backbone, batch=2)
    assert torch.equal(_run(lamo, backbone, batch=2), reference)  # no prior
    prior = backbone.prior()
    assert torch.equal(_run(lamo, backbone, batch=2, motion_prior=prior, motion_guidance_scale=0.0), reference)  # λ = 0
    lamo.motion_prior = prior
    assert torch.equal(_run(lamo, backbone, batch=2, motion_guidance_scale=0.0), reference)
    # measuring L_guide at every step does not change a bit either
    assert torch.equal(_run(lamo, backbone, batch=2, motion_guidance_scale=0.0, motion_guidance_record=True), reference)
    assert len(lamo.motion_guidance_history) == STEPS and not any(r.guided for r in lamo.motion_guidance_history)
    assert "step" not in vars(lamo.scheduler) and "encode_prompt" not in vars(lamo)  # nothing left wrapped


@pytest.mark.parametrize("name", ["cogvideox-2b-ddim", "wan-unipc", "hunyuanvideo", "ltx"])
def test_bit_identical_decoded_video(name):
    check_bit_identical_decoded(BACKBONES[name], _run)


# ---------------------------------------------------------------------------------------- guidance on
@pytest.mark.parametrize("name", list(BACKBONES))
def test_guidance_changes_the_trajectory_from_the_first_guided_step(name):
    check_guidance_window(BACKBONES[name], _run, WINDOW, FIRST_GUIDED, STEPS, every_step_recorded=True)


@pytest.mark.parametrize("name", ["cogvideox-5b-dpm", "wan-unipc", "hunyuanvideo-true-cfg", "ltx"])
def test_no_gradient_reaches_the_transformer(name):
    backbone = BACKBONES[name]
    _, lamo = backbone.pipelines()
    seen: list[tuple[bool, bool, bool]] = []

    def spy(module, args, kwargs, output):
        out = output[0] if isinstance(output, tuple) else output.sample
        seen.append((torch.is_grad_enabled(), out.requires_grad, out.grad_fn is not None))

    prior_grads: list[bool] = []
    handle = lamo.transformer.register_forward_hook(spy, with_kwargs=True)
    prior_handle = None
    try:
        prior = backbone.prior()
        prior_handle = prior.register_forward_hook(lambda m, a, o: prior_grads.append(o.requires_grad))
        _run(lamo, backbone, motion_prior=prior, motion_guidance_scale=1.0, motion_guidance_window=WINDOW)
    finally:
        handle.remove()
        if prior_handle is not None:
            prior_handle.remove()
    assert seen and all(state == (False, False, False) for state in seen)  # the transformer ran graph-free
    assert all(p.grad is None for p in lamo.transformer.parameters())
    assert prior_grads and all(prior_grads)  # the guidance graph: x̂0(o) → prior, under enable_grad
    assert all(p.grad is None for p in prior.parameters())  # the prior is frozen, not trained


@pytest.mark.parametrize("name", ["cogvideox-2b-ddim", "wan-euler", "hunyuanvideo", "ltx"])
def test_latent_mode_edits_the_noisy_latent(name):
    backbone = BACKBONES[name]
    _, lamo = backbone.pipelines()
    prior = backbone.prior()
    kw = dict(motion_prior=prior, motion_guidance_scale=1.0, motion_guidance_window=WINDOW)
    output_mode = _run(lamo, backbone, **kw)
    latent_mode = _run(lamo, backbone, motion_guidance_mode="latent", **kw)
    assert [r.step for r in lamo.motion_guidance_history] == list(range(FIRST_GUIDED, STEPS))
    assert not torch.equal(output_mode, latent_mode)
    assert not torch.equal(latent_mode, _run(lamo, backbone))


@pytest.mark.parametrize("name", ["cogvideox-2b-ddim", "wan-unipc", "hunyuanvideo-true-cfg", "ltx"])
def test_prior_is_conditioned_on_the_conditional_prompt(name):
    """With CFG the batch the transformer sees holds negative and positive prompts: pool the positive."""
    backbone = BACKBONES[name]
    _, lamo = backbone.pipelines()
    prior = backbone.prior()
    conds: list[torch.Tensor] = []
    def keep(module, args):  # (the prior's one-off activation count runs on the meta device)
        if args[0].device.type != "meta":
            conds.append(args[0].detach().clone())

    handle = prior.cond_proj.register_forward_pre_hook(keep)
    try:
        _run(lamo, backbone, batch=2, motion_prior=prior, motion_guidance_scale=0.5, motion_guidance_window=WINDOW)
    finally:
        handle.remove()
    positive, _ = _embeds(backbone, batch=2)
    pooled = lamo.adapter.pool_prompt(positive)  # (2, D); Wan: over each prompt's true length only
    pairs = LATENT_FRAMES - prior.config.tau
    assert len(conds) == STEPS - FIRST_GUIDED
    for c in conds:
        torch.testing.assert_close(c, pooled.repeat_interleave(pairs, dim=0))  # (B·P, D)


def test_condition_follows_num_videos_per_prompt():
    """Wan repeats each prompt num_videos_per_prompt times; so does the prior's condition."""
    te, tok = tiny_text_encoder()
    comps = dict(tiny_wan_components(), text_encoder=te, tokenizer=tok)
    lamo = tiny_pipeline(LaMoWanPipeline, comps)
    backbone = BACKBONES["wan-unipc"]
    prior = backbone.prior()
    prompts = ["a red ball falls", "two balls collide on the floor"]
    step = GuidedSchedulerStep(lamo, lamo.adapter, lamo_guidance := _guidance(prior), history=[])
    with step:
        out = lamo(prompt=prompts, num_videos_per_prompt=2, generator=torch.Generator().manual_seed(0),
                   **wan_call_kwargs(num_inference_steps=STEPS))
    assert out.frames.shape[0] == 4 and len(step.history) == STEPS - lamo_guidance.first_step(STEPS)
    embeds = lamo.adapter.encode_prompt(lamo, prompts, max_sequence_length=16)
    expected = lamo.adapter.pool_prompt(embeds).repeat_interleave(2, dim=0)  # p0, p0, p1, p1
    torch.testing.assert_close(step.condition(4, torch.device("cpu")), expected)


def _guidance(prior):
    from lamo import MotionPriorGuidance

    return MotionPriorGuidance(prior, scale=1.0, window=WINDOW)


@pytest.mark.parametrize("name", ["cogvideox-2b-ddim", "wan-unipc", "hunyuanvideo", "ltx"])
def test_pairs_split_to_the_activation_budget_sample_the_same_video(name):
    check_activation_budget(BACKBONES[name], _run, WINDOW)


# ---------------------------------------------------------------------------------------- safety
def test_wrappers_are_restored_after_an_exception():
    backbone = BACKBONES["cogvideox-2b-dpm"]
    stock, lamo = backbone.pipelines()

    def boom(_pipe, i, t, tensors):
        if i == FIRST_GUIDED + 1:
            raise RuntimeError("stop")
        return {}

    with pytest.raises(RuntimeError, match="stop"):
        _run(lamo, backbone, motion_prior=backbone.prior(), motion_guidance_scale=1.0,
             motion_guidance_window=WINDOW, callback_on_step_end=boom)
    assert "step" not in vars(lamo.scheduler) and "encode_prompt" not in vars(lamo)
    assert torch.equal(_run(lamo, backbone), _run(stock, backbone))


@pytest.mark.parametrize("name", ["cogvideox-2b-ddim", "wan-unipc", "hunyuanvideo", "ltx"])
def test_a_prior_for_another_backbone_is_refused(name):
    backbone = BACKBONES[name]
    _, lamo = backbone.pipelines()
    other_family = "wan" if backbone.family == "cogvideox" else "cogvideox"
    wrong = {
        "latent channels": tiny_motion_prior(backbone.channels + 4, backbone=backbone.family),
        "text embedding width": tiny_motion_prior(backbone.channels, text_dim=TEXT_DIM + 8),
        "backbone family": tiny_motion_prior(backbone.channels, backbone=other_family),
    }
    for what, prior in wrong.items():
        with pytest.raises(ValueError, match=what):
            _run(lamo, backbone, motion_prior=prior, motion_guidance_scale=1.0)
        with pytest.raises(ValueError, match=what):
            lamo.motion_prior = prior
    assert lamo.motion_prior is None
    with pytest.raises(ValueError, match="needs a motion prior"):
        _run(lamo, backbone, motion_guidance_scale=1.0)
    with pytest.raises(ValueError, match="≥ 0"):
        _run(lamo, backbone, motion_prior=backbone.prior(), motion_guidance_scale=-1.0)
    with pytest.raises(ValueError, match="motion_guidance_mode"):
        _run(lamo, backbone, motion_prior=backbone.prior(), motion_guidance_scale=1.0, motion_guidance_mode="x")


def test_load_motion_prior_and_from_pretrained(tmp_path):
    backbone = BACKBONES["wan-euler"]
    stock, _ = backbone.pipelines()
    stock.save_pretrained(tmp_path / "model")
    lamo = LaMoWanPipeline.from_pretrained(tmp_path / "model", tokenizer=None, text_encoder=None)
    lamo.set_progress_bar_config(disable=True)
    assert isinstance(lamo.adapter, WanAdapter) and isinstance(LaMoCogVideoXPipeline.adapter, CogVideoXAdapter)
    backbone.prior().save_pretrained(tmp_path / "prior")
    prior = lamo.load_motion_prior(tmp_path / "prior")
    assert lamo.motion_prior is prior and prior.dtype == torch.float32  # beside a float32 transformer
    # compare with the stock pipeline loaded from the same folder: a loaded model can differ from the one
    # it was saved from in the last bit (diffusers' loading path), LaMo's pipeline must add nothing to that
    stock = type(stock).from_pretrained(tmp_path / "model", tokenizer=None, text_encoder=None)
    stock.set_progress_bar_config(disable=True)
    assert torch.equal(_run(lamo, backbone, motion_guidance_scale=0.0), _run(stock, backbone))
    guided = _run(lamo, backbone, motion_guidance_scale=1.0)
    assert not torch.equal(guided, _run(stock, backbone))
    # λ left out with a prior that records no settings: the default λ = 1 (it was "off" before priors carried settings)
    assert torch.equal(_run(lamo, backbone), guided)
    assert lamo.motion_guidance_settings["sources"]["motion_guidance_scale"] == "default"
    tiny_motion_prior(backbone.channels, backbone="cogvideox").save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="backbone family"):
        lamo.load_motion_prior(tmp_path / "other")


def test_load_motion_prior_dtype_follows_a_bf16_transformer(tmp_path):
    backbone = BACKBONES["cogvideox-2b-ddim"]
    _, lamo = backbone.pipelines()
    backbone.prior().save_pretrained(tmp_path / "prior")
    lamo.transformer.to(torch.bfloat16)
    assert lamo.load_motion_prior(tmp_path / "prior").dtype == torch.bfloat16
    assert lamo.load_motion_prior(tmp_path / "prior", torch_dtype=torch.float32).dtype == torch.float32
    lamo.transformer.to(torch.float16)  # fp16 transformer: the prior stays in fp32 (bf16 is not everywhere)
    assert lamo.load_motion_prior(tmp_path / "prior").dtype == torch.float32
