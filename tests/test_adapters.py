"""Backbone adapters against the schedulers, VAEs and pipelines they stand for (tiny random models)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import CogVideoXPipeline, WanPipeline
from tiny_models import (COGVIDEOX_LATENT_CHANNELS, LATENT_FRAMES, NUM_FRAMES, TEXT_DIM, TEXT_LEN,
                         WAN_LATENT_CHANNELS, random_prompt_embeds, tiny_cogvideox_components,
                         tiny_motion_prior, tiny_pipeline, tiny_text_encoder, tiny_wan_components)

from lamo.adapters import (CogVideoXAdapter, WanAdapter, detect_family, family_of, frames_to_vae_input,
                           get_adapter, rotary_embeddings)
from lamo.pipelines import LaMoCogVideoXPipeline, LaMoWanPipeline

C_COG, C_WAN = COGVIDEOX_LATENT_CHANNELS, WAN_LATENT_CHANNELS


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ---------------------------------------------------------------------------------------- registry
def test_get_adapter_from_names_pipelines_and_transformers():
    cog, wan = tiny_cogvideox_components(), tiny_wan_components()
    for obj in ("cogvideox", "CogVideoX-2b", "CogVideoXPipeline", cog["transformer"],
                tiny_pipeline(CogVideoXPipeline, cog), tiny_pipeline(LaMoCogVideoXPipeline, cog),
                {"_class_name": "CogVideoXPipeline"}):
        assert isinstance(get_adapter(obj), CogVideoXAdapter), obj
    for obj in ("wan", "Wan2.1-T2V", "LaMoWanPipeline", wan["transformer"], tiny_pipeline(WanPipeline, wan),
                tiny_pipeline(LaMoWanPipeline, wan), {"_class_name": "WanPipeline"}):
        assert isinstance(get_adapter(obj), WanAdapter), obj
    for bad in ("hunyuan", torch.nn.Linear(2, 2), {"_class_name": "StableDiffusionPipeline"}):
        with pytest.raises(ValueError, match="family"):
            get_adapter(bad)


def test_detect_family_reads_model_index(tmp_path):
    index = {"_class_name": "WanPipeline", "transformer": ["diffusers", "WanTransformer3DModel"]}
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    assert detect_family(tmp_path) == "wan"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        detect_family(tmp_path / "empty")


# ---------------------------------------------------------------------------------------- noise levels
@pytest.mark.parametrize("kind", ["ddim", "dpm"])
@pytest.mark.parametrize("rope", [False, True])
def test_cogvideox_x0_matches_the_schedulers_own(kind, rope):
    """x̂0 from the adapter's ᾱ_t (after the SNR shift) = the scheduler's pred_original_sample, at every step."""
    sched = tiny_cogvideox_components(rope=rope, scheduler=kind)["scheduler"]
    adapter = CogVideoXAdapter()
    sched.set_timesteps(5)
    shape = (2, LATENT_FRAMES, C_COG, 4, 4)
    x, old = _rand(*shape, seed=1), None
    for i, t in enumerate(sched.timesteps):
        o = _rand(*shape, seed=10 + i)
        level = adapter.noise_level(sched, t, sample=x)
        assert level.prediction_type == "v_prediction"
        ours = adapter.x0(o, x, level)
        if kind == "ddim":
            out = sched.step(o, t, x)
            x, theirs = out.prev_sample, out.pred_original_sample
        else:
            back = sched.timesteps[i - 1] if i > 0 else None
            x, theirs = sched.step(o, old, t, back, x, generator=torch.Generator().manual_seed(i), return_dict=False)
            old = theirs
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    # the SNR shift is in the scheduler's own table, which the adapter reads
    assert adapter.alpha_bar(sched, 500) == pytest.approx(float(sched.alphas_cumprod[500]))


def test_wan_unipc_x0_matches_convert_model_output():
    """UniPC (flow sigmas, multistep): σ = sigmas[step_index] of the step about to run, at every step."""
    sched = tiny_wan_components(scheduler="unipc")["scheduler"]
    adapter = WanAdapter()
    sched.set_timesteps(6)
    shape = (1, C_WAN, LATENT_FRAMES, 4, 4)  # Wan layout (B, C, F, H, W)
    x = _rand(*shape, seed=1)
    for i, t in enumerate(sched.timesteps):
        o = _rand(*shape, seed=10 + i)
        level = adapter.noise_level(sched, t, sample=x)  # before step(): step_index None at i = 0
        assert level.prediction_type == "flow"
        ours = adapter.x0(o, x, level)
        if sched.step_index is None:
            sched._init_step_index(t)
        torch.testing.assert_close(ours, sched.convert_model_output(o, sample=x))
        x = sched.step(o, t, x, return_dict=False)[0]
    assert adapter.signal_weight(level) == pytest.approx(1 - float(sched.sigmas[len(sched.timesteps) - 1]))


def test_wan_flow_match_euler_sigma_is_the_steps_own():
    """Euler: x_{t'} = x_t + (σ' − σ)·v equals (1 − σ')·x̂0 + σ'·ε̂ only with the step's own σ."""
    sched = tiny_wan_components(scheduler="euler")["scheduler"]
    adapter = WanAdapter()
    sched.set_timesteps(5)
    shape = (1, C_WAN, LATENT_FRAMES, 4, 4)
    x = _rand(*shape, seed=1, dtype=torch.float32)
    for i, t in enumerate(sched.timesteps):
        o = _rand(*shape, seed=10 + i)
        level = adapter.noise_level(sched, t, sample=x)
        x0 = adapter.x0(o, x, level)
        eps = x0 + o  # v = ε − x0
        sigma_next = sched.sigmas[i + 1]
        x = sched.step(o, t, x, return_dict=False)[0]
        torch.testing.assert_close(x, (1 - sigma_next) * x0 + sigma_next * eps, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------- prompts
def test_prompt_pooling():
    embeds = random_prompt_embeds(2, true_lengths=[3, 7])
    pooled = WanAdapter().pool_prompt(embeds)  # over the true length only
    torch.testing.assert_close(pooled[0], embeds[0, :3].mean(0))
    torch.testing.assert_close(pooled[1], embeds[1, :7].mean(0))
    torch.testing.assert_close(CogVideoXAdapter().pool_prompt(embeds), embeds.mean(1))  # all 226 tokens count
    assert WanAdapter().pool_prompt(embeds.bfloat16()).dtype == torch.float32


@pytest.mark.parametrize("adapter, pipeline_cls",
                         [(CogVideoXAdapter(), CogVideoXPipeline), (WanAdapter(), WanPipeline)])
def test_encode_prompt_is_the_pipelines(adapter, pipeline_cls):
    text_encoder, tokenizer = tiny_text_encoder()
    prompts = ["a red ball bounces", "two balls collide on the floor"]
    embeds = adapter.encode_prompt(text_encoder, prompts, tokenizer=tokenizer, max_sequence_length=TEXT_LEN)
    assert embeds.shape == (2, TEXT_LEN, TEXT_DIM)
    pipe = pipeline_cls(tokenizer=tokenizer, text_encoder=text_encoder, vae=None, transformer=None, scheduler=None)
    reference, _ = pipe.encode_prompt(prompts, do_classifier_free_guidance=False, max_sequence_length=TEXT_LEN)
    assert torch.equal(embeds, reference)
    assert torch.equal(adapter.encode_prompt(pipe, prompts, max_sequence_length=TEXT_LEN), reference)
    if isinstance(adapter, WanAdapter):  # zero past the true length (4 and 6 words + </s>): pooled over those
        assert adapter.prompt_mask(embeds).sum(1).tolist() == [5, 7]
    with pytest.raises(ValueError, match="text encoder"):
        adapter.encode_prompt(tiny_pipeline(pipeline_cls, (tiny_wan_components if isinstance(adapter, WanAdapter)
                                                           else tiny_cogvideox_components)()), prompts)


# ---------------------------------------------------------------------------------------- latents
def _frames(seed=0, batch=None, frames=NUM_FRAMES):
    rng = np.random.default_rng(seed)
    shape = (frames, 32, 32, 3) if batch is None else (batch, frames, 32, 32, 3)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def test_frames_to_vae_input_layouts():
    vae = tiny_cogvideox_components()["vae"]
    frames = _frames(batch=2)
    x = frames_to_vae_input(frames, vae)
    assert x.shape == (2, 3, NUM_FRAMES, 32, 32) and x.min() >= -1 and x.max() <= 1
    as_float = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float() / 127.5 - 1  # (B, F, H, W, 3) -> (B, F, 3, H, W)
    torch.testing.assert_close(frames_to_vae_input(as_float, vae), x)
    with pytest.raises(ValueError, match="frames"):
        frames_to_vae_input(torch.zeros(2, 3, 4, 4), vae)


def test_cogvideox_encode_video_inverts_the_pipelines_decode():
    comps = tiny_cogvideox_components()
    vae, adapter = comps["vae"], CogVideoXAdapter()
    z = adapter.encode_video(vae, _frames(), sample=False)  # (B, F, C, H, W)
    assert z.shape == (1, LATENT_FRAMES, C_COG, 4, 4)
    raw = vae.encode(frames_to_vae_input(_frames(), vae)).latent_dist.mode()  # (B, C, F, H, W)
    torch.testing.assert_close(z, raw.permute(0, 2, 1, 3, 4) * vae.config.scaling_factor)
    # CogVideoXPipeline.decode_latents undoes exactly this scaling and permutation
    pipe = tiny_pipeline(CogVideoXPipeline, comps)
    with torch.no_grad():
        torch.testing.assert_close(pipe.decode_latents(z), vae.decode(raw).sample)


def test_wan_encode_video_normalises_as_the_pipeline_denormalises():
    vae, adapter = tiny_wan_components()["vae"], WanAdapter()
    z = adapter.encode_video(vae, _frames(), sample=False)
    assert z.shape == (1, LATENT_FRAMES, C_WAN, 4, 4)
    raw = vae.encode(frames_to_vae_input(_frames(), vae)).latent_dist.mode()  # (B, C, F, H, W)
    mean = torch.tensor(vae.config.latents_mean).view(1, C_WAN, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, C_WAN, 1, 1, 1)
    # WanPipeline decodes `latents / (1 / std) + mean`: that must give back the VAE's raw latents
    torch.testing.assert_close(z.permute(0, 2, 1, 3, 4) / (1.0 / std) + mean, raw)
    # posterior samples are reproducible with a generator
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    short = _frames(frames=5)  # 1 + 4k frames -> 1 + k latent frames
    assert torch.equal(adapter.encode_video(vae, short, generator=g()), adapter.encode_video(vae, short, generator=g()))


# ---------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("rope", [False, True])
def test_cogvideox_training_forward(rope):
    comps = tiny_cogvideox_components(rope=rope)
    transformer, sched, adapter = comps["transformer"], comps["scheduler"], CogVideoXAdapter()
    latents = _rand(2, LATENT_FRAMES, C_COG, 4, 4, seed=1)
    noise, prompt = _rand(*latents.shape, seed=2), random_prompt_embeds(2)
    t = torch.tensor([100, 800])
    out = adapter.training_forward(transformer, sched, latents, prompt, noise=noise, timesteps=t)
    assert out.pred.shape == out.target.shape == out.x0_pred.shape == latents.shape
    torch.testing.assert_close(out.noisy, sched.add_noise(latents, noise, t))
    torch.testing.assert_close(out.target, sched.get_velocity(latents, noise, t))
    torch.testing.assert_close(out.weight, sched.alphas_cumprod[t].float())
    # a perfect prediction (pred = v) gives back the clean latents
    torch.testing.assert_close(adapter.x0(out.target, out.noisy, out.noise_level), latents, rtol=1e-4, atol=1e-4)
    # the transformer call is the pipeline's: same RoPE as CogVideoXPipeline computes for this size
    pipe = tiny_pipeline(CogVideoXPipeline, comps)
    rope_emb = pipe._prepare_rotary_positional_embeddings(32, 32, LATENT_FRAMES, "cpu") if rope else None
    if rope:
        for ours, theirs in zip(rotary_embeddings(transformer, LATENT_FRAMES, 4, 4, "cpu"), rope_emb):
            assert torch.equal(ours, theirs)
    reference = transformer(hidden_states=out.noisy, encoder_hidden_states=prompt, timestep=t,
                            image_rotary_emb=rope_emb, return_dict=False)[0]
    assert torch.equal(out.pred, reference)
    # gradients reach the transformer through pred and x̂0; draws are reproducible with a generator
    ((out.pred - out.target) ** 2).mean().add(out.x0_pred.pow(2).mean()).backward()
    assert all(p.grad is not None for p in transformer.parameters() if p.requires_grad)
    a = adapter.training_forward(transformer, sched, latents, prompt, generator=torch.Generator().manual_seed(5))
    b = adapter.training_forward(transformer, sched, latents, prompt, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.timesteps, b.timesteps) and torch.equal(a.pred, b.pred)
    assert 0 <= int(a.timesteps.min()) and int(a.timesteps.max()) < sched.config.num_train_timesteps


@pytest.mark.parametrize("kind", ["unipc", "euler"])
def test_wan_training_forward(kind):
    comps = tiny_wan_components(scheduler=kind)
    transformer, sched, adapter = comps["transformer"], comps["scheduler"], WanAdapter()
    latents = _rand(2, LATENT_FRAMES, C_WAN, 4, 4, seed=1)  # (B, F, C, H, W)
    noise, prompt = _rand(*latents.shape, seed=2), random_prompt_embeds(2, true_lengths=[5, 9])
    t = torch.tensor([250.0, 900.0])
    out = adapter.training_forward(transformer, sched, latents, prompt, noise=noise, timesteps=t)
    sigma = (t / 1000).view(2, 1, 1, 1, 1)
    torch.testing.assert_close(out.noisy, (1 - sigma) * latents + sigma * noise)
    torch.testing.assert_close(out.target, noise - latents)
    torch.testing.assert_close(out.weight, 1 - t / 1000)
    torch.testing.assert_close(adapter.x0(out.target, out.noisy, out.noise_level), latents, rtol=1e-5, atol=1e-5)
    reference = transformer(hidden_states=out.noisy.permute(0, 2, 1, 3, 4), timestep=t, encoder_hidden_states=prompt,
                            return_dict=False)[0]  # the transformer's own (B, C, F, H, W)
    assert torch.equal(out.pred, reference.permute(0, 2, 1, 3, 4))
    # sampled σ follow the sampler's shift: σ = s·u / (1 + (s − 1)·u) ∈ (0, 1)
    drawn = adapter.training_forward(transformer, sched, latents, prompt, generator=torch.Generator().manual_seed(0))
    s = adapter.training_shift(sched)
    assert s == 3.0 and bool(((drawn.noise_level.sigma > 0) & (drawn.noise_level.sigma < 1)).all())
    torch.testing.assert_close(drawn.timesteps, drawn.noise_level.sigma * 1000)


def test_training_forward_rejects_wrong_latents():
    comps = tiny_cogvideox_components()
    with pytest.raises(ValueError, match="channels"):
        CogVideoXAdapter().training_forward(comps["transformer"], comps["scheduler"], _rand(1, 4, 3, 4, 4),
                                            random_prompt_embeds(1))
    comps = tiny_wan_components()
    with pytest.raises(ValueError, match=r"\(B, F, C, H, W\)"):
        WanAdapter().training_forward(comps["transformer"], comps["scheduler"], _rand(4, 4, 4, 4),
                                      random_prompt_embeds(1))


# ---------------------------------------------------------------------------------------- priors
def test_check_prior_refuses_other_backbones():
    cog = tiny_cogvideox_components()["transformer"]
    adapter = CogVideoXAdapter()
    adapter.check_prior(tiny_motion_prior(C_COG, backbone="cogvideox"), cog)
    adapter.check_prior(tiny_motion_prior(C_COG, backbone="CogVideoX-2b"), cog)  # a family member
    adapter.check_prior(tiny_motion_prior(C_COG), cog)  # unnamed
    for prior, what in [(tiny_motion_prior(C_COG + 4, backbone="cogvideox"), "latent channels"),
                        (tiny_motion_prior(C_COG, text_dim=TEXT_DIM * 2), "text embedding width"),
                        (tiny_motion_prior(C_COG, backbone="wan"), "backbone family")]:
        with pytest.raises(ValueError, match=what):
            adapter.check_prior(prior, cog)
    with pytest.raises(TypeError, match="MotionPrior"):
        adapter.check_prior(torch.nn.Linear(2, 2), cog)


@pytest.mark.parametrize("kind", ["unipc", "euler"])
def test_training_noise_stds_and_noise_variance(kind):
    """The release's predictor augmentation draws from the backbone's noise stds over its training timesteps."""
    from lamo.adapters.base import NoiseLevel

    cog = tiny_cogvideox_components()["scheduler"]
    stds = CogVideoXAdapter().training_noise_stds(cog)
    assert stds.shape == (cog.config.num_train_timesteps,) and stds.dtype == torch.float32
    assert torch.allclose(stds.pow(2), (1 - cog.alphas_cumprod).float(), atol=1e-6)
    wan = tiny_wan_components(scheduler=kind)["scheduler"]
    sigmas = WanAdapter().training_noise_stds(wan)
    assert sigmas.shape == (wan.config.num_train_timesteps,)
    assert bool((sigmas.diff() > 0).all()) and 0 < sigmas[0] < 0.01 and sigmas[-1] == 1.0
    assert torch.allclose(CogVideoXAdapter.noise_variance(NoiseLevel("v_prediction", alpha_bar=torch.tensor([0.3]))),
                          torch.tensor([0.7]))
    assert torch.allclose(WanAdapter.noise_variance(NoiseLevel("flow", sigma=torch.tensor([0.5]))), torch.tensor([0.25]))
