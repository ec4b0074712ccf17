"""Property tests: MotionPrior and MotionPriorGuidance over shapes, dtypes, τ and non-finite inputs.

Whatever the input, the answer is a clear error (``ValueError`` / ``TypeError`` with a message) or a
correct result — never a crash from deep inside torch, never a NaN nobody is told about.
"""
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lamo import MotionPrior, MotionPriorGuidance

C, D = 3, 5  # latent channels, prompt width of the priors below
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ARCHS = ["lamo", "release", "release-second-order"]
DTYPES = [torch.float32, torch.float64, torch.bfloat16]
_PRIORS: dict = {}


def prior(arch: str, dtype: torch.dtype) -> MotionPrior:
    """A small prior with random weights (so the field is not zero), cached per (arch, dtype)."""
    if (arch, dtype) not in _PRIORS:
        torch.manual_seed(0)
        if arch == "lamo":
            p = MotionPrior.from_preset("tiny", latent_channels=C, text_embed_dim=D, tau=2)
        else:
            p = MotionPrior.from_preset("release", latent_channels=C, text_embed_dim=D, hidden_channels=16,
                                        num_blocks=1, cond_dim=8, second_order=arch.endswith("second-order"))
        with torch.no_grad():
            for prm in p.parameters():
                prm.normal_(0, 0.2)
        _PRIORS[arch, dtype] = p.to(dtype).eval()
    return _PRIORS[arch, dtype]


def randn(*shape, dtype=torch.float32, seed=0, scale=1.0):
    return (scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)).to(dtype)


# ---------------------------------------------------------------------------------------- MotionPrior.forward
@SETTINGS
@given(arch=st.sampled_from(ARCHS), dtype=st.sampled_from(DTYPES), n=st.integers(1, 3), channels=st.sampled_from([C, 2]),
       h=st.integers(1, 6), w=st.integers(1, 6), cond=st.sampled_from(["none", "rows", "shared", "wrong-width",
                                                                       "wrong-rows"]),
       scale=st.sampled_from([1e-3, 1.0, 1e3]), input_dtype=st.sampled_from(DTYPES + [torch.int64]))
def test_forward_gives_a_finite_field_or_a_clear_error(arch, dtype, n, channels, h, w, cond, scale, input_dtype):
    p = prior(arch, dtype)
    z = randn(n, channels, h, w, scale=scale).to(input_dtype)
    c = {"none": None, "rows": randn(n, D, seed=1), "shared": randn(1, D, seed=1), "wrong-width": randn(n, D + 1),
         "wrong-rows": randn(n + 1, D)}[cond]
    if channels != C:
        with pytest.raises(ValueError, match="channels"):
            p(z, c)
        return
    if input_dtype == torch.int64:
        with pytest.raises(TypeError, match="floating-point"):
            p(z, c)
        return
    if cond.startswith("wrong"):
        with pytest.raises(ValueError, match="prompt condition"):
            p(z, c)
        return
    out = p(z, c)
    assert out.shape == (n, C, h, w) and out.dtype == dtype
    assert torch.isfinite(out).all()


@SETTINGS
@given(arch=st.sampled_from(ARCHS), dtype=st.sampled_from(DTYPES), n=st.integers(2, 3), h=st.integers(1, 5),
       w=st.integers(1, 5), bad=st.sampled_from([math.nan, math.inf, -math.inf]), where=st.sampled_from(["z", "cond"]),
       row=st.integers(0, 2))
def test_non_finite_input_shows_in_its_own_row_only(arch, dtype, n, h, w, bad, where, row):
    p = prior(arch, dtype)
    row = row % n
    z, c = randn(n, C, h, w, dtype=dtype), randn(n, D, seed=1, dtype=dtype)
    if where == "z":
        z[row, 0, 0, 0] = bad
    else:
        c[row, 0] = bad
    out = p(z, c)
    assert not torch.isfinite(out[row]).all()  # the NaN is visible where it came in
    keep = [i for i in range(n) if i != row]
    clean = p(z[keep], c[keep])
    assert torch.isfinite(out[keep]).all()
    tol = dict(rtol=2e-2, atol=2e-2) if dtype == torch.bfloat16 else dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out[keep], clean, **tol)


