"""MotionPriorGuidance's two variants, ``stop_gradient`` (one-sided residual) and ``schedule="noise"``
(λ_t = λ·√(1 − ᾱ_t), λ·σ_t for flow), and their pipeline arguments: off by default and then today's update
bit for bit; on, the gradient and the step size each one promises; bad values refused clearly."""
from __future__ import annotations

import pytest
import torch
from diffusers import CogVideoXPipeline
from tiny_models import (COGVIDEOX_LATENT_CHANNELS, cogvideox_call_kwargs, random_prompt_embeds,
                         tiny_cogvideox_components, tiny_motion_prior, tiny_pipeline)

from lamo import MotionPrior, MotionPriorGuidance
from lamo.guidance import GUIDANCE_SCHEDULES, guidance_loss
from lamo.parametrization import predict_x0
from lamo.pipelines import LaMoCogVideoXPipeline

LEVELS = {"epsilon": dict(alpha_bar=torch.tensor([0.7, 0.4])), "v_prediction": dict(alpha_bar=torch.tensor([0.7, 0.4])),
          "flow": dict(sigma=torch.tensor([0.3, 0.6]))}


def random_prior(tau: int, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    p = MotionPrior.from_preset("tiny", latent_channels=3, text_embed_dim=8, tau=tau)
    for prm in p.parameters():
        torch.nn.init.normal_(prm, std=0.2)
    return p.to(dtype)


def inputs(frames: int = 5, dtype=torch.float64):
    g = torch.Generator().manual_seed(3)
    o, x = (torch.randn(2, frames, 3, 4, 4, generator=g, dtype=dtype) for _ in range(2))
    return o, x, torch.randn(2, 8, generator=g, dtype=dtype)


def guide(g, o, x, ptype, cond, step=9, steps=10):
    return g(o, x, step_index=step, num_steps=steps, prediction_type=ptype, cond=cond,
             **{k: v.to(o.dtype) for k, v in LEVELS[ptype].items()})


# ---------------------------------------------------------------------------------------- stop-gradient
@pytest.mark.parametrize("tau", [1, 2])
@pytest.mark.parametrize("ptype", ["epsilon", "v_prediction", "flow"])
def test_stop_gradient_leaves_prior_inputs_alone_and_pulls_only_the_later_frames(tau, ptype):
    prior, (o, x, cond) = random_prior(tau), inputs()
    lam = 0.5
    one_sided = guide(MotionPriorGuidance(prior, scale=lam, stop_gradient=True), o, x, ptype, cond)
    grad = (o - one_sided.model_output) / lam  # (B, F, C, H, W)
    assert torch.all(grad[:, :tau] == 0)  # frames read only as the prior's input get no gradient
    assert torch.all(grad[:, tau:].abs().sum(dim=(2, 3, 4)) > 0)  # every later frame is pulled
    # the reference: autograd through x̂0_{i+τ} only, the prediction held fixed
    lv = {k: v.double() for k, v in LEVELS[ptype].items()}
    o_ = o.clone().requires_grad_()
    x0 = predict_x0(o_, x, ptype, **lv)
    target = (x0[:, :-tau] + prior.predict_motion(x0, cond, tau)).detach()
    loss = (target - x0[:, tau:]).pow(2).sum(dim=(2, 3, 4)).mean(1)  # (B,)
    (expected,) = torch.autograd.grad(loss.sum(), o_)
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)
    # the loss value is the two-sided one: only its gradient changes
    two_sided = guide(MotionPriorGuidance(prior, scale=lam), o, x, ptype, cond)
    torch.testing.assert_close(one_sided.loss, two_sided.loss, rtol=0, atol=0)
    torch.testing.assert_close(one_sided.loss, loss.detach(), rtol=1e-12, atol=0)
    assert not torch.allclose(one_sided.model_output, two_sided.model_output)


