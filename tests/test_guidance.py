import pytest
import torch

import lamo
from lamo import MotionPrior, MotionPriorGuidance

LEVELS = {"epsilon": dict(alpha_bar=torch.tensor([0.7, 0.4])), "v_prediction": dict(alpha_bar=torch.tensor([0.7, 0.4])),
          "flow": dict(sigma=torch.tensor([0.3, 0.6]))}


def random_prior(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    p = MotionPrior.from_preset("tiny", latent_channels=3, text_embed_dim=8, tau=2)  # these tests are written for τ = 2
    for prm in p.parameters():
        torch.nn.init.normal_(prm, std=0.2)
    return p.to(dtype)


def call(g, o, x, ptype, step=9, steps=10, cond=None):
    lv = {k: v.to(o.dtype) for k, v in LEVELS[ptype].items()}
    return g(o, x, step_index=step, num_steps=steps, prediction_type=ptype, cond=cond, **lv)


@pytest.mark.parametrize("ptype", ["epsilon", "v_prediction", "flow"])
@pytest.mark.parametrize("mode", ["output", "latent"])
def test_guidance_gradient_matches_finite_differences(ptype, mode):
    prior = random_prior()
    lam = 0.5
    g = MotionPriorGuidance(prior, scale=lam, mode=mode)
    o = torch.randn(2, 5, 3, 4, 4, dtype=torch.float64)
    x = torch.randn(2, 5, 3, 4, 4, dtype=torch.float64)
    cond = torch.randn(2, 8, dtype=torch.float64)
    out = call(g, o, x, ptype, cond=cond)
    lv = {k: v.double() for k, v in LEVELS[ptype].items()}
    if mode == "output":
        analytic = (o - out.model_output) / lam
        assert torch.equal(out.sample, x)
    else:
        analytic = (x - out.sample) / lam
        assert torch.equal(out.model_output, o)

    def total(o_, x_):
        return g.loss(o_, x_, ptype, cond=cond, **lv).sum()

    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        idx = tuple(int(torch.randint(0, s, (1,), generator=gen)) for s in o.shape)
        h = 1e-6
        e = torch.zeros_like(o)
        e[idx] = h
        if mode == "output":
            fd = (total(o + e, x) - total(o - e, x)) / (2 * h)
        else:
            fd = (total(o, x + e) - total(o, x - e)) / (2 * h)
        assert torch.allclose(analytic[idx], fd, rtol=1e-5, atol=1e-7), (idx, analytic[idx].item(), fd.item())


def test_off_or_outside_window_is_bit_identical():
    prior = random_prior(torch.float32)
    o, x = torch.randn(2, 4, 3, 4, 4), torch.randn(2, 4, 3, 4, 4)
    off = MotionPriorGuidance(prior, scale=0.0)
    res = call(off, o, x, "v_prediction", step=9)
    assert res.model_output is o and res.sample is x and not res.active and res.loss is None
    on = MotionPriorGuidance(prior, scale=1.0, window=0.8)
    assert on.first_step(50) == 10 and on.first_step(10) == 2  # (1 − 0.8)·S, robust to round-off
    res = call(on, o, x, "v_prediction", step=1, steps=10)
    assert res.model_output is o and not res.active
    res = call(on, o, x, "v_prediction", step=2, steps=10)
    assert res.active and not torch.equal(res.model_output, o)
    assert res.model_output.dtype == o.dtype


def test_guided_output_lowers_guidance_loss_and_leaves_prior_untouched():
    prior = random_prior(torch.float32)
    g = MotionPriorGuidance(prior, scale=0.01)
    o, x = torch.randn(2, 6, 3, 4, 4), torch.randn(2, 6, 3, 4, 4)
    for ptype in ("epsilon", "v_prediction", "flow"):
        res = call(g, o, x, ptype)
        lv = LEVELS[ptype]
        after = g.loss(res.model_output, x, ptype, **lv)
        assert torch.all(after < res.loss), ptype
    assert all(p.grad is None for p in prior.parameters())
    assert not any(p.requires_grad for p in prior.parameters())


def test_scale_is_independent_of_batch_size():
    """λ means the same at any batch size: a sample's update does not depend on its batch mates."""
    prior = random_prior(torch.float64)
    g = MotionPriorGuidance(prior, scale=0.3)
    o, x = torch.randn(3, 5, 3, 4, 4, dtype=torch.float64), torch.randn(3, 5, 3, 4, 4, dtype=torch.float64)
    lv = dict(alpha_bar=torch.tensor(0.6, dtype=torch.float64))
    full = g(o, x, step_index=5, num_steps=5, prediction_type="v_prediction", **lv).model_output
    one = g(o[:1], x[:1], step_index=5, num_steps=5, prediction_type="v_prediction", **lv).model_output
    assert torch.allclose(full[:1], one, rtol=1e-12, atol=1e-12)


def test_bad_inputs_are_explained():
    prior = random_prior(torch.float32)
    g = MotionPriorGuidance(prior, scale=1.0)
    o = torch.randn(1, 4, 3, 4, 4)
    with pytest.raises(ValueError, match="unknown prediction type"):
        call_kwargs = dict(step_index=9, num_steps=10, alpha_bar=0.5)
        g(o, o, prediction_type="sample", **call_kwargs)
    with pytest.raises(ValueError, match="3 were expected"):
        g(torch.randn(1, 4, 16, 4, 4), torch.randn(1, 4, 16, 4, 4), step_index=9, num_steps=10,
          prediction_type="flow", sigma=0.5)
    with pytest.raises(ValueError, match="needs at least 3"):
        g(torch.randn(1, 2, 3, 4, 4), torch.randn(1, 2, 3, 4, 4), step_index=9, num_steps=10,
          prediction_type="flow", sigma=0.5)
    with pytest.raises(ValueError, match="5 dimensions"):
        g(torch.randn(4, 3, 4, 4), torch.randn(4, 3, 4, 4), step_index=9, num_steps=10,
          prediction_type="flow", sigma=0.5)
    bad = o.clone()
    bad[0, 1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        g(bad, o, step_index=9, num_steps=10, prediction_type="flow", sigma=0.5)
    with pytest.raises(ValueError, match="needs `sigma`"):
        g(o, o, step_index=9, num_steps=10, prediction_type="flow")
    with pytest.raises(ValueError, match="finite number"):
        MotionPriorGuidance(prior, scale=float("inf"))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        MotionPriorGuidance(prior, window=1.5)
    with pytest.raises(ValueError, match="unknown guidance mode"):
        MotionPriorGuidance(prior, mode="x0")
    with pytest.raises(TypeError, match="MotionPrior"):
        MotionPriorGuidance(torch.nn.Conv2d(3, 3, 1))


def test_zero_init_prior_guides_toward_static_clips():
    """With an untrained (zero-field) prior, L_guide is Σ‖x̂0_i − x̂0_{i+τ}‖²: guidance damps change."""
    prior = MotionPrior.from_preset("tiny", latent_channels=3, text_embed_dim=8, tau=2)
    g = MotionPriorGuidance(prior, scale=0.1)
    o, x = torch.randn(1, 5, 3, 4, 4), torch.zeros(1, 5, 3, 4, 4)
    res = g(o, x, step_index=9, num_steps=10, prediction_type="flow", sigma=1.0)
    x0 = lamo.predict_x0(o, x, "flow", sigma=1.0)
    expect = (x0[:, :-2] - x0[:, 2:]).pow(2).sum(dim=(2, 3, 4)).mean(1)
    assert torch.allclose(res.loss, expect, rtol=1e-5)


@pytest.mark.parametrize("mode", ["output", "latent"])
def test_pairs_split_to_fit_the_activation_budget_give_the_same_update(mode):
    """Splitting the τ-pairs into several prior calls changes memory, not the result."""
    prior = random_prior(torch.float64)
    o = torch.randn(2, 7, 3, 4, 4, dtype=torch.float64)  # 5 τ-pairs per sample
    x = torch.randn(2, 7, 3, 4, 4, dtype=torch.float64)
    cond = torch.randn(2, 8, dtype=torch.float64)
    whole = MotionPriorGuidance(prior, scale=0.4, mode=mode, activation_budget_gib=None)
    per_pair_gib = 2 * prior.activation_bytes_per_frame(4, 4) / 2**30  # both samples' frame of one pair
    split = MotionPriorGuidance(prior, scale=0.4, mode=mode, activation_budget_gib=2.5 * per_pair_gib)
    assert whole.pairs_per_call(2, 5, 4, 4) == 5 and split.pairs_per_call(2, 5, 4, 4) == 2  # calls of 2, 2, 1
    a, b = call(whole, o, x, "v_prediction", cond=cond), call(split, o, x, "v_prediction", cond=cond)
    assert torch.allclose(a.loss, b.loss, rtol=1e-12) and torch.allclose(a.model_output, b.model_output, rtol=1e-12)
    assert torch.allclose(a.sample, b.sample, rtol=1e-12)
    assert not torch.equal(a.model_output if mode == "output" else a.sample, o if mode == "output" else x)
    tiny_budget = MotionPriorGuidance(prior, scale=0.4, mode=mode, activation_budget_gib=1e-12)
    assert tiny_budget.pairs_per_call(2, 5, 4, 4) == 1  # never fewer than one pair per call
    c = call(tiny_budget, o, x, "v_prediction", cond=cond)
    assert torch.allclose(a.model_output, c.model_output, rtol=1e-12) and torch.allclose(a.sample, c.sample, rtol=1e-12)


def test_activation_count_matches_what_autograd_keeps_on_real_tensors():
    """The meta-device count per frame equals the bytes autograd saves when real frames go through."""
    prior = random_prior(torch.float32).requires_grad_(False)
    weights = {id(p) for p in prior.parameters()}
    saved = []
    z = torch.randn(3, 3, 6, 5, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = prior(z, torch.randn(3, 8))
    unique = {id(t): t for t in saved if id(t) not in weights and t is not z}
    real = sum(t.numel() * t.element_size() for t in unique.values())
    per_frame = prior.activation_bytes_per_frame(6, 5)
    assert per_frame > 0 and out.requires_grad
    assert abs(real - 3 * per_frame) <= 0.02 * real  # linear in frames (the condition's few bytes aside)
    assert prior.to(torch.bfloat16).activation_bytes_per_frame(6, 5) < per_frame  # cached per dtype


def test_deferred_finite_check_reports_without_raising():
    prior = random_prior(torch.float32)
    o, x = torch.randn(2, 4, 3, 4, 4), torch.randn(2, 4, 3, 4, 4)
    g = MotionPriorGuidance(prior, scale=1.0, check_finite="deferred")
    assert bool(call(g, o, x, "flow").finite)
    bad = o.clone()
    bad[0, 1, 0, 0, 0] = float("inf")
    res = call(g, bad, x, "flow")
    assert res.finite is not None and res.finite.dtype == torch.bool and not bool(res.finite)
    assert call(MotionPriorGuidance(prior, check_finite="off"), bad, x, "flow").finite is None
    with pytest.raises(ValueError, match="check_finite"):
        MotionPriorGuidance(prior, check_finite="sometimes")
    with pytest.raises(ValueError, match="activation_budget_gib"):
        MotionPriorGuidance(prior, activation_budget_gib=0)
