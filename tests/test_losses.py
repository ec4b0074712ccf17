import pytest
import torch

import lamo
from lamo.losses import drift_loss_terms


def _clip_with_drift(drifts):
    """(1, F, C, 1, 1) latents whose τ=1 drifts are the given (F−1, C) rows."""
    d = torch.as_tensor(drifts, dtype=torch.float64)
    z = torch.cat([torch.zeros(1, d.shape[1], dtype=torch.float64), d.cumsum(0)])  # (F, C)
    return z[None, :, :, None, None]


def test_normalized_drift_loss_hand_value():
    target = _clip_with_drift([[1.0, 0.0], [0.0, 2.0]])
    pred = _clip_with_drift([[2.0, 0.0], [0.0, 0.0]])
    # pair 0: ‖(1,0)‖² / (‖(1,0)‖² + 1e-6); pair 1: ‖(0,−2)‖² / (4 + 1e-6); mean of the two
    expected = (1 / (1 + 1e-6) + 4 / (4 + 1e-6)) / 2
    got = lamo.motion_drift_loss(pred, target, tau=1)
    assert torch.allclose(got, torch.tensor(expected, dtype=got.dtype), rtol=1e-6)


def test_raw_and_normalized_scale_behaviour():
    target = torch.randn(2, 5, 3, 4, 4, dtype=torch.float64)
    pred = target + 0.3 * torch.randn_like(target)
    n1 = lamo.motion_drift_loss(pred, target, mode="normalized")
    n10 = lamo.motion_drift_loss(10 * pred, 10 * target, mode="normalized")
    r1 = lamo.motion_drift_loss(pred, target, mode="raw")
    r10 = lamo.motion_drift_loss(10 * pred, 10 * target, mode="raw")
    assert torch.allclose(n1, n10, rtol=1e-4)  # scale-normalised: invariant
    assert torch.allclose(r10, 100 * r1, rtol=1e-9)  # raw L2: quadratic in scale


def test_raw_hand_value_and_dense_sees_what_macro_misses():
    target = torch.zeros(1, 3, 1, 1, 2, dtype=torch.float64)
    pred = target.clone()
    pred[0, 1, 0, 0] = torch.tensor([1.0, -1.0])  # spatial mean of every delta stays 0
    assert lamo.motion_drift_loss(pred, target, tau=1, mode="raw").item() == 0.0
    assert lamo.motion_drift_loss(pred, target, tau=1, mode="normalized").item() == 0.0
    dense = lamo.motion_drift_loss(pred, target, tau=1, mode="dense").item()
    # dense: per pair ‖(±1, ∓1)‖² / 1e-6 = 2e6 for both pairs
    assert dense == pytest.approx(2 / 1e-6)


def test_target_is_detached_and_weight_multiplies_per_sample():
    target = torch.randn(3, 4, 2, 3, 3, requires_grad=True)
    pred = torch.randn(3, 4, 2, 3, 3, requires_grad=True)
    w = torch.tensor([1.0, 0.5, 0.0])
    out = drift_loss_terms(pred, target, weight=w)
    assert torch.allclose(out.weighted, w * out.per_sample)
    out.weighted.sum().backward()
    assert target.grad is None
    assert pred.grad is not None and pred.grad[2].abs().max() == 0  # w = 0 sample gets no gradient
    none = lamo.motion_drift_loss(pred, target, weight=w, reduction="none")
    assert none.shape == (3,)


def test_perfect_prediction_has_zero_loss_for_every_mode():
    z = torch.randn(2, 5, 3, 4, 4)
    for mode in lamo.DRIFT_MODES:
        assert lamo.motion_drift_loss(z, z.clone(), mode=mode).item() == 0.0


def test_drift_loss_errors():
    z = torch.randn(1, 4, 2, 2, 2)
    with pytest.raises(ValueError, match="unknown drift loss mode"):
        lamo.motion_drift_loss(z, z, mode="l1")
    with pytest.raises(ValueError, match="does not match"):
        lamo.motion_drift_loss(z, torch.randn(1, 4, 3, 2, 2))
    with pytest.raises(ValueError, match="reduction"):
        lamo.motion_drift_loss(z, z, reduction="sum")


