"""Image-to-video LaMo pipelines vs the stock diffusers ones, on tiny random CogVideoX, Wan and LTX-Video I2V backbones.

An I2V transformer takes the noisy latents *and* an image condition (CogVideoX: ``2·C`` channels; Wan:
``2·C + 4``) but predicts ``C``; the scheduler, the prior and guidance work on those ``C`` channels. LTX-Video
keeps the image as a clean first latent frame instead and steps the frames after it.

* guidance off (λ = 0, or no prior) → bit-identical output (``torch.equal``), latents and decoded video;
* guidance on → identical trajectory up to the first guided step, different from it on, lower
  ``L_guide``, and no gradient into the transformer (nor the image encoder);
* the prior must fit the ``C`` denoised channels, not the transformer's input channels.
"""
from __future__ import annotations

import pytest
import torch
from diffusers import (CogVideoXImageToVideoPipeline, HunyuanVideoImageToVideoPipeline, LTXImageToVideoPipeline,
                       WanImageToVideoPipeline)
from tiny_models import (COGVIDEOX_LATENT_CHANNELS, HUNYUAN_LATENT_CHANNELS, LTX_LATENT_CHANNELS, TEXT_DIM,
                         WAN_LATENT_CHANNELS, cogvideox_call_kwargs, hunyuan_video_call_kwargs,
                         hunyuan_video_prompt_kwargs, ltx_call_kwargs, ltx_prompt_kwargs, random_prompt_embeds,
                         tiny_cogvideox_components, tiny_cogvideox_i2v_components, tiny_hunyuan_video_components,
                         tiny_image, tiny_ltx_components, tiny_motion_prior, tiny_wan_components,
                         tiny_wan_i2v_components, wan_call_kwargs)

from lamo.adapters import CogVideoXAdapter, WanAdapter, get_adapter
from lamo.pipelines import (LaMoCogVideoXImageToVideoPipeline, LaMoCogVideoXPipeline,
                            LaMoHunyuanVideoImageToVideoPipeline, LaMoLTXImageToVideoPipeline,
                            LaMoWanImageToVideoPipeline, LaMoWanPipeline, is_image_to_video_model, pipeline_class,
                            takes_image)

pytest.register_assert_rewrite("pipeline_checks")  # its asserts report like the tests' own
from pipeline_checks import Backbone, check_bit_identical_decoded, check_guidance_window  # noqa: E402

C_COG, C_WAN = COGVIDEOX_LATENT_CHANNELS, WAN_LATENT_CHANNELS
BACKBONES = {
    "cogvideox-i2v-ddim": Backbone(lambda: tiny_cogvideox_i2v_components(), CogVideoXImageToVideoPipeline,
                                   LaMoCogVideoXImageToVideoPipeline, cogvideox_call_kwargs, "cogvideox", C_COG,
                                   condition_channels=C_COG),
    "cogvideox-i2v-5b-dpm": Backbone(lambda: tiny_cogvideox_i2v_components(rope=True, scheduler="dpm"),
                                     CogVideoXImageToVideoPipeline, LaMoCogVideoXImageToVideoPipeline,
                                     cogvideox_call_kwargs, "cogvideox", C_COG, condition_channels=C_COG),
    "wan2.1-i2v-unipc": Backbone(lambda: tiny_wan_i2v_components(style="2.1"), WanImageToVideoPipeline,
                                 LaMoWanImageToVideoPipeline, wan_call_kwargs, "wan", C_WAN, [5], C_WAN + 4),
    "wan2.2-i2v-euler": Backbone(lambda: tiny_wan_i2v_components(style="2.2", scheduler="euler"),
                                 WanImageToVideoPipeline, LaMoWanImageToVideoPipeline, wan_call_kwargs, "wan", C_WAN,
                                 [5], C_WAN + 4),
    "ltx-i2v": Backbone(tiny_ltx_components, LTXImageToVideoPipeline, LaMoLTXImageToVideoPipeline, ltx_call_kwargs,
                        "ltx", LTX_LATENT_CHANNELS, prompt_kwargs=ltx_prompt_kwargs),
    "hunyuanvideo-i2v-concat": Backbone(lambda: tiny_hunyuan_video_components(image_condition_type="latent_concat"),
                                        HunyuanVideoImageToVideoPipeline, LaMoHunyuanVideoImageToVideoPipeline,
                                        hunyuan_video_call_kwargs, "hunyuanvideo", HUNYUAN_LATENT_CHANNELS,
                                        condition_channels=HUNYUAN_LATENT_CHANNELS + 1,
                                        prompt_kwargs=hunyuan_video_prompt_kwargs),
    "hunyuanvideo-i2v-token-replace": Backbone(
        lambda: tiny_hunyuan_video_components(image_condition_type="token_replace"), HunyuanVideoImageToVideoPipeline,
        LaMoHunyuanVideoImageToVideoPipeline, hunyuan_video_call_kwargs, "hunyuanvideo", HUNYUAN_LATENT_CHANNELS,
        prompt_kwargs=hunyuan_video_prompt_kwargs),
}
# of the latents a call returns (LTX: packed tokens)
CHANNEL_DIM = {"cogvideox": 2, "wan": 1, "hunyuanvideo": 1, "ltx": -1}
STEPS, WINDOW, FIRST_GUIDED = 5, 0.6, 2  # steps s ≥ ⌈(1 − 0.6)·5⌉ = 2 are guided


