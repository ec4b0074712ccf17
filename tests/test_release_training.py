"""`--recipe lamo-release`: the release's optimizer, schedules, timestep draw, weights and predictor details.

Each reference is written here from the release's training launcher and config (AdamW β = (0.9, 0.99), ε = 1e-8,
weight decay 1e-4; ``constant_with_warmup`` for the LoRA and ``cosine`` — one full cycle — for the predictor, both
with 200 warm-up steps; ``predictor_cosine_weight 0.3``, ``predictor_noise_aug_scale 0.3``,
``predictor_noise_aug_prob 0.5``, ``prompt_dropout_prob 0.1``) and from its trainer's timestep draw for a CogVideoX
DDIM scheduler. Nothing here calls the code under test to build a reference.
"""
import math

import numpy as np
import pytest
import torch
from diffusers import CogVideoXPipeline

from lamo import MotionPrior
from lamo.adapters import get_adapter
from lamo.cli import main
from lamo.configs import FinetuneConfig, PriorTrainConfig
from lamo.losses import drift_loss_terms
from lamo.training.finetune import FINETUNE_RECIPES, FinetuneLoss, release_timesteps
from lamo.training.prior import PRIOR_RECIPES, adamw_options, apply_recipe, build_prior, lr_factor

WARMUP = 200  # the release config's lr_warmup_steps


def release_lambda(name, warmup, total, num_cycles=1):
    """The release's LambdaLR multipliers (its optimizer module, with the num_cycles its trainer passes: 1)."""
    def constant_with_warmup(step):
        return step / max(1.0, warmup) if step < warmup else 1.0

    def cosine(step):
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * num_cycles * 2.0 * progress)))

    return {"constant_with_warmup": constant_with_warmup, "cosine": cosine}[name]


@pytest.mark.parametrize("ours, theirs", [("release-constant", "constant_with_warmup"), ("release-cosine", "cosine")])
@pytest.mark.parametrize("total", [2000, 700])
def test_release_lr_schedules(ours, theirs, total):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, release_lambda(theirs, WARMUP, total))
    for step in range(total):  # update `step` (0-based) runs at the rate the LambdaLR holds then
        assert lr_factor(ours, step, total) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)
        opt.step()
        sched.step()
    assert lr_factor(ours, 0, total) == 0.0  # the first update of the release has lr 0
    if ours == "release-cosine":  # one full cycle: down to 0 halfway, back up at the end
        mid = WARMUP + (total - WARMUP) // 2
        assert lr_factor(ours, mid, total) < 1e-6 and lr_factor(ours, total - 1, total) > 0.99


def test_recipes_name_the_release_schedules_and_adamw():
    ft = apply_recipe(FinetuneConfig(recipe="lamo-release"), FINETUNE_RECIPES)
    assert (ft.lr, ft.lr_schedule, ft.prior_lr, ft.prior_lr_schedule) == (5e-5, "release-constant", 5e-4,
                                                                         "release-cosine")
    pr = apply_recipe(PriorTrainConfig(recipe="lamo-release"), PRIOR_RECIPES)
    assert (pr.lr, pr.lr_schedule, pr.weight_decay) == (5e-4, "release-cosine", 1e-4)
    for cfg in (ft, pr):
        assert adamw_options(cfg) == dict(betas=(0.9, 0.99), eps=1e-8, weight_decay=1e-4)
    # LaMo's own runs keep torch's AdamW defaults (weight decay 0.01 for the fine-tune, the config's for the prior)
    assert adamw_options(FinetuneConfig()) == {}
    assert adamw_options(PriorTrainConfig()) == {"weight_decay": 0.0}


