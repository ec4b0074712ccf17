"""The release's sampler (DPM, trailing timesteps, dynamic CFG, first-order steps), against a loop written here.

The reference below is the release's guided CogVideoX loop written out from its description: transformer
on [uncond, cond], output in fp32, the dynamic CFG scale ``1 + w·(1 − cos(π·((S − t)/S)^5))/2``, the CFG
mix, the released guidance update (tests/test_release_parity.py), then ``CogVideoXDPMScheduler.step``
with ``old_pred_original_sample=None`` at every step. Nothing here calls LaMo's guidance or pipeline code
to build it.
"""
import math

import pytest
import torch
from test_release_parity import release_prior, release_start, released_update
from tiny_models import (COGVIDEOX_LATENT_CHANNELS, TEXT_DIM, cogvideox_call_kwargs, random_prompt_embeds,
                         tiny_cogvideox_components, tiny_pipeline, tiny_wan_components)

from lamo.errors import InputError
from lamo.pipelines import (RELEASE_GUIDANCE_KWARGS, RELEASE_SAMPLING_KWARGS, LaMoCogVideoXPipeline, LaMoWanPipeline,
                            use_release_sampling)


def release_loop(pipe, prior, positive, negative, steps, seed, w=6.0, lam=15.0, ratio=0.8):
    """The release's guided loop on ``pipe``'s components, from a fresh trailing-spacing DPM scheduler."""
    from diffusers import CogVideoXDPMScheduler

    sched = CogVideoXDPMScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    sched.set_timesteps(steps)
    kw = cogvideox_call_kwargs()
    gen = torch.Generator().manual_seed(seed)
    latents = pipe.prepare_latents(positive.shape[0], COGVIDEOX_LATENT_CHANNELS, kw["num_frames"], kw["height"],
                                   kw["width"], positive.dtype, torch.device("cpu"), gen, None)
    embeds = torch.cat([negative, positive])
    pooled = positive.mean(1)
    start = release_start(steps, ratio)
    for i, t in enumerate(sched.timesteps):
        with torch.no_grad():
            out = pipe.transformer(hidden_states=torch.cat([latents] * 2), encoder_hidden_states=embeds,
                                   timestep=t.expand(2 * latents.shape[0]), return_dict=False)[0].float()
        scale = 1 + w * ((1 - math.cos(math.pi * ((steps - t.item()) / steps) ** 5.0)) / 2)
        uncond, text = out.chunk(2)
        v = uncond + scale * (text - uncond)
        if i >= start:
            v = released_update(v, latents, sched.alphas_cumprod[int(t)], prior, pooled, lam=lam)
        latents = sched.step(v, None, t, sched.timesteps[i - 1] if i > 0 else None, latents, eta=0.0,
                             generator=gen, return_dict=False)[0].to(positive.dtype)
    return latents


def test_release_sampling_settings():
    assert RELEASE_SAMPLING_KWARGS["use_dynamic_cfg"] is True
    assert (RELEASE_SAMPLING_KWARGS["num_inference_steps"], RELEASE_SAMPLING_KWARGS["guidance_scale"]) == (50, 6.0)
    assert (RELEASE_SAMPLING_KWARGS["height"], RELEASE_SAMPLING_KWARGS["width"]) == (480, 720)
    pipe = use_release_sampling(tiny_pipeline(LaMoCogVideoXPipeline, tiny_cogvideox_components()))
    from diffusers import CogVideoXDPMScheduler

    assert isinstance(pipe.scheduler, CogVideoXDPMScheduler)
    assert pipe.scheduler.config.timestep_spacing == "trailing"


@pytest.mark.parametrize("batch", [1, 2])
def test_release_sampler_is_the_release_loop(batch):
    steps = 6
    pipe = use_release_sampling(tiny_pipeline(LaMoCogVideoXPipeline, tiny_cogvideox_components()))
    prior = release_prior(COGVIDEOX_LATENT_CHANNELS, TEXT_DIM)
    positive, negative = random_prompt_embeds(batch, seed=1), random_prompt_embeds(batch, seed=2)
    ours = pipe(prompt_embeds=positive, negative_prompt_embeds=negative, generator=torch.Generator().manual_seed(3),
                motion_prior=prior, use_dynamic_cfg=True, **RELEASE_GUIDANCE_KWARGS,
                **cogvideox_call_kwargs(num_inference_steps=steps)).frames
    expected = release_loop(pipe, prior, positive, negative, steps, seed=3)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)
    # the stock (second-order) DPM loop is a different sampler: the test can tell them apart
    stock = tiny_pipeline(LaMoCogVideoXPipeline, tiny_cogvideox_components(scheduler="dpm"))
    other = stock(prompt_embeds=positive, negative_prompt_embeds=negative, generator=torch.Generator().manual_seed(3),
                  motion_prior=prior, use_dynamic_cfg=True, **RELEASE_GUIDANCE_KWARGS,
                  **cogvideox_call_kwargs(num_inference_steps=steps)).frames
    assert not torch.allclose(other, expected, rtol=1e-4, atol=1e-5)


def test_release_sampling_refuses_wan():
    pipe = tiny_pipeline(LaMoWanPipeline, tiny_wan_components())
    with pytest.raises(InputError, match="never samples with Wan"):
        use_release_sampling(pipe)
