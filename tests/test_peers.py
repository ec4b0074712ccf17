"""The FlowMo-style peer: training-free variance guidance through the backbone."""
import pytest
import torch
from diffusers import CogVideoXPipeline

from lamo.peers import FlowMoGuidance, flowmo_variance_loss
from tiny_models import cogvideox_call_kwargs, random_prompt_embeds, tiny_cogvideox_components, tiny_pipeline


def _call(pipe, steps_out=None, **kw):
    def cb(p, i, t, tensors):
        if steps_out is not None:
            steps_out.append(tensors["latents"].clone())
        return {}
    emb, neg = random_prompt_embeds(2, seed=1), random_prompt_embeds(2, seed=2)
    return pipe(prompt_embeds=emb, negative_prompt_embeds=neg, generator=torch.Generator().manual_seed(0),
                callback_on_step_end=cb, **cogvideox_call_kwargs(num_inference_steps=4, **kw)).frames


def test_variance_loss_hand_value_and_top_fraction():
    x0 = torch.zeros(1, 2, 1, 1, 4)
    x0[0, 1, 0, 0] = torch.tensor([2.0, 0.0, 4.0, 0.0])  # temporal variance per location: 1, 0, 4, 0
    assert torch.allclose(flowmo_variance_loss(x0, top_fraction=0.25), torch.tensor([4.0]))
    assert torch.allclose(flowmo_variance_loss(x0, top_fraction=1.0), torch.tensor([1.25]))


def test_flowmo_off_is_bit_identical_and_on_changes_only_guided_steps():
    pipe = tiny_pipeline(CogVideoXPipeline, tiny_cogvideox_components())
    ref_steps = []
    ref = _call(pipe, ref_steps)
    with FlowMoGuidance(pipe, scale=0.0):
        assert torch.equal(_call(pipe), ref)
    g_steps = []
    with FlowMoGuidance(pipe, scale=5.0, steps=2) as fm:
        out = _call(pipe, g_steps)
    assert len(fm.history) == 2 and not torch.equal(out, ref)
    with FlowMoGuidance(pipe, scale=1e-30, steps=4):  # x_t unchanged: the recomputed CFG mix is the pipeline's
        assert torch.allclose(_call(pipe), ref, atol=1e-6)
    assert not torch.equal(g_steps[0], ref_steps[0])  # the first step is guided
    assert "forward" not in vars(pipe.transformer) and "step" not in vars(pipe.scheduler)  # wrappers removed


def test_flowmo_lowers_the_variance_it_targets_and_backpropagates_through_the_backbone():
    pipe = tiny_pipeline(CogVideoXPipeline, tiny_cogvideox_components())
    fm = FlowMoGuidance(pipe, scale=0.5, steps=1)
    seen, forward = [], pipe.transformer.forward

    def spy(**kw):  # FlowMo re-runs whatever `forward` it finds: see whether its input carries grad
        seen.append(torch.is_grad_enabled() and kw["hidden_states"].requires_grad)
        return forward(**kw)

    pipe.transformer.forward = spy
    with fm:
        _call(pipe)
    del pipe.transformer.forward
    assert seen.count(True) == 1  # one backward through the backbone: what makes FlowMo expensive
    # the guided step moved x_t against the gradient of L: L re-measured at the new x_t is lower
    assert len(fm.history_after) == 1 and fm.history_after[0] < fm.history[0]
    with pytest.raises(ValueError, match="scale"):
        FlowMoGuidance(pipe, scale=-1)