def test_release_run_builds_the_release_adamw(drifting_cache, tmp_path, monkeypatch):
    root, _, _ = drifting_cache
    seen = []
    real = torch.optim.AdamW

    class Recording(real):
        def __init__(self, params, **kwargs):
            seen.append(kwargs)
            super().__init__(params, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", Recording)
    assert main(["train", "finetune", "--model", str(root / "model"), "--cache", str(root / "cache"),
                 "--recipe", "lamo-release", "--steps", "1", "--batch-size", "2", "--lora-rank", "4",
                 "--prior-options", "hidden_channels=16,num_blocks=1,cond_dim=8", "--save-every", "1",
                 "--log-with", "none", "--out", str(tmp_path / "r")]) == 0
    assert seen == [dict(betas=(0.9, 0.99), eps=1e-8, weight_decay=1e-4)]


def test_release_timestep_draw():
    from diffusers import CogVideoXDDIMScheduler

    sched = CogVideoXDDIMScheduler()
    n = sched.config.num_train_timesteps
    # the release: σ = timesteps[⌊N·u⌋] / N with the scheduler's training timesteps N−1…0, t = ⌊σ·1000⌋, all float32
    grid = np.arange(n - 1, -1, -1).astype(np.float32) / np.float32(n)
    expected_t = (grid * np.float32(1000.0)).astype(np.int64)
    g = torch.Generator().manual_seed(0)
    sigma, t = release_timesteps(sched, 50_000, g)
    u = torch.rand(50_000, generator=torch.Generator().manual_seed(0)).numpy()
    idx = (u * np.float32(n)).astype(np.int64)
    assert np.array_equal(sigma.numpy(), grid[idx]) and np.array_equal(t.numpy(), expected_t[idx])
    never = set(range(n)) - set(expected_t.tolist())
    assert never and never.isdisjoint(t.tolist())  # float32 round-off: a few timesteps are never drawn
    assert set(t.tolist()) == set(expected_t.tolist())


def test_release_drift_weight_and_denoising_loss(drifting_cache):
    root, latents, embeds = drifting_cache
    pipe = CogVideoXPipeline.from_pretrained(root / "model", tokenizer=None, text_encoder=None)
    adapter = get_adapter(pipe)
    m = FinetuneLoss(pipe.transformer, pipe.scheduler, adapter, drift_weight=0.4, drift_mode="normalized", tau=2,
                     drift_weighting="batch_mean", timestep_sampling="release")
    _, denoise, drift, _, _, _ = m(latents[:4], embeds[:4], seed=7)
    g = torch.Generator().manual_seed(7)
    sigma, t = release_timesteps(pipe.scheduler, 4, g)
    tf = adapter.training_forward(pipe.transformer, pipe.scheduler, latents[:4], embeds[:4], timesteps=t, generator=g)
    assert torch.equal(tf.timesteps, t)
    # drift weight: mean over the batch of (1 − σ²)₊ with the release's σ (not √(1 − ᾱ_t))
    weight = (1 - sigma.double() ** 2).clamp_min(0).mean()
    terms = drift_loss_terms(tf.x0_pred, latents[:4], tau=2)
    assert torch.allclose(drift.double(), weight * terms.per_sample.double().mean(), rtol=1e-5)
    other = (1 - (1 - tf.noise_level.alpha_bar.double())).clamp_min(0).mean()
    assert not torch.isclose(weight, other, rtol=1e-3)  # the two weights differ: the test tells them apart
    # denoising loss: the release's 1/(1 − ᾱ_t)·mean (x̂0 − x0)², x̂0 = √ᾱ·x_t − √(1 − ᾱ)·v̂ in float64
    a = pipe.scheduler.alphas_cumprod.double()[t].view(-1, 1, 1, 1, 1)
    x0 = a.sqrt() * tf.noisy.double() - (1 - a).sqrt() * tf.pred.double()
    theirs = ((x0 - latents[:4].double()).pow(2).flatten(1).mean(1) / (1 - a.flatten())).mean()
    assert torch.allclose(denoise.double(), theirs, rtol=1e-4)


def test_release_predictor_details():
    from lamo.training.prior import init_release_prior

    torch.manual_seed(0)

    prior = init_release_prior(MotionPrior.from_preset("release", latent_channels=4, text_embed_dim=4096,
                                                       hidden_channels=16, num_blocks=1, cond_dim=64))
    w = prior.prompt_proj.weight
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002 and not prior.prompt_proj.bias.any()
    # the release's training config, not its function defaults (cosine 0.5, noise scale 1.0)
    c = prior.config
    assert (c.cosine_weight, c.noise_aug_std, c.noise_aug_prob, c.prompt_dropout, c.noise_aug) == \
        (0.3, 0.3, 0.5, 0.1, "diffusion")
    with torch.no_grad():
        prior.null_prompt.normal_()
    cond = torch.randn(3, 4096)
    drop = torch.tensor([True, False, True])
    got = prior.condition(cond, 3, drop)
    zero = torch.nn.functional.gelu(prior.prompt_proj(torch.zeros(1, 4096)))  # a dropped prompt: the zero vector
    null = torch.nn.functional.gelu(prior.prompt_proj(prior.null_prompt[None]))  # only without any prompt
    torch.testing.assert_close(got[0], zero[0])
    torch.testing.assert_close(got[2], zero[0])
    torch.testing.assert_close(got[1], torch.nn.functional.gelu(prior.prompt_proj(cond[1:2]))[0])
    torch.testing.assert_close(prior.condition(None, 2), null.expand(2, -1))
    assert not torch.allclose(zero, null)


def test_build_prior_initialises_the_release_prompt_projection(tmp_path):
    from diffusers import CogVideoXPipeline as P
    from tiny_models import tiny_cogvideox_components, tiny_pipeline

    tiny_pipeline(P, tiny_cogvideox_components()).save_pretrained(tmp_path / "m")
    torch.manual_seed(0)
    prior, levels = build_prior("release", "hidden_channels=16,num_blocks=1,cond_dim=64", 4, 2048, "cogvideox",
                                cache_model=str(tmp_path / "m"))
    assert levels is not None
    assert abs(prior.prompt_proj.weight.std().item() - 0.02) < 0.002 and not prior.prompt_proj.bias.any()
    torch.manual_seed(0)
    plain, _ = build_prior("tiny", "", 4, 2048, "cogvideox")
    assert plain.config.arch == "lamo"  # LaMo's own architecture is not touched
