"""The effect benchmark's statistics (lamo.effect): right verdicts on null, planted and degenerate data."""
import math

import numpy as np
import pytest

from lamo.effect import COMPOSITE, MIN_CLIPS, composite, compare, holm, paired_effect, smallest_detectable

METRICS = [COMPOSITE, "ballistic_residual", "gravity_error", "jump_rate", "detection_rate", "permanence_error"]


def clips(n: int, seed: int) -> list[dict]:
    """Per-clip rows shaped like the demo backbone's: skewed physics errors, some undefined, a detection
    rate near 1. Clip i's "difficulty" is fixed by i (as a prompt fixes a scene), the rest is noise."""
    scene = np.random.default_rng(12345)
    difficulty = scene.lognormal(0, 0.5, n)
    r = np.random.default_rng(seed)
    return [{"ballistic_residual": difficulty[i] * r.lognormal(0, 0.4) if r.random() > 0.4 else math.nan,
             "gravity_error": difficulty[i] * r.lognormal(-1, 0.6),
             "jump_rate": min(1.0, 0.3 * difficulty[i] * r.lognormal(0, 0.3)),
             "detection_rate": float(np.clip(r.normal(0.97, 0.03), 0, 1)),
             "permanence_error": float(r.beta(1, 4))} for i in range(n)]


def paired(rows: list[dict], seed: int, scale: dict | None = None, noise: float = 0.2) -> list[dict]:
    """The same clips under a variant sampled from the same initial noise: each value moves by a
    per-clip random factor of mean 1 (σ 0.2 in log: about the spread of the demo backbone's paired
    ballistic-residual differences) and by ``scale[metric]``; an undefined metric stays undefined."""
    r = np.random.default_rng(seed)
    scale = scale or {}
    out = []
    for row in rows:
        new = {}
        for k, v in row.items():
            f = scale.get(k, 1.0) * (r.lognormal(-noise ** 2 / 2, noise) if k != "detection_rate" else 1.0)
            new[k] = min(1.0, v * f) if k in ("jump_rate", "detection_rate") else v * f
        out.append(new)
    return out


def test_holm_matches_hand_computed_values():
    # sorted 0.01·4 = 0.04, 0.03·3 = 0.09, 0.04·2 = 0.08 → 0.09 (monotone), 0.5·1; NaN is left out of m
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, math.nan, 0.5]), [0.04, 0.09, 0.09, math.nan, 0.5])
    assert holm([0.9, 0.8]).tolist() == [1.0, 1.0]


def test_aa_same_model_other_label_is_no_detectable_change():
    rows = clips(256, seed=1)
    effects = compare(rows, [dict(r) for r in rows], METRICS)
    for e in effects.values():
        assert e.verdict == "no detectable change" and e.diff == 0 and e.p_holm == 1
        assert e.diff_ci == (0.0, 0.0)


def test_aa_other_seeds_is_no_detectable_change():
    """Baseline against itself with other noise: no verdict may fire (Holm keeps the family-wise error ≤ 5 %)."""
    effects = compare(clips(256, seed=1), clips(256, seed=2), METRICS)
    assert {e.verdict for e in effects.values()} == {"no detectable change"}, [e.sentence() for e in effects.values()]
    for e in effects.values():  # the interval covers 0, and a smallest detectable effect is stated
        assert e.diff_ci[0] <= 0 <= e.diff_ci[1] and 0 < e.mde_rel < 0.5
        assert "smallest detectable effect" in e.sentence()


def test_false_alarm_rate_is_controlled_over_many_aa_runs():
    """40 null comparisons × 6 metrics: the family-wise false-alarm rate stays near ≤ 5 %."""
    alarms = 0
    for k in range(40):
        effects = compare(clips(96, seed=100 + 2 * k), clips(96, seed=101 + 2 * k), METRICS, n_resamples=999)
        alarms += any(e.verdict != "no detectable change" for e in effects.values())
    assert alarms <= 5  # expected ≤ 2 at α = 0.05; 6 or more has probability < 1 % under a correct test


def test_a_planted_10_percent_effect_is_detected_at_256_clips():
    base = clips(256, seed=1)
    # ballistic residual and jump rate 10 % lower, nothing else changed (beyond per-clip noise)
    better = paired(base, seed=2, scale={"ballistic_residual": 0.9, "jump_rate": 0.9})
    effects = compare(base, better, METRICS)
    assert effects["ballistic_residual"].verdict == "improved"
    assert effects["jump_rate"].verdict == "improved"
    assert effects[COMPOSITE].verdict == "improved" and -0.15 < effects[COMPOSITE].rel < -0.02
    assert effects["detection_rate"].verdict == "no detectable change"
    worse = compare(better, base, METRICS)  # the same effect read the other way round
    assert worse["jump_rate"].verdict == "worsened"
    null = compare(base, paired(base, seed=3), METRICS)  # the same noise, no planted effect
    assert {e.verdict for e in null.values()} == {"no detectable change"}


def test_higher_is_better_metrics_read_the_right_way():
    base = clips(128, seed=1)
    sharper = [dict(r, detection_rate=min(1.0, r["detection_rate"] + 0.05)) for r in base]
    assert compare(base, sharper, ["detection_rate"])["detection_rate"].verdict == "improved"


def test_composite_normalises_by_the_control_and_skips_undefined_parts():
    control = [{"ballistic_residual": 2.0, "gravity_error": 0.5, "jump_rate": 0.1},
               {"ballistic_residual": math.nan, "gravity_error": 1.5, "jump_rate": 0.3}]
    variant = [{"ballistic_residual": 1.0, "gravity_error": 0.5, "jump_rate": 0.2},
               {"ballistic_residual": 4.0, "gravity_error": 0.0, "jump_rate": math.nan}]
    b, a = composite(control, variant)
    # normalisers (control means where both defined): ballistic 2.0 (clip 0 only), gravity 1.0, jump 0.1
    np.testing.assert_allclose(b, [(1 + 0.5 + 1) / 3, 1.5])
    np.testing.assert_allclose(a, [(0.5 + 0.5 + 2) / 3, 0.0])
    nothing = [{"ballistic_residual": math.nan}] * 2
    assert np.isnan(composite(nothing, nothing)[0]).all()


def test_too_few_clips_and_mismatched_rows_are_said_plainly():
    e = paired_effect(np.arange(MIN_CLIPS - 1, dtype=float), np.arange(MIN_CLIPS - 1, dtype=float) + 1, "jump_rate")
    assert e.verdict == "too few clips" and "too few clips" in e.sentence()
    with pytest.raises(ValueError, match="same \\(prompt, seed\\) clips"):
        compare(clips(10, 1), clips(9, 1), METRICS)


def test_smallest_detectable_effect_follows_the_normal_approximation():
    assert smallest_detectable(1.0, 100, 0.05) == pytest.approx((1.959964 + 0.841621) / 10, rel=1e-5)
    assert math.isnan(smallest_detectable(1.0, 1, 0.05))