def test_flowmo_on_wan_mixes_both_cfg_calls_and_lowers_its_loss():
    from diffusers import WanPipeline

    from tiny_models import tiny_wan_components, wan_call_kwargs

    pipe = tiny_pipeline(WanPipeline, tiny_wan_components(scheduler="euler"))
    emb = random_prompt_embeds(1, seed=1, true_lengths=[5])
    neg = random_prompt_embeds(1, seed=2, true_lengths=[7])

    def call():
        return pipe(prompt_embeds=emb, negative_prompt_embeds=neg, generator=torch.Generator().manual_seed(0),
                    **wan_call_kwargs(num_inference_steps=3)).frames

    ref = call()
    seen, forward = [], pipe.transformer.forward

    def spy(**kw):
        seen.append((torch.is_grad_enabled() and kw["hidden_states"].requires_grad,
                     kw["encoder_hidden_states"] is emb))
        return forward(**kw)

    pipe.transformer.forward = spy
    with FlowMoGuidance(pipe, scale=0.5, steps=1) as fm:
        out = call()
    del pipe.transformer.forward
    # 3 steps × 2 CFG calls, plus the guided step's re-runs: 2 with grad (cond, uncond) and 2 after the update
    assert len(seen) == 10 and [g for g, _ in seen].count(True) == 2
    assert [c for g, c in seen if g] == [True, False]  # conditional first, as WanPipeline calls them
    assert len(fm.history) == 1 and fm.history_after[0] < fm.history[0]
    assert not torch.equal(out, ref)
    with FlowMoGuidance(pipe, scale=0.0):
        assert torch.equal(call(), ref)
    with FlowMoGuidance(pipe, scale=1e-30, steps=3):  # x_t unchanged: the recomputed CFG mix is the pipeline's
        assert torch.allclose(call(), ref, atol=1e-6)


# ---------------------------------------------------------------------------------------- the release variant
def test_release_loss_hand_value_batch_independence_and_bad_input():
    from lamo.peers import flowmo_release_loss, release_steps

    v = torch.zeros(2, 3, 2, 1, 2)  # (B, F, C, H, W)
    v[0, :, 0, 0, 0] = torch.tensor([0.0, 1.0, 3.0])  # |Δ| = 1, 2 → population variance 0.25; channel 1: 0
    v[0, :, 1, 0, 1] = torch.tensor([0.0, 2.0, 2.0])  # |Δ| = 2, 0 → variance 1.0; channel 0: 0
    v[1] = 5.0 * v[0]  # Δ scale 5: variance ×25
    # per location: mean over the 2 channels → (0.125, 0.5); the maximum → 0.5 (no top-k, no normalisation)
    assert torch.allclose(flowmo_release_loss(v), torch.tensor([0.5, 12.5]))
    assert torch.allclose(flowmo_release_loss(v[1:]), torch.tensor([12.5]))  # one video's loss ignores the others
    with pytest.raises(ValueError, match="3 latent frames"):
        flowmo_release_loss(v[:, :2])
    with pytest.raises(ValueError, match=r"\(B, F, C, H, W\)"):
        flowmo_release_loss(v[0])
    assert [release_steps(s) for s in (50, 25, 100, 4, 1)] == [12, 6, 24, 1, 1]


def test_release_constructor_defaults_and_errors():
    pipe = tiny_pipeline(CogVideoXPipeline, tiny_cogvideox_components())
    fm = FlowMoGuidance(pipe, variant="release")
    assert (fm.scale, fm.steps, fm.guided_step_count(50), fm.guided_step_count(4)) == (1e-3, None, 12, 1)
    assert FlowMoGuidance(pipe, scale=0.1, steps=3, variant="release").guided_step_count(50) == 3
    style = FlowMoGuidance(pipe)  # the default stays the style ablation
    assert (style.variant, style.scale, style.steps, style.top_fraction) == ("style", 1.0, 8, 0.1)
    with pytest.raises(ValueError, match="unknown FlowMo variant 'paper'"):
        FlowMoGuidance(pipe, variant="paper")
    with pytest.raises(ValueError, match="top_fraction belongs to variant='style'"):
        FlowMoGuidance(pipe, top_fraction=0.2, variant="release")
    with pytest.raises(ValueError, match="steps"):
        FlowMoGuidance(pipe, steps=1.5, variant="release")
    with pytest.raises(ValueError, match="finite scale"):
        FlowMoGuidance(pipe, scale=float("nan"), variant="release")


