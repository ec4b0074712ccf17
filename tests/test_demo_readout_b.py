"""The effect benchmark's second readout: per-clip scoring carries readout B's statistics and size fidelity,
and the statistics give readout B its own paired family and robust summaries."""
import math

import numpy as np

from lamo.demo.stats import READOUT_B, ROBUST_B, analyse, analyse_readout_b, headline_both
from lamo.demo.variants import READOUT_B_STATS, _score, add_ground_truth
from lamo.effect import COMPOSITE
from lamo.physics.dataset import make_clip
from lamo.physics.world import get_world_config

WORLD = get_world_config("tiny")


def _clips(n=6):
    return [make_clip(WORLD, 5_000_000 + i) for i in range(n)]


def test_score_rows_carry_readout_b_and_ground_truth_scores_size_ratio_one():
    clips = _clips(3)
    frames = np.stack([c.frames for c in clips])[None]
    plain = _score(frames, WORLD, [c.caption for c in clips], (0,))
    assert not any(k.startswith("b_") for r in plain for k in r)  # readout B only when asked (validation skips it)
    rows = {"baseline": _score(frames, WORLD, [c.caption for c in clips], (0,), second_readout=True)}
    for r in rows["baseline"]:
        assert {f"b_{k}" for k in READOUT_B_STATS} <= set(r) and r["b_ball_area"]
        assert math.isfinite(r["b_ballistic_residual"]) and r["b_ballistic_residual"] < 0.1  # the world's own laws
    add_ground_truth(rows, clips, WORLD)
    for name in ("baseline", "ground truth"):  # the ground truth against itself: the world's size exactly
        for r in rows[name]:
            assert r["b_area_ratio"] == 1.0 and r["b_size_error"] == 0.0


def test_a_shrunk_ball_reads_as_a_size_error():
    truth = {"x": [{"prompt_index": i, "b_ball_area": {"red": 12.0}} for i in range(2)]}
    rows = [{"prompt_index": 0, "b_ball_area": {"red": 6.0}}, {"prompt_index": 1, "b_ball_area": {"blue": 6.0}}]
    from lamo.demo.variants import add_size_fidelity

    add_size_fidelity(rows, truth["x"], WORLD)
    assert math.isclose(rows[0]["b_area_ratio"], 0.5) and math.isclose(rows[0]["b_size_error"], math.log(2))
    assert math.isnan(rows[1]["b_area_ratio"]) and math.isnan(rows[1]["b_size_error"])  # no ball in common


def _fake_rows(n=24, seed=0):
    rng = np.random.default_rng(seed)
    base, mpg = [], []
    for i in range(n):
        b = {"prompt_index": i, "ballistic_residual": 1 + rng.random(), "gravity_error": 0.5 + rng.random(),
             "jump_rate": rng.random(), "b_ballistic_residual": 0.2 + rng.random(), "b_gravity_error": 0.3 + rng.random(),
             "b_unexplained_dv": 1 + rng.random(), "b_size_error": 0.2 * rng.random()}
        base.append(b)
        mpg.append({**b, "ballistic_residual": 0.6 * b["ballistic_residual"],
                    "b_ballistic_residual": 0.7 * b["b_ballistic_residual"] * (1.3 if i % 5 == 0 else 1.0)})
    return {"baseline": base, "MPG λ=3": mpg}


def test_readout_b_family_has_intervals_verdicts_and_robust_summaries():
    rows = _fake_rows()
    effects, _ = analyse(rows, [("MPG λ=3", "baseline")], n_resamples=199)
    effects_b, robust_b = analyse_readout_b(rows, [("MPG λ=3", "baseline")], n_resamples=199)
    key = "MPG λ=3 vs baseline"
    assert set(effects_b[key]) == set(READOUT_B) and set(robust_b[key]) == set(ROBUST_B)
    e = effects_b[key]["b_ballistic_residual"]
    assert e.verdict == "improved" and e.rel_ci[0] < e.rel < e.rel_ci[1] < 0 and math.isfinite(e.p_holm)
    assert effects_b[key]["b_gravity_error"].verdict == "no detectable change"  # unchanged: no verdict
    pc = robust_b[key]["b_ballistic_residual"]
    # 4 clips in 5 at 0.7×, every fifth at 0.91×: all lower, median −30 %
    assert math.isclose(pc["median_change"], -0.3, abs_tol=1e-9) and pc["share_improved"] == 1.0 and pc["wilcoxon_p"] < 0.01
    text = headline_both(key, effects, robust_b)
    assert "composite physics error" in text and "(readout A" in text and "-30.0 %" in text and "(readout B)" in text
    assert f"{100 * effects[key][COMPOSITE].rel:+.1f} %" in text
    # rows from before readout B: no family, nothing invented
    old = {k: [{m: v for m, v in r.items() if not m.startswith("b_")} for r in rs] for k, rs in rows.items()}
    assert analyse_readout_b(old, [("MPG λ=3", "baseline")], n_resamples=199) == ({}, {})
