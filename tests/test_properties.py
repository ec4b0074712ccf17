"""Property-based tests of the public tensor functions ``lag_delta``, ``macro_drift`` and
``motion_drift_loss`` over shapes, dtypes, τ and non-finite values: each call gives a clear error or a
correct result — never a crash of another kind, never a silent NaN.

Values are dyadic (k/8, |k| ≤ 64) times 2^e, so every input is exact in every dtype and the float64
reference is exact up to the last rounding; ``e`` reaches where float16 and float32 overflow.
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lamo import lag_delta, macro_drift, motion_drift_loss
from lamo.losses import ALL_DRIFT_MODES, EPS, FLOOR_FRACTION

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


@st.composite
def latents(draw, min_frames: int = 1, max_frames: int = 6, nonfinite: bool = True, shape=None):
    """``(z, dtype, z64)``: a ``(B, F, C, H, W)`` tensor in ``dtype`` and its exact float64 copy."""
    if shape is None:
        shape = (draw(st.integers(1, 3)), draw(st.integers(min_frames, max_frames)), draw(st.integers(1, 3)),
                 draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dtype = draw(st.sampled_from(DTYPES))
    n = math.prod(shape)
    k = draw(st.lists(st.integers(-64, 64), min_size=n, max_size=n))
    e = draw(st.sampled_from([0, 0, 0, 4, 10, 40, 70, 130]))
    z64 = torch.tensor(k, dtype=torch.float64).reshape(shape) / 8 * 2.0 ** e
    if nonfinite and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 2))):
            z64.view(-1)[draw(st.integers(0, n - 1))] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    z = z64.to(dtype)
    return z, dtype, z.to(torch.float64)  # the float64 copy of what the dtype holds (overflow → inf)


def _close(out: torch.Tensor, ref64: torch.Tensor, dtype: torch.dtype) -> None:
    """``out`` equals the float64 reference rounded to ``dtype``: same non-finite pattern, close elsewhere."""
    assert out.dtype == dtype and out.shape == ref64.shape
    ref = ref64.to(dtype)
    fin = torch.isfinite(ref)
    assert torch.equal(torch.isfinite(out), fin)
    assert torch.equal(torch.isnan(out), torch.isnan(ref))
    if fin.any():
        eps = torch.finfo(dtype).eps
        scale = ref64[fin].abs().max().item()
        torch.testing.assert_close(out[fin].double(), ref[fin].double(), rtol=4 * eps, atol=4 * eps * scale)


# ---------------------------------------------------------------------------------------------
# lag_delta and macro_drift
# ---------------------------------------------------------------------------------------------
@SETTINGS
@given(latents(), st.integers(-2, 7))
def test_lag_delta_is_the_frame_difference_or_a_clear_error(zs, tau):
    z, dtype, z64 = zs
    if tau < 1 or z.shape[1] <= tau:
        with pytest.raises(ValueError, match="tau"):
            lag_delta(z, tau)
        return
    d = lag_delta(z, tau)
    ref = z64[:, tau:] - z64[:, :-tau]  # (B, F−τ, C, H, W)
    _close(d, ref, dtype)
    # a non-finite value reaches exactly the pairs it is part of (no sync, no check inside the guided step)
    bad = ~torch.isfinite(z64)
    assert torch.equal(~torch.isfinite(d), (bad[:, tau:] | bad[:, :-tau]) | ~torch.isfinite(ref.to(dtype)))


@SETTINGS
@given(latents(), st.integers(1, 5))
def test_macro_drift_is_the_spatial_mean_of_the_lag_delta(zs, tau):
    z, dtype, z64 = zs
    if z.shape[1] <= tau:
        with pytest.raises(ValueError, match="at least"):
            macro_drift(z, tau)
        return
    mu = macro_drift(z, tau)
    assert mu.shape == z.shape[:1] + (z.shape[1] - tau,) + z.shape[2:3] and mu.dtype == dtype
    delta = z64[:, tau:] - z64[:, :-tau]  # (B, F−τ, C, H, W), exact
    ref = delta.mean(dim=(-2, -1))  # (B, F−τ, C)
    bad = ~torch.isfinite(z64)
    touched = (bad[:, tau:] | bad[:, :-tau]).any(-1).any(-1)  # (B, F−τ, C): a NaN/inf input in the pair
    assert bool((~torch.isfinite(mu))[touched].all())  # … reaches its mean
    # elsewhere the mean is right, unless a difference itself is beyond the dtype's range (|z| ~ its max)
    overflow = (~torch.isfinite(delta.to(dtype))).any(-1).any(-1)
    clean = ~overflow & torch.isfinite(ref.to(dtype))
    assert bool(torch.isfinite(mu)[clean].all())
    if clean.any():
        scale = delta.abs().amax(dim=(-2, -1))[clean].max().item()
        eps = torch.finfo(dtype).eps
        torch.testing.assert_close(mu[clean].double(), ref[clean], rtol=8 * eps, atol=8 * eps * scale)


@pytest.mark.parametrize("tau", [0, -1, 1.5, True, "2", None, torch.tensor(2)])
def test_a_tau_that_is_not_a_positive_integer_is_refused(tau):
    for f in (lag_delta, macro_drift):
        with pytest.raises(ValueError, match="tau must be a positive integer"):
            f(torch.zeros(1, 4, 1, 2, 2), tau)


def test_numpy_integers_are_integers():
    import numpy as np

    assert lag_delta(torch.ones(1, 4, 1, 2, 2), np.int64(2)).shape == (1, 2, 1, 2, 2)


@pytest.mark.parametrize("z, error, match", [
    (torch.zeros(1, 4, 1, 2, 2, dtype=torch.int64), TypeError, "floating-point"),
    (torch.zeros(1, 4, 1, 2, 2, dtype=torch.bool), TypeError, "floating-point"),
    (torch.zeros(1, 4, 1, 2, 2, dtype=torch.complex64), TypeError, "floating-point"),
    ([[0.0]], TypeError, "torch.Tensor"),
    (torch.zeros(4, 1, 2, 2), ValueError, "5 dimensions"),
    (torch.zeros(1, 1, 4, 1, 2, 2), ValueError, "5 dimensions"),
    (torch.zeros(0, 4, 1, 2, 2), ValueError, "empty dimension"),
    (torch.zeros(1, 4, 0, 2, 2), ValueError, "empty dimension"),
    (torch.zeros(1, 4, 1, 0, 2), ValueError, "empty dimension"),  # was: a silent NaN spatial mean
])
def test_what_is_not_a_latent_video_is_refused(z, error, match):
    for f in (lag_delta, macro_drift):
        with pytest.raises(error, match=match):
            f(z, 1)


# ---------------------------------------------------------------------------------------------
# motion_drift_loss
# ---------------------------------------------------------------------------------------------
def _reference_loss(p64: torch.Tensor, t64: torch.Tensor, tau: int, mode: str, w64=None) -> torch.Tensor:
    """docs/design.md §1.3 (and the batch normalisations) written out in float64, independently of lamo.losses: ``(B,)``."""
    d_hat, d_star = p64[:, tau:] - p64[:, :-tau], t64[:, tau:] - t64[:, :-tau]  # (B, F−τ, C, H, W)
    if mode in ("dense", "dense_batch_normalized"):
        mu_hat, mu_star = d_hat.flatten(2), d_star.flatten(2)  # (B, F−τ, C·H·W)
    else:
        mu_hat, mu_star = d_hat.mean((-2, -1)), d_star.mean((-2, -1))  # (B, F−τ, C)
    err = ((mu_hat - mu_star) ** 2).sum(-1)  # (B, F−τ)
    energy = (mu_star ** 2).sum(-1)  # (B, F−τ)
    per_pair = {"raw": lambda: err / mu_hat.shape[-1],
                "batch_normalized": lambda: err / (energy.mean() + EPS),
                "dense_batch_normalized": lambda: err / (energy.mean() + EPS),
                "floor_normalized": lambda: err / (energy.clamp_min(FLOOR_FRACTION * energy.mean()) + EPS),
                }.get(mode, lambda: err / (energy + EPS))()
    out = per_pair.mean(1)
    return out if w64 is None else w64 * out


@st.composite
def loss_inputs(draw):
    tau = draw(st.integers(1, 3))
    pred, dtype, p64 = draw(latents(min_frames=tau + 1, max_frames=tau + 3))
    target, _, t64 = draw(latents(nonfinite=True, shape=tuple(pred.shape)))
    target, t64 = target.to(dtype), target.to(dtype).double()
    mode = draw(st.sampled_from(ALL_DRIFT_MODES))
    weight = None
    if draw(st.booleans()):
        ws = draw(st.lists(st.sampled_from([0.0, 0.25, 1.0, 3.0, math.nan, math.inf]), min_size=pred.shape[0],
                           max_size=pred.shape[0]))
        weight = torch.tensor(ws)
    return pred, target, p64, t64, dtype, tau, mode, weight


@SETTINGS
@given(loss_inputs(), st.sampled_from(["mean", "none"]))
def test_motion_drift_loss_is_correct_or_refuses_never_nan(inputs, reduction):
    pred, target, p64, t64, dtype, tau, mode, weight = inputs
    pred = pred.clone().requires_grad_(True)
    F = pred.shape[1]
    used = [f for f in range(F) if f < F - tau or f >= tau]  # frames in some τ-pair (others never enter the loss)
    inputs_finite = all(bool(torch.isfinite(x[:, used]).all()) for x in (pred, target)) and (
        weight is None or bool(torch.isfinite(weight).all()))
    try:
        loss = motion_drift_loss(pred, target, tau=tau, mode=mode, weight=weight, reduction=reduction)
    except ValueError as e:  # the clear error: it names the non-finite input, or says the dtype overflowed
        if not inputs_finite:
            assert "non-finite" in str(e), str(e)
        else:  # only for drifts beyond what the float32 reduction holds (|z| ≳ 1e19)
            assert "too large" in str(e) and max(p64.abs().max(), t64.abs().max()) > 1e15, str(e)
        return
    assert inputs_finite  # a NaN or inf never comes out as a number
    assert bool(torch.isfinite(loss).all())  # never a silent NaN
    assert loss.shape == (() if reduction == "mean" else (pred.shape[0],))
    assert loss.dtype == torch.promote_types(dtype, torch.float32)
    ref = _reference_loss(p64, t64, tau, mode, None if weight is None else weight.double())
    ref = ref.mean() if reduction == "mean" else ref
    assert bool((loss >= 0).all())
    torch.testing.assert_close(loss.double(), ref, rtol=1e-4, atol=1e-6 * max(1.0, ref.abs().max().item()))
    loss.sum().backward()
    assert pred.grad is not None and pred.grad.shape == pred.shape


@SETTINGS
@given(latents(min_frames=2, nonfinite=False), st.sampled_from(ALL_DRIFT_MODES))
def test_the_loss_of_a_clip_against_itself_is_zero_and_a_static_offset_changes_nothing(zs, mode):
    z, dtype, z64 = zs
    if not bool(torch.isfinite(z).all()) or z64.abs().max() > 1e15:
        return  # beyond the dtype (covered above)
    assert float(motion_drift_loss(z, z, tau=1, mode=mode)) == 0.0
    # Δ_τ removes anything constant over frames: the loss sees motion only (float64: exact up to rounding)
    offset = torch.randn(z.shape[0], 1, *z.shape[2:], dtype=torch.float64)
    target = torch.roll(z64, 1, dims=1)
    a = motion_drift_loss(z64, target, tau=1, mode=mode)
    b = motion_drift_loss(z64 + offset, target + offset, tau=1, mode=mode)
    if bool(torch.isfinite(a)) and z64.abs().max() < 1e6:
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="l1"), "unknown drift loss mode"),
    (dict(reduction="sum"), "reduction must be"),
    (dict(weight=torch.ones(3)), "one value per sample"),
    (dict(tau=4), "at least 5"),
    (dict(tau=0), "tau must be"),
])
def test_bad_loss_arguments_are_refused(kwargs, match):
    x = torch.randn(2, 4, 3, 2, 2)
    with pytest.raises(ValueError, match=match):
        motion_drift_loss(x, x.flip(1), **kwargs)


def test_shapes_that_differ_are_refused():
    with pytest.raises(ValueError, match="does not match"):
        motion_drift_loss(torch.randn(2, 4, 3, 2, 2), torch.randn(2, 4, 3, 2, 3))