def _release_reference(transformer, x, t, emb, neg, g):
    """The released update derived from its facts alone, for one Wan video (B = 1), with plain autograd.

    Returns ``(loss, v(x_t), x_t′)``: the loss on the CFG-mixed velocity laid out (F, H, W, C), the
    velocity before the update, and ``x_t`` after one fresh Adam step (lr ``g["lr"]``).
    """
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        c = transformer(hidden_states=x, timestep=t, encoder_hidden_states=emb, return_dict=False)[0]
        u = transformer(hidden_states=x, timestep=t, encoder_hidden_states=neg, return_dict=False)[0]
        v = u + g["cfg"] * (c - u)  # (1, C, F, H, W)
        video = v[0].permute(1, 2, 3, 0)  # (C, F, H, W) -> (F, H, W, C)
        d = (video[1:] - video[:-1]).abs()  # (F − 1, H, W, C)
        var = ((d - d.mean(0, keepdim=True)) ** 2).mean(0)  # population variance over frames: (H, W, C)
        loss = var.mean(-1).max()  # mean over channels, maximum over positions
        (grad,) = torch.autograd.grad(loss, x)
    # Adam's first step: m̂ = g, v̂ = g², so Δx = −lr·g / (√(g²) + ε), ε = 1e-8
    x_new = x.detach() - g["lr"] * grad / (grad.abs() + 1e-8)
    return loss.detach(), v.detach(), x_new, grad


def test_release_on_wan_matches_the_update_derived_from_the_release_facts():
    import functools

    from diffusers import WanPipeline

    from tiny_models import tiny_wan_components, wan_call_kwargs

    pipe = tiny_pipeline(WanPipeline, tiny_wan_components(scheduler="euler"))
    emb = random_prompt_embeds(1, seed=1, true_lengths=[5])
    neg = random_prompt_embeds(1, seed=2, true_lengths=[7])
    after = []

    def call():
        after.clear()
        return pipe(prompt_embeds=emb, negative_prompt_embeds=neg, generator=torch.Generator().manual_seed(0),
                    callback_on_step_end=lambda p, i, t, k: after.append(k["latents"].clone()) or {},
                    **wan_call_kwargs(num_inference_steps=4)).frames

    ref = call()
    ref_after = list(after)
    forward, step = pipe.transformer.forward, pipe.scheduler.step
    calls, steps = [], []

    def spy_forward(**kw):
        calls.append((torch.is_grad_enabled() and kw["hidden_states"].requires_grad,
                      kw["hidden_states"].detach().clone(), kw["timestep"]))
        return forward(**kw)

    @functools.wraps(step)
    def spy_step(model_output, timestep, sample, **kw):
        steps.append((model_output.clone(), sample.clone()))
        return step(model_output, timestep, sample, **kw)

    pipe.transformer.forward, pipe.scheduler.step = spy_forward, spy_step
    with FlowMoGuidance(pipe, variant="release") as fm:  # lr 1e-3; S = 4 → round(12·4/50) = 1 guided step
        out = call()
    del pipe.transformer.forward, pipe.scheduler.step
    sigmas = pipe.scheduler.sigmas

    # 4 steps × 2 CFG calls + one re-run of both branches with gradient, each a checkpoint segment that the
    # backward runs once more; nothing is recomputed after the update
    assert len(calls) == 12 and [g for g, _, _ in calls] == [False, False] + [True] * 4 + [False] * 6
    x, t = calls[0][1], calls[0][2]
    loss, v, x_new, grad = _release_reference(pipe.transformer, x, t, emb, neg, {"cfg": 5.0, "lr": 1e-3})
    assert fm.history == pytest.approx([float(loss)], rel=1e-5) and fm.guided_steps == [0]
    model_output, sample = steps[0]
    # one fresh Adam step: every element with a clear gradient moved by lr·sign(g)
    assert torch.allclose(sample, x_new, atol=1e-6)
    clear = grad.abs() > 1e-6
    assert clear.float().mean() > 0.9
    assert torch.allclose(((x - sample) / 1e-3)[clear], grad.sign()[clear], atol=1e-2)
    # the scheduler stepped from x_t′ with the stale velocity v(x_t): Euler x_{t+1} = x_t′ + (σ₁ − σ₀)·v(x_t)
    assert torch.allclose(model_output, v, atol=1e-5)
    assert torch.allclose(after[0], x_new + (sigmas[1] - sigmas[0]) * v, atol=1e-5)
    with torch.no_grad():  # …which is not what a recomputed velocity v(x_t′) would give
        c = pipe.transformer(hidden_states=x_new, timestep=t, encoder_hidden_states=emb, return_dict=False)[0]
        u = pipe.transformer(hidden_states=x_new, timestep=t, encoder_hidden_states=neg, return_dict=False)[0]
    assert (u + 5.0 * (c - u) - v).abs().max() > 100 * 1e-5
    assert torch.equal(steps[1][1], after[0]) and not torch.equal(after[0], ref_after[0])
    assert not torch.equal(out, ref)
    assert "forward" not in vars(pipe.transformer) and "step" not in vars(pipe.scheduler)  # wrappers removed
    with FlowMoGuidance(pipe, scale=0.0, variant="release"):
        assert torch.equal(call(), ref)


