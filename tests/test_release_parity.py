"""The authors' released guidance update, derived here from its equations (docs/design.md §8), against LaMo's.

Released update, after the CFG mix, at a guided step with ``ᾱ = alphas_cumprod[t]``::

    x̂0 = √ᾱ·x_t − √(1 − ᾱ)·v                                   (fp32)
    L  = mean over (batch, pairs, C, H, W) of (x̂0_i + P(x̂0_i, prompt) − x̂0_{i+1})²
    v  ← v − 15·∂L/∂v                            from step int((1.0 − 0.8)·S) on, in floating point

``P`` is the release-architecture predictor applied to single frames with the mean-pooled positive
prompt. Nothing below calls LaMo's guidance code to build the reference.
"""
import functools
import inspect
import math
from fractions import Fraction

import pytest
import torch
from tiny_models import COGVIDEOX_LATENT_CHANNELS, TEXT_DIM, cogvideox_call_kwargs, random_prompt_embeds, \
    tiny_cogvideox_components, tiny_pipeline

from lamo import MotionPrior, MotionPriorGuidance
from lamo.guidance import RELEASE_GUIDANCE
from lamo.pipelines import RELEASE_GUIDANCE_KWARGS, RELEASE_SAMPLING_KWARGS, LaMoCogVideoXPipeline