@pytest.mark.parametrize("ptype", ["epsilon", "v_prediction", "flow"])
def test_predict_x0_round_trip_float64(ptype):
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 4, 2, 3, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    if ptype == "flow":
        sigma = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
        s = sigma.view(-1, 1, 1, 1, 1)
        x_t, out = (1 - s) * x0 + s * eps, eps - x0
        got = lamo.predict_x0(out, x_t, ptype, sigma=sigma)
    else:
        ab = torch.tensor([0.1, 0.5, 0.95], dtype=torch.float64)
        a = ab.view(-1, 1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
        out = eps if ptype == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * x0
        got = lamo.predict_x0(out, x_t, ptype, alpha_bar=ab)
    assert torch.allclose(got, x0, atol=1e-12)


def test_signal_weight():
    assert torch.allclose(lamo.signal_weight("v_prediction", alpha_bar=torch.tensor([0.3, 0.9])), torch.tensor([0.3, 0.9]))
    assert torch.allclose(lamo.signal_weight("flow", sigma=torch.tensor([0.25])), torch.tensor([0.75]))
    with pytest.raises(ValueError, match="unknown prediction type"):
        lamo.signal_weight("sample", alpha_bar=0.5)
    with pytest.raises(ValueError, match="needs `sigma`"):
        lamo.signal_weight("flow", alpha_bar=0.5)


# ---------------------------------------------------------------- normalisations by the batch's drift energy
def _reference_batch_modes(p64, t64, tau, mode):
    """The batch normalisations written out in float64, independently of lamo.losses: ``(B,)``."""
    reduce = (lambda d: d.flatten(2)) if mode == "dense_batch_normalized" else (lambda d: d.mean((-2, -1)))
    mu_hat = reduce(p64[:, tau:] - p64[:, :-tau])  # (B, F−τ, C) macro drift, or (B, F−τ, C·H·W) dense
    mu_star = reduce(t64[:, tau:] - t64[:, :-tau])
    err = ((mu_hat - mu_star) ** 2).sum(-1)  # (B, F−τ)
    energy = (mu_star ** 2).sum(-1)  # (B, F−τ)
    if mode in ("batch_normalized", "dense_batch_normalized"):
        return (err / (energy.mean() + 1e-6)).mean(1)
    return (err / (torch.maximum(energy, 0.1 * energy.mean()) + 1e-6)).mean(1)


def test_batch_normalized_hand_value():
    # sample 0 pairs: μ* = (1, 0), (0, 2); sample 1 pairs: μ* = (0, 0) (static), (3, 0)
    target = torch.cat([_clip_with_drift([[1.0, 0.0], [0.0, 2.0]]), _clip_with_drift([[0.0, 0.0], [3.0, 0.0]])])
    pred = torch.cat([_clip_with_drift([[2.0, 0.0], [0.0, 0.0]]), _clip_with_drift([[0.5, 0.0], [3.0, 0.0]])])
    mean_energy = (1 + 4 + 0 + 9) / 4
    expected = torch.tensor([(1 + 4) / 2, (0.25 + 0) / 2], dtype=torch.float64) / (mean_energy + 1e-6)
    got = lamo.motion_drift_loss(pred, target, tau=1, mode="batch_normalized", reduction="none")
    torch.testing.assert_close(got, expected)
    # the method divides the static pair's error by 1e-6
    paper = lamo.motion_drift_loss(pred, target, tau=1, mode="normalized", reduction="none")
    assert paper[1].item() == pytest.approx(0.25 / 1e-6 / 2, rel=1e-6)


def test_floor_normalized_hand_value_and_equal_to_the_method_above_the_floor():
    target = torch.cat([_clip_with_drift([[1.0, 0.0], [0.0, 2.0]]), _clip_with_drift([[0.0, 0.0], [3.0, 0.0]])])
    pred = torch.cat([_clip_with_drift([[2.0, 0.0], [0.0, 0.0]]), _clip_with_drift([[0.5, 0.0], [3.0, 0.0]])])
    floor = lamo.losses.FLOOR_FRACTION * (1 + 4 + 0 + 9) / 4  # 0.35: only the static pair is floored
    expected = torch.tensor([(1 / (1 + 1e-6) + 4 / (4 + 1e-6)) / 2, (0.25 / (floor + 1e-6) + 0) / 2],
                            dtype=torch.float64)
    got = lamo.motion_drift_loss(pred, target, tau=1, mode="floor_normalized", reduction="none")
    torch.testing.assert_close(got, expected)
    paper = lamo.motion_drift_loss(pred, target, tau=1, mode="normalized", reduction="none")
    assert got[0].item() == paper[0].item()  # no pair of sample 0 is below the floor


@pytest.mark.parametrize("mode", ["batch_normalized", "floor_normalized", "dense_batch_normalized"])
@pytest.mark.parametrize("tau", [1, 2])
def test_batch_modes_match_a_float64_reference_and_are_scale_invariant(mode, tau):
    g = torch.Generator().manual_seed(tau)
    target = torch.randn(3, 5, 4, 3, 3, dtype=torch.float64, generator=g)
    target[1] = target[1, :1]  # a static clip: zero drift in every pair
    pred = (target + 0.3 * torch.randn(target.shape, dtype=torch.float64, generator=g)).requires_grad_(True)
    got = drift_loss_terms(pred, target, tau=tau, mode=mode).per_sample
    torch.testing.assert_close(got, _reference_batch_modes(pred.detach(), target, tau, mode))
    assert bool(torch.isfinite(got).all()) and got.max() < 1e3  # the static clip does not explode
    scaled = drift_loss_terms(10 * pred.detach(), 10 * target, tau=tau, mode=mode).per_sample
    torch.testing.assert_close(scaled, got.detach(), rtol=1e-4, atol=0)  # invariant to the latents' scale
    got.sum().backward()
    assert pred.grad is not None and bool(torch.isfinite(pred.grad).all())


def test_batch_normalized_is_bounded_where_the_method_explodes():
    """A near-static pair dominates the method, not the batch normalisation (issue 15)."""
    g = torch.Generator().manual_seed(0)
    target = torch.randn(8, 6, 4, 4, 4, dtype=torch.float64, generator=g)
    target[0] = target[0, :1] + 1e-4 * torch.randn(6, 4, 4, 4, dtype=torch.float64, generator=g)  # near-static
    pred = target + 0.1 * torch.randn(target.shape, dtype=torch.float64, generator=g)
    paper = lamo.motion_drift_loss(pred, target, mode="normalized", reduction="none")
    batch = lamo.motion_drift_loss(pred, target, mode="batch_normalized", reduction="none")
    assert paper[0] / paper.sum() > 0.99  # one sample is the whole loss
    assert batch[0] / batch.sum() < 0.5
    # the same for the dense loss: per pair it explodes on the near-static clip, over the batch it does not
    dense = lamo.motion_drift_loss(pred, target, mode="dense", reduction="none")
    dense_batch = lamo.motion_drift_loss(pred, target, mode="dense_batch_normalized", reduction="none")
    assert dense[0] / dense.sum() > 0.99 and dense_batch[0] / dense_batch.sum() < 0.5


def test_every_mode_is_zero_for_a_perfect_prediction_and_unknown_modes_are_named():
    z = torch.randn(2, 5, 3, 4, 4)
    for mode in lamo.losses.ALL_DRIFT_MODES:
        assert lamo.motion_drift_loss(z, z.clone(), mode=mode).item() == 0.0
    with pytest.raises(ValueError, match="batch_normalized"):
        lamo.motion_drift_loss(z, z, mode="batch")