def test_release_on_cogvideox_runs_guides_the_first_steps_and_a_tiny_step_is_stock():
    pipe = tiny_pipeline(CogVideoXPipeline, tiny_cogvideox_components(rope=True, scheduler="dpm"))
    ref_steps = []
    ref = _call(pipe, ref_steps)
    import functools
    import inspect

    from lamo.peers import flowmo_release_loss

    seen, outputs, forward, step = [], [], pipe.transformer.forward, pipe.scheduler.step

    def spy(**kw):
        grad = torch.is_grad_enabled() and kw["hidden_states"].requires_grad
        seen.append(grad)
        if grad:  # a branch of the batched [uncond, cond] call: 2 prompts, not 2 × 2
            assert kw["hidden_states"].shape[0] == kw["encoder_hidden_states"].shape[0] == 2
        return forward(**kw)

    @functools.wraps(step)
    def step_spy(*args, **kw):  # CogVideoXDPMScheduler.step(model_output, old_pred_original_sample, timestep, …)
        outputs.append(inspect.signature(step).bind(*args, **kw).arguments["model_output"].clone())
        return step(*args, **kw)

    pipe.transformer.forward, pipe.scheduler.step = spy, step_spy
    with FlowMoGuidance(pipe, steps=2, variant="release") as fm:
        g_steps = []
        out = _call(pipe, g_steps)
        second = _call(pipe)  # a second call inside the block is guided from its own first step again
    del pipe.transformer.forward, pipe.scheduler.step
    # the loss is the release's on the pipeline's own CFG-mixed v-prediction (its branches re-run one by one)
    assert fm.history[:2] == pytest.approx([float(flowmo_release_loss(o).sum()) for o in outputs[:2]], rel=1e-4)
    # per call: 4 batched CFG calls; per guided step the two branches re-run with gradient one at a time, each
    # a checkpoint segment that the backward runs again (no recompute after the update)
    assert seen == [False, True, True, True, True, False, True, True, True, True, False, False] * 2
    assert fm.guided_steps == [0, 1, 0, 1] and len(fm.history) == 4 and fm.history_after == []
    assert torch.equal(out, second) and not torch.equal(out, ref)
    # zero terminal SNR: ᾱ = 0 at the first step, where CogVideoXDPMScheduler gives x_t the weight
    # √((1−ᾱ')/(1−ᾱ))·e^{−h} = 0 (h = ∞) — the first update is discarded; the second one counts
    assert torch.equal(g_steps[0], ref_steps[0]) and not torch.equal(g_steps[1], ref_steps[1])
    with FlowMoGuidance(pipe, scale=0.0, variant="release"):
        assert torch.equal(_call(pipe), ref)
    with FlowMoGuidance(pipe, scale=1e-30, steps=4, variant="release"):  # x_t unchanged to fp32: the stock output
        assert torch.allclose(_call(pipe), ref, atol=1e-6)
    assert "forward" not in vars(pipe.transformer) and "set_timesteps" not in vars(pipe.scheduler)


def test_release_on_cogvideox_ddim_moves_the_first_step():
    pipe = tiny_pipeline(CogVideoXPipeline, tiny_cogvideox_components())
    ref_steps, g_steps = [], []
    ref = _call(pipe, ref_steps)
    with FlowMoGuidance(pipe, variant="release") as fm:  # S = 4 → 1 guided step
        out = _call(pipe, g_steps)
    # DDIM at ᾱ = 0: x̂0 = −v (stale), ε̂ = x_t′, so x_{t−1} = √(1−ᾱ')·x_t′ − √ᾱ'·v carries the update
    assert fm.guided_steps == [0] and not torch.equal(g_steps[0], ref_steps[0]) and not torch.equal(out, ref)
