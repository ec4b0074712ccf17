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