@SETTINGS
@given(arch=st.sampled_from(ARCHS), b=st.integers(1, 2), frames=st.integers(1, 5), tau=st.integers(1, 3),
       bad=st.sampled_from([None, math.nan, math.inf]))
def test_training_loss_refuses_short_or_non_finite_clips(arch, b, frames, tau, bad):
    p = MotionPrior(**{**prior(arch, torch.float32).config, "tau": tau}).train()
    z, c = randn(b, frames, C, 4, 4), randn(b, D, seed=1)
    if bad is not None:
        z[0, 0, 0, 0, 0] = bad
    kwargs = {"aug_noise_levels": torch.linspace(0, 1, 10)} if p.config.noise_aug == "diffusion" else {}
    if frames <= tau:
        with pytest.raises(ValueError, match="latent frames"):
            p.training_loss(z, c, **kwargs)
    elif bad is not None:
        with pytest.raises(ValueError, match="non-finite"):
            p.training_loss(z, c, **kwargs)
    else:
        out = p.training_loss(z, c, generator=torch.Generator().manual_seed(0), **kwargs)
        assert out.per_sample.shape == (b,) and torch.isfinite(out.per_sample).all()


# ---------------------------------------------------------------------------------------- MotionPriorGuidance
LEVELS = {"epsilon": [1e-4, 0.5, 1.0], "v_prediction": [0.0, 0.5, 1.0], "flow": [0.0, 0.5, 1.0]}


@SETTINGS
@given(arch=st.sampled_from(ARCHS), dtype=st.sampled_from(DTYPES), b=st.integers(1, 2), frames=st.integers(1, 5),
       tau=st.integers(1, 3), h=st.integers(1, 4), w=st.integers(1, 4),
       ptype=st.sampled_from(["epsilon", "v_prediction", "flow"]), level=st.integers(0, 2),
       reduction=st.sampled_from(["sum", "element_mean"]), mode=st.sampled_from(["output", "latent"]),
       budget=st.sampled_from([None, 1e-9]),
       bad=st.sampled_from([None, ("o", math.nan), ("x", math.inf), ("cond", math.nan)]))
def test_guidance_gives_a_finite_update_or_a_clear_error(arch, dtype, b, frames, tau, h, w, ptype, level, reduction,
                                                         mode, budget, bad):
    p = prior(arch, dtype)
    g = MotionPriorGuidance(p, scale=0.5, tau=tau, mode=mode, reduction=reduction, activation_budget_gib=budget)
    o, x = randn(b, frames, C, h, w, dtype=dtype), randn(b, frames, C, h, w, seed=1, dtype=dtype)
    cond = randn(b, D, seed=2)
    if bad is not None:
        {"o": o, "x": x, "cond": cond}[bad[0]].view(-1)[0] = bad[1]
    value = LEVELS[ptype][level]
    lv = {"sigma": value} if ptype == "flow" else {"alpha_bar": value}

    def run(guidance):
        return guidance(o, x, step_index=9, num_steps=10, prediction_type=ptype, cond=cond, **lv)

    if frames <= tau:
        with pytest.raises(ValueError, match="latent frames"):
            run(g)
        return
    if bad is not None:
        with pytest.raises(ValueError, match="non-finite"):
            run(g)
        deferred = MotionPriorGuidance(p, scale=0.5, tau=tau, mode=mode, reduction=reduction, check_finite="deferred")
        assert not bool(run(deferred).finite)  # reported, not silent
        return
    out = run(g)
    assert out.active and out.loss.shape == (b,) and torch.isfinite(out.loss).all()
    for got, given_ in ((out.model_output, o), (out.sample, x)):
        assert got.shape == given_.shape and got.dtype == given_.dtype and torch.isfinite(got).all()