def _run(pipe, backbone: Backbone, seed: int = 0, **kwargs):
    lengths = backbone.true_lengths
    call = backbone.call_kwargs(num_inference_steps=STEPS)
    call.update(kwargs)
    prompts = backbone.prompt_kwargs(random_prompt_embeds(1, seed=1, true_lengths=lengths),
                                     random_prompt_embeds(1, seed=2, true_lengths=[3] if lengths else None))
    return pipe(image=tiny_image(), generator=torch.Generator().manual_seed(seed), **prompts, **call).frames


# ---------------------------------------------------------------------------------------- guidance off
@pytest.mark.parametrize("name", list(BACKBONES))
def test_i2v_bit_identical_to_stock_when_guidance_is_off(name):
    backbone = BACKBONES[name]
    stock, lamo = backbone.pipelines()
    reference = _run(stock, backbone)
    assert reference.shape[CHANNEL_DIM[backbone.family]] == backbone.channels  # C, not the input's
    assert torch.equal(_run(lamo, backbone), reference)  # no prior
    prior = backbone.prior()
    assert torch.equal(_run(lamo, backbone, motion_prior=prior, motion_guidance_scale=0.0), reference)  # λ = 0
    lamo.motion_prior = prior
    assert torch.equal(_run(lamo, backbone, motion_guidance_scale=0.0), reference)
    assert torch.equal(_run(lamo, backbone, motion_guidance_scale=0.0, motion_guidance_record=True), reference)  # measuring changes nothing
    assert len(lamo.motion_guidance_history) == STEPS and not any(r.guided for r in lamo.motion_guidance_history)
    assert all(r.transformer == "transformer" for r in lamo.motion_guidance_history)
    assert not {"step"} & set(vars(lamo.scheduler)) and not {"encode_prompt", "prepare_latents"} & set(vars(lamo))


@pytest.mark.parametrize("name", ["cogvideox-i2v-ddim", "wan2.1-i2v-unipc", "ltx-i2v", "hunyuanvideo-i2v-concat"])
def test_i2v_bit_identical_decoded_video(name):
    check_bit_identical_decoded(BACKBONES[name], _run)


# ---------------------------------------------------------------------------------------- guidance on
@pytest.mark.parametrize("name", list(BACKBONES))
def test_i2v_guidance_changes_the_trajectory_from_the_first_guided_step(name):
    check_guidance_window(BACKBONES[name], _run, WINDOW, FIRST_GUIDED, STEPS)


@pytest.mark.parametrize("name", ["cogvideox-i2v-5b-dpm", "wan2.1-i2v-unipc", "ltx-i2v",
                                  "hunyuanvideo-i2v-token-replace"])
@pytest.mark.parametrize("mode", ["output", "latent"])
def test_i2v_no_gradient_reaches_the_backbone(name, mode):
    backbone = BACKBONES[name]
    _, lamo = backbone.pipelines()
    seen: list[tuple[bool, bool]] = []

    def spy(module, args, kwargs, output):
        out = output[0] if isinstance(output, tuple) else output.sample
        seen.append((torch.is_grad_enabled(), out.requires_grad))

    modules = [m for m in (lamo.transformer, getattr(lamo, "image_encoder", None), lamo.vae) if m is not None]
    handles = [lamo.transformer.register_forward_hook(spy, with_kwargs=True)]
    try:
        prior = backbone.prior()
        _run(lamo, backbone, motion_prior=prior, motion_guidance_scale=1.0, motion_guidance_window=WINDOW,
             motion_guidance_mode=mode)
    finally:
        for h in handles:
            h.remove()
    assert len(seen) >= STEPS and all(state == (False, False) for state in seen)  # the transformer ran graph-free
    assert [r.step for r in lamo.motion_guidance_history] == list(range(FIRST_GUIDED, STEPS))
    for module in [*modules, prior]:
        assert all(p.grad is None for p in module.parameters())


# ---------------------------------------------------------------------------------------- the prior
@pytest.mark.parametrize("name", ["cogvideox-i2v-ddim", "wan2.1-i2v-unipc", "hunyuanvideo-i2v-concat"])
def test_i2v_prior_fits_the_denoised_channels_not_the_input(name):
    backbone = BACKBONES[name]
    _, lamo = backbone.pipelines()
    transformer = lamo.transformer
    adapter = get_adapter(lamo)
    assert adapter is lamo.adapter and isinstance(get_adapter(transformer), type(adapter))
    assert adapter.latent_channels(transformer) == backbone.channels
    assert adapter.condition_channels(transformer) == backbone.condition_channels
    assert adapter.input_channels(transformer) == transformer.config.in_channels == \
        backbone.channels + backbone.condition_channels
    assert adapter.is_image_to_video(transformer)
    lamo.motion_prior = backbone.prior()  # C channels: fits
    for channels in (adapter.input_channels(transformer), backbone.channels + 4):
        with pytest.raises(ValueError, match="latent channels"):
            lamo.motion_prior = tiny_motion_prior(channels, backbone=backbone.family)
    with pytest.raises(ValueError, match="text embedding width"):
        _run(lamo, backbone, motion_prior=tiny_motion_prior(backbone.channels, text_dim=TEXT_DIM + 8),
             motion_guidance_scale=1.0)