def release_prior(channels=4, text_dim=8, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    p = MotionPrior.from_preset("release", latent_channels=channels, text_embed_dim=text_dim, hidden_channels=16,
                                num_blocks=2, cond_dim=8, backbone="cogvideox")
    with torch.no_grad():
        for prm in p.parameters():
            prm.normal_(0, 0.2)
    return p.to(dtype).eval()


def released_update(v, x, alpha_bar, prior, pooled, lam=15.0):
    """The release's guided model output, from the equations in the module docstring."""
    with torch.enable_grad():
        v32 = v.detach().float().requires_grad_()
        a = torch.as_tensor(alpha_bar, dtype=torch.float32)
        x0 = a.sqrt() * x.float() - (1 - a).sqrt() * v32  # (B, F, C, H, W)
        B, F, C, H, W = x0.shape
        frames = x0[:, :-1].reshape(B * (F - 1), C, H, W).to(v.dtype)  # the predictor runs in the latents' dtype
        prompt = pooled.repeat_interleave(F - 1, dim=0).to(v.dtype)
        field = prior(frames, prompt).float().reshape(B, F - 1, C, H, W)
        loss = (x0[:, :-1] + field - x0[:, 1:]).pow(2).mean()  # one mean over every element
        (grad,) = torch.autograd.grad(loss, v32)
    return (v32 - lam * grad).detach().to(v.dtype)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("budget", [None, 1e-9])  # all pairs in one call, or one pair per call
def test_guidance_with_release_settings_is_the_released_update(batch, budget):
    prior = release_prior()
    g = MotionPriorGuidance(prior, activation_budget_gib=budget, **RELEASE_GUIDANCE)
    start = release_start(50)
    assert g.tau == 1 and g.first_step(50) == start
    gen = torch.Generator().manual_seed(batch)
    v, x = torch.randn(2, batch, 6, 4, 6, 5, generator=gen)
    pooled = torch.randn(batch, 8, generator=gen)
    a = torch.tensor(0.63)
    out = g(v, x, step_index=start, num_steps=50, prediction_type="v_prediction", alpha_bar=a, cond=pooled)
    expected = released_update(v, x, a, prior, pooled)
    assert out.active and not torch.equal(out.model_output, v)
    torch.testing.assert_close(out.model_output, expected, rtol=1e-5, atol=1e-6)
    skipped = g(v, x, step_index=start - 1, num_steps=50, prediction_type="v_prediction", alpha_bar=a, cond=pooled)
    assert skipped.model_output is v  # before the release's start nothing is touched


def test_the_two_reductions_differ_by_batch_and_latent_size():
    prior = release_prior(dtype=torch.float64)
    v, x = torch.randn(2, 3, 5, 4, 6, 5, dtype=torch.float64)
    pooled = torch.randn(3, 8, dtype=torch.float64)
    grads = {}
    for reduction in ("sum", "element_mean"):
        g = MotionPriorGuidance(prior, reduction=reduction)
        _, grads[reduction] = g.loss_and_grad(v, x, "v_prediction", alpha_bar=0.5, cond=pooled)
    torch.testing.assert_close(grads["element_mean"] * (3 * 4 * 6 * 5), grads["sum"])  # B·C·H·W
    # so LaMo's default reduction with λ = 15 / (B·C·H·W) makes the released update (what `lamo sample` can do)
    ours = MotionPriorGuidance(prior, scale=15.0 / (3 * 4 * 6 * 5), window=0.8)
    out = ours(v, x, step_index=10, num_steps=50, prediction_type="v_prediction", alpha_bar=0.5, cond=pooled)
    torch.testing.assert_close(out.model_output, released_update(v, x, 0.5, prior, pooled))
    # ours: a sample's gradient does not depend on the rest of the batch; the release's does
    g = MotionPriorGuidance(prior)
    _, alone = g.loss_and_grad(v[:1], x[:1], "v_prediction", alpha_bar=0.5, cond=pooled[:1])
    torch.testing.assert_close(alone, grads["sum"][:1])


def release_start(total_steps, guidance_step_ratio=0.8):
    """The release's first guided step, as its guidance function computes it (Python floats, truncated)."""
    return int((1.0 - guidance_step_ratio) * total_steps)


def test_release_guides_41_of_50_steps():
    # (1.0 − 0.8) is 0.19999999999999996 in binary floating point: ·50 = 9.999…, truncated to 9
    assert release_start(50) == 9
    g = MotionPriorGuidance(release_prior(), **RELEASE_GUIDANCE)
    assert [s for s in range(50) if g.is_active(s, 50)] == list(range(9, 50))


@pytest.mark.parametrize("ratio", [0.8, 0.5, 0.7, 0.9, 0.3])
@pytest.mark.parametrize("steps", range(1, 101))
def test_release_window_starts_where_the_release_computes_it(steps, ratio):
    prior = release_prior()
    g = MotionPriorGuidance(prior, **{**RELEASE_GUIDANCE, "window": ratio})
    first = release_start(steps, ratio)
    assert g.first_step(steps) == first
    assert {s for s in range(steps) if g.is_active(s, steps)} == set(range(first, steps))
    # LaMo's own default rule is unchanged: ⌈(1 − ρ)·S⌉ of the exact product
    exact = (1 - Fraction(str(ratio))) * steps
    assert MotionPriorGuidance(prior, scale=1.0, window=ratio).first_step(steps) == math.ceil(exact)
    assert MotionPriorGuidance(prior, scale=1.0, window=ratio, window_rounding="floor").first_step(steps) == \
        math.floor(exact)


def test_pipeline_with_release_settings_gives_the_released_update_batch_2():
    """LaMoCogVideoXPipeline + RELEASE_GUIDANCE_KWARGS: what reaches scheduler.step is the released update
    of the CFG-mixed transformer output, at ᾱ of the step's timestep, with the mean positive prompt."""
    steps = 5  # guided from int((1.0 − 0.8)·5) = int(0.999…) = 0 on: every step
    pipe = tiny_pipeline(LaMoCogVideoXPipeline, tiny_cogvideox_components())
    prior = release_prior(COGVIDEOX_LATENT_CHANNELS, TEXT_DIM)
    raw, seen = [], []
    pipe.transformer.register_forward_hook(lambda m, i, o: raw.append(o[0].detach().clone()))
    step = pipe.scheduler.step

    @functools.wraps(step)
    def recording_step(*args, **kwargs):
        bound = inspect.signature(step).bind(*args, **kwargs)
        seen.append({k: bound.arguments[k] for k in ("model_output", "timestep", "sample")})
        return step(*args, **kwargs)

    pipe.scheduler.step = recording_step  # beneath LaMo's wrapper: it sees the guided output
    positive, negative = random_prompt_embeds(2, seed=1), random_prompt_embeds(2, seed=2)
    call = cogvideox_call_kwargs(num_inference_steps=steps)
    assert call["guidance_scale"] == RELEASE_SAMPLING_KWARGS["guidance_scale"] == 6.0
    pipe(prompt_embeds=positive, negative_prompt_embeds=negative, generator=torch.Generator().manual_seed(0),
         motion_prior=prior, **RELEASE_GUIDANCE_KWARGS, **call)
    assert len(seen) == len(raw) == steps
    guided = [r.step for r in pipe.motion_guidance_history if r.guided]
    start = release_start(steps)
    assert guided == list(range(start, steps)) == [0, 1, 2, 3, 4]
    for s, (out, got) in enumerate(zip(raw, seen)):
        uncond, text = out.float().chunk(2)
        mixed = uncond + 6.0 * (text - uncond)  # the CFG mix
        if s < start:
            assert torch.equal(got["model_output"], mixed)
            continue
        a = pipe.scheduler.alphas_cumprod[int(got["timestep"])]
        expected = released_update(mixed, got["sample"], a, prior, positive.mean(1))
        assert not torch.allclose(expected, mixed)
        torch.testing.assert_close(got["model_output"], expected, rtol=1e-5, atol=1e-6)