@pytest.mark.parametrize("mode", ["output", "latent"])
def test_stop_gradient_is_the_same_through_the_chunked_path(mode):
    prior, (o, x, cond) = random_prior(1), inputs(frames=6)
    whole = MotionPriorGuidance(prior, scale=0.5, stop_gradient=True, mode=mode, activation_budget_gib=None)
    chunked = MotionPriorGuidance(prior, scale=0.5, stop_gradient=True, mode=mode, activation_budget_gib=1e-12)
    assert chunked.pairs_per_call(2, 5, 4, 4) == 1  # one pair per call
    a, b = guide(whole, o, x, "v_prediction", cond), guide(chunked, o, x, "v_prediction", cond)
    torch.testing.assert_close(b.loss, a.loss, rtol=1e-12, atol=0)
    torch.testing.assert_close(b.model_output, a.model_output, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(b.sample, a.sample, rtol=1e-12, atol=1e-14)
    if mode == "latent":
        assert torch.all(a.sample[:, 0] == x[:, 0]) and not torch.equal(a.sample[:, 1:], x[:, 1:])


def test_guidance_loss_stop_gradient_builds_no_graph_through_the_prior():
    prior = random_prior(1).requires_grad_(True)
    x0 = torch.randn(2, 4, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    guidance_loss(prior, x0, None, 1, stop_gradient=True).sum().backward()
    assert all(p.grad is None for p in prior.parameters())
    assert torch.all(x0.grad[:, 0] == 0) and torch.all(x0.grad[:, 1:].abs().sum(dim=(2, 3, 4)) > 0)


# ---------------------------------------------------------------------------------------- defaults
@pytest.mark.parametrize("mode", ["output", "latent"])
@pytest.mark.parametrize("ptype", ["epsilon", "flow"])
def test_defaults_are_todays_update_bit_for_bit(mode, ptype):
    prior, (o, x, cond) = random_prior(1, torch.float32), inputs(dtype=torch.float32)
    today = MotionPriorGuidance(prior, scale=0.7, mode=mode)
    assert today.stop_gradient is False and today.schedule == "constant"
    explicit = MotionPriorGuidance(prior, scale=0.7, mode=mode, stop_gradient=False, schedule="constant")
    a, b = guide(today, o, x, ptype, cond), guide(explicit, o, x, ptype, cond)
    assert torch.equal(a.model_output, b.model_output) and torch.equal(a.sample, b.sample)
    assert today.step_scale(ptype, o, **LEVELS[ptype]) == 0.7  # the float λ itself, as before
    # … and that is o − λ·∇_o L_guide (or x − λ·∇_x), the gradient taken by autograd here
    o_, x_ = o.clone().requires_grad_(mode == "output"), x.clone().requires_grad_(mode == "latent")
    loss = guidance_loss(prior, predict_x0(o_, x_, ptype, **LEVELS[ptype]), cond, 1).sum()
    (grad,) = torch.autograd.grad(loss, o_ if mode == "output" else x_)
    torch.testing.assert_close(a.model_output if mode == "output" else a.sample,
                               (o if mode == "output" else x) - 0.7 * grad)


# ---------------------------------------------------------------------------------------- schedule
@pytest.mark.parametrize("mode", ["output", "latent"])
@pytest.mark.parametrize("ptype", ["epsilon", "v_prediction", "flow"])
@pytest.mark.parametrize("stop_gradient", [False, True])
def test_noise_schedule_scales_each_samples_update_by_its_noise_level(mode, ptype, stop_gradient):
    prior, (o, x, cond) = random_prior(2), inputs()
    kw = dict(scale=0.5, mode=mode, stop_gradient=stop_gradient)
    const = guide(MotionPriorGuidance(prior, **kw), o, x, ptype, cond)
    noise = guide(MotionPriorGuidance(prior, schedule="noise", **kw), o, x, ptype, cond)
    level = {k: v.double() for k, v in LEVELS[ptype].items()}
    weight = level["sigma"] if ptype == "flow" else (1 - level["alpha_bar"]).sqrt()  # (B,): √(1 − ᾱ_t) or σ_t
    weight = weight.reshape(-1, 1, 1, 1, 1)
    before, a, b = (o, const.model_output, noise.model_output) if mode == "output" else (x, const.sample, noise.sample)
    torch.testing.assert_close(before - b, weight * (before - a), rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(noise.loss, const.loss, rtol=0, atol=0)  # the loss is the same; only λ_t differs


def test_noise_schedule_takes_a_scalar_noise_level():
    prior, (o, x, cond) = random_prior(1), inputs()
    g = MotionPriorGuidance(prior, scale=2.0, schedule="noise")
    assert g.step_scale("epsilon", o, alpha_bar=0.64) == pytest.approx(2.0 * 0.6)
    assert g.step_scale("flow", o, sigma=torch.tensor(0.25)) == pytest.approx(0.5)
    assert g.step_scale("epsilon", o, alpha_bar=torch.tensor([0.64, 0.36])).shape == (2, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="alpha_bar"):
        g.step_scale("epsilon", o)
    out = g(o, x, step_index=9, num_steps=10, prediction_type="epsilon", cond=cond, alpha_bar=0.64)
    ref = MotionPriorGuidance(prior, scale=2.0 * 0.6)(o, x, step_index=9, num_steps=10, prediction_type="epsilon",
                                                      cond=cond, alpha_bar=0.64)
    torch.testing.assert_close(out.model_output, ref.model_output, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------- bad values
def test_bad_values_are_refused_clearly():
    prior = random_prior(1)
    assert GUIDANCE_SCHEDULES == ("constant", "noise")
    with pytest.raises(ValueError, match="unknown guidance schedule 'cosine'"):
        MotionPriorGuidance(prior, schedule="cosine")
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="stop_gradient must be True or False"):
            MotionPriorGuidance(prior, stop_gradient=bad)


# ---------------------------------------------------------------------------------------- several lags at once
@pytest.mark.parametrize("ptype", ["epsilon", "v_prediction", "flow"])
@pytest.mark.parametrize("budget", [None, 1e-9])  # one call, or the first prior's pairs one at a time
def test_several_lags_sum_their_losses_and_gradients(ptype, budget):
    """more_priors: L_b is the sum of each prior's loss at its own lag, and so is the update's gradient."""
    p1, p2, (o, x, cond) = random_prior(1, seed=0), random_prior(2, seed=1), inputs()
    lam = 0.5
    g = MotionPriorGuidance(p1, scale=lam, more_priors=[p2], activation_budget_gib=budget)
    assert g.pairs_per_call(2, 3, 4, 4, p2) == (3 if budget is None else 1)  # the τ = 2 prior's 3 pairs, split too
    both = guide(g, o, x, ptype, cond)
    one = guide(MotionPriorGuidance(p1, scale=lam), o, x, ptype, cond)
    two = guide(MotionPriorGuidance(p2, scale=lam), o, x, ptype, cond)
    torch.testing.assert_close(both.loss, one.loss + two.loss, rtol=1e-12, atol=0)
    # o − λ·(g1 + g2) = one + two − o
    torch.testing.assert_close(both.model_output, one.model_output + two.model_output - o, rtol=1e-10, atol=1e-12)


def test_several_lags_refuse_a_repeated_lag_other_latents_and_too_few_frames():
    p1 = random_prior(1)
    with pytest.raises(ValueError, match="one prior per lag; got lags \\[1, 1\\]"):
        MotionPriorGuidance(p1, more_priors=[random_prior(1, seed=2)])
    other = MotionPrior.from_preset("tiny", latent_channels=4, text_embed_dim=8, tau=2)
    with pytest.raises(ValueError, match="same latents: 4 channels against 3"):
        MotionPriorGuidance(p1, more_priors=[other])
    with pytest.raises(TypeError, match="lamo.MotionPrior"):
        MotionPriorGuidance(p1, more_priors=["prior-tau2"])
    o, x, cond = inputs(frames=2)  # one pair at τ = 1, none at τ = 2
    with pytest.raises(ValueError, match="frames"):
        guide(MotionPriorGuidance(p1, scale=1.0, more_priors=[random_prior(2)]), o, x, "epsilon", cond)


# ---------------------------------------------------------------------------------------- the pipeline
STEPS, WINDOW = 4, 0.5  # steps 2 and 3 are guided


@pytest.fixture(scope="module")
def pipes():
    comps = tiny_cogvideox_components()
    return tiny_pipeline(CogVideoXPipeline, comps), tiny_pipeline(LaMoCogVideoXPipeline, comps)


def _run(pipe, **kwargs):
    call = cogvideox_call_kwargs(num_inference_steps=STEPS)
    call.update(kwargs)
    return pipe(prompt_embeds=random_prompt_embeds(2, seed=1), negative_prompt_embeds=random_prompt_embeds(2, seed=2),
                generator=torch.Generator().manual_seed(0), **call).frames


def test_pipeline_kwargs_default_to_todays_output_and_change_it_when_on(pipes):
    _, lamo = pipes
    prior = tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox")
    on = dict(motion_prior=prior, motion_guidance_scale=1.0, motion_guidance_window=WINDOW)
    today = _run(lamo, **on)
    explicit = _run(lamo, motion_guidance_stop_gradient=False, motion_guidance_schedule="constant", **on)
    assert torch.equal(explicit, today)
    one_sided = _run(lamo, motion_guidance_stop_gradient=True, **on)
    first = lamo.motion_guidance_history[0]
    noise = _run(lamo, motion_guidance_schedule="noise", **on)
    assert first.guided and first.step == 2 and lamo.motion_guidance_history[0].guided
    assert not torch.equal(one_sided, today) and not torch.equal(noise, today) and not torch.equal(noise, one_sided)
    # the noise schedule weakens each guided step (√(1 − ᾱ_t) < 1): its output lies nearer the unguided one
    off = _run(lamo, motion_prior=prior, motion_guidance_scale=0.0)
    assert (noise - off).abs().sum() < (today - off).abs().sum()
    assert "step" not in vars(lamo.scheduler)


def test_pipeline_kwargs_are_validated(pipes):
    _, lamo = pipes
    prior = tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox")
    with pytest.raises(ValueError, match="unknown motion_guidance_schedule 'linear'"):
        _run(lamo, motion_prior=prior, motion_guidance_scale=1.0, motion_guidance_schedule="linear")
    with pytest.raises(ValueError, match="motion_guidance_stop_gradient must be True or False"):
        _run(lamo, motion_prior=prior, motion_guidance_scale=1.0, motion_guidance_stop_gradient="yes")
    # checked whether or not guidance runs, so a typo never passes silently
    with pytest.raises(ValueError, match="motion_guidance_schedule"):
        _run(lamo, motion_guidance_schedule="Noise")
    with pytest.raises(TypeError, match="motion_guidance_more_priors must hold lamo.MotionPrior"):
        _run(lamo, motion_prior=prior, motion_guidance_more_priors=["tau2"])


def test_pipeline_guides_with_several_lags(pipes):
    """motion_guidance_more_priors adds a second lag's prior: the output differs from either prior alone, its
    recorded loss is the sum of theirs at the first guided step, and a prior for another backbone is refused."""
    _, lamo = pipes
    p1 = tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox", tau=1)
    p2 = tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox", tau=2)
    on = dict(motion_guidance_scale=1.0, motion_guidance_window=WINDOW)
    both = _run(lamo, motion_prior=p1, motion_guidance_more_priors=[p2], **on)
    first_both = lamo.motion_guidance_history[0].loss
    alone1 = _run(lamo, motion_prior=p1, **on)
    first1 = lamo.motion_guidance_history[0].loss
    _run(lamo, motion_prior=p2, **on)
    first2 = lamo.motion_guidance_history[0].loss
    assert not torch.equal(both, alone1)
    torch.testing.assert_close(first_both, first1 + first2)  # same x̂0 at the first guided step
    wrong = tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS + 1, backbone="cogvideox", tau=2)
    with pytest.raises(ValueError):
        _run(lamo, motion_prior=p1, motion_guidance_more_priors=[wrong], **on)


# ---------------------------------------------------------------------------------------- the ablation script
def test_ablation_script_chooses_on_validation_tests_once_and_resumes(tmp_path, capsys):
    """benchmarks/guidance_ablations.py end to end on a tiny backbone trained here for a few steps (16 px,
    8 frames): each variant's λ on validation, the test read once, every cell cached; a second run with the
    same --out samples nothing and writes the same rows."""
    import json

    from bench_scripts import TINY_WORLD as world, load_benchmark, tiny_world_backbone

    backbone = tiny_world_backbone(tmp_path)
    mod = load_benchmark("guidance_ablations")
    args = ["--backbone", str(backbone), "--prior", "", "--out", str(tmp_path / "out"), "--results",
            str(tmp_path / "r.json"), "--world-overrides", json.dumps(world), "--prior-clips", "16", "--prior-steps", "3",
            "--prior-batch", "4", "--val-prompts", "3", "--test-prompts", "4", "--steps", "3", "--n-resamples", "199",
            "--sweep", "0.1", "1", "--variants", "one-sided", "λ∝noise", "ρ=1", "tiny", "τ1+τ2"]
    assert mod.main(args) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    assert list(res["variants"]) == ["default", "one-sided", "λ∝noise", "ρ=1", "tiny", "τ1+τ2"] and res["dropped"] == []
    assert res["variants"]["τ1+τ2"]["more_lags"] == [2]
    assert json.loads((tmp_path / "out" / "prior-small-tau2" / "config.json").read_text())["tau"] == 2
    assert res["variants"]["one-sided"]["stop_gradient"] and res["variants"]["λ∝noise"]["schedule"] == "noise"
    assert (tmp_path / "out" / "prior-small" / "config.json").is_file()  # --prior '': trained like tiny
    assert json.loads((tmp_path / "out" / "prior-tiny" / "config.json").read_text())["hidden_channels"] == 32
    for k, points in res["validation"].items():
        assert {"0.1", "1.0"} <= set(points) and len(points) <= 3 and res["lambda"][k] in map(float, points)
        if len(points) == 3:  # one point past the edge the rule chose
            assert res["extended"][k] in (0.03, 3.0)
    val = res["per_clip_validation"]
    assert len(val) == 1 + sum(len(p) for p in res["validation"].values()) and all(len(r) == 6 for r in val.values())
    # the variants differ where they should: the one-sided and noise-scheduled clips are not the default's
    lam = res["lambda"]
    assert res["per_clip_validation"]["one-sided λ=1"] != res["per_clip_validation"]["default λ=1"]
    # the test: baseline, the default and the best challenger at their λ, paired; the ground truth for sharpness
    c = res["challenger"]
    assert c != "default" and set(res["per_clip"]) == {"baseline", "ground truth", f"default λ={lam['default']:g}",
                                                      f"{c} λ={lam[c]:g}"}
    assert f"{c} λ={lam[c]:g} vs default λ={lam['default']:g}" in res["effects"]
    assert res["decision"].startswith(("today's defaults stay", "adopt"))
    assert len(res["validation_contrasts"]) == 5 and (tmp_path / "r.png").is_file()
    assert res["per_clip_validation"]["τ1+τ2 λ=1"] != res["per_clip_validation"]["default λ=1"]  # the τ = 2 prior guides too
    printed = capsys.readouterr().out
    assert "| one-sided" in printed and "Decision:" in printed and "smallest detectable" in printed
    # resume: every cell comes from OUT/cells, the priors are reloaded, the rows are the same
    assert mod.main(args) == 0
    again = json.loads((tmp_path / "r.json").read_text())
    assert len(again["cells_reused"]) == len(val) + 3 and all(again["prior"][k].get("reloaded") for k in ("small", "tiny"))
    assert again["per_clip"] == res["per_clip"] and again["per_clip_validation"] == res["per_clip_validation"]
    capsys.readouterr()
    assert mod.main(["--table", str(tmp_path / "r.json")]) == 0
    assert capsys.readouterr().out.strip() == mod.tables(again).strip()