def test_text_to_video_transformers_have_no_condition_channels():
    for adapter, comps in ((CogVideoXAdapter(), tiny_cogvideox_components()), (WanAdapter(), tiny_wan_components())):
        t = comps["transformer"]
        assert adapter.condition_channels(t) == 0 and not adapter.is_image_to_video(t)
        assert adapter.input_channels(t) == adapter.latent_channels(t)


@pytest.mark.parametrize("name", ["cogvideox-i2v-ddim", "wan2.2-i2v-euler"])
def test_training_forward_refuses_an_i2v_transformer(name):
    backbone = BACKBONES[name]
    comps = backbone.components()
    adapter = get_adapter(comps["transformer"])
    latents = torch.randn(1, 4, backbone.channels, 4, 4)
    with pytest.raises(ValueError, match="image-to-video"):
        adapter.training_forward(comps["transformer"], comps["scheduler"], latents,
                                 random_prompt_embeds(1), timesteps=torch.tensor([500]))


def test_sample_for_x0_inverts_x0():
    """``adapter.sample_for_x0`` is the x_t at which an output implies a given x̂0, for every parametrisation."""
    from lamo.adapters import NoiseLevel

    g = torch.Generator().manual_seed(0)
    o, x0 = (torch.randn(2, 3, 4, 5, 5, generator=g, dtype=torch.float64) for _ in range(2))
    adapter = WanAdapter()
    for level in (NoiseLevel("flow", sigma=torch.tensor([0.3, 0.9], dtype=torch.float64)),
                  NoiseLevel("v_prediction", alpha_bar=torch.tensor(0.4, dtype=torch.float64)),
                  NoiseLevel("epsilon", alpha_bar=torch.tensor([0.2, 0.7], dtype=torch.float64))):
        x_t = adapter.sample_for_x0(o, x0, level)
        torch.testing.assert_close(adapter.x0(o, x_t, level), x0, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------- finding the class
def test_pipeline_class_and_is_image_to_video_model(tmp_path):
    assert pipeline_class("cogvideox") is LaMoCogVideoXPipeline and pipeline_class("wan") is LaMoWanPipeline
    assert pipeline_class("cogvideox", image_to_video=True) is LaMoCogVideoXImageToVideoPipeline
    assert pipeline_class("wan", image_to_video=True) is LaMoWanImageToVideoPipeline
    assert pipeline_class("ltx", image_to_video=True) is LaMoLTXImageToVideoPipeline
    assert pipeline_class("hunyuanvideo", image_to_video=True) is LaMoHunyuanVideoImageToVideoPipeline
    with pytest.raises(ValueError, match="hunyuan"):
        pipeline_class("hunyuan", image_to_video=True)
    for name in ("CogVideoXImageToVideoPipeline", "WanImageToVideoPipeline", "LaMoWanImageToVideoPipeline",
                 "LTXImageToVideoPipeline", "HunyuanVideoImageToVideoPipeline"):
        assert is_image_to_video_model({"_class_name": name})
    for name in ("CogVideoXPipeline", "WanPipeline", "LaMoWanPipeline"):
        assert not is_image_to_video_model({"_class_name": name}) and not takes_image({"_class_name": name})
    assert takes_image({"_class_name": "WanImageToVideoPipeline", "expand_timesteps": False})
    ti2v = {"_class_name": "WanPipeline", "expand_timesteps": True}  # Wan 2.2 TI2V-5B: text- and image-to-video
    assert takes_image(ti2v) and not is_image_to_video_model(ti2v)

    # a saved stock I2V pipeline loads into the LaMo one, and gives the same video
    backbone = BACKBONES["wan2.2-i2v-euler"]
    stock, _ = backbone.pipelines()
    stock.save_pretrained(tmp_path / "model")
    kwargs = dict(tokenizer=None, text_encoder=None, image_encoder=None, image_processor=None)
    lamo = LaMoWanImageToVideoPipeline.from_pretrained(tmp_path / "model", **kwargs)
    lamo.set_progress_bar_config(disable=True)
    stock = WanImageToVideoPipeline.from_pretrained(tmp_path / "model", **kwargs)
    stock.set_progress_bar_config(disable=True)
    assert torch.equal(_run(lamo, backbone), _run(stock, backbone))
    assert not torch.equal(_run(lamo, backbone, motion_prior=backbone.prior(), motion_guidance_scale=1.0),
                           _run(stock, backbone))
