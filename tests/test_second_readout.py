"""The second physics readout (lamo.physics.readout) on the world's own renders, where the truth is known."""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from lamo.physics import (
    evaluate_clip, flip_gravity, get_world_config, make_clip, render, render_frames, run, sample_setup, shuffle_frames,
    teleport,
)
from lamo.physics.readout import (
    jump_rate_curve, paired_change, piecewise_fit, read_balls, read_clip, size_fidelity,
)

TINY = get_world_config("tiny")
S = TINY.size


@pytest.fixture(scope="module")
def clips():
    return [make_clip(TINY, 3_000_000 + s) for s in range(24)]


def test_centres_and_radii_are_read_sub_pixel(clips):
    pos_err, rad_err = [], []
    for c in clips:
        ro = read_balls(c.frames, TINY)
        tr = c.trajectory
        for kk, colour in enumerate(tr.colours):
            k = ro.colours.index(colour)
            whole = ro.whole[:, k]
            assert whole.sum() >= 1
            pos_err += list(np.linalg.norm(ro.positions[whole, k] - tr.position[whole, kk], axis=-1))
            rad_err += list(ro.radius[whole, k] - tr.radius[kk])
        others = [ro.colours.index(c_) for c_ in ro.colours if c_ not in tr.colours]
        assert not ro.seen[:, others].any()  # no colour that is not in the clip
    pos_err, rad_err = np.array(pos_err), np.array(rad_err)
    assert pos_err.mean() < 0.1 and np.percentile(pos_err, 95) < 0.25, (pos_err.mean(), np.percentile(pos_err, 95))
    assert np.abs(rad_err).mean() < 0.1 and np.abs(rad_err).max() < 0.35


def test_gravity_is_recovered_within_a_few_percent(clips):
    stats = [read_clip(c.frames, TINY) for c in clips]
    g = np.array([s.gravity_fit for s in stats])
    g = g[np.isfinite(g)]
    assert len(g) >= 12
    assert abs(np.median(g) / TINY.gravity - 1) < 0.01
    assert np.all(np.abs(g / TINY.gravity - 1) < 0.05), g
    res = np.array([s.ballistic_residual for s in stats])
    assert np.nanmedian(res) < 0.05 and np.nanmax(res) < 0.1  # piecewise fits explain the world's motion


def test_piecewise_fit_finds_a_bounce_and_keeps_a_parabola_whole():
    t = np.arange(16.0)
    y = 5 + 0.5 * 0.5 * t ** 2
    x = 3 + 1.2 * t
    one = piecewise_fit(t, np.stack([x, y], 1))
    assert one == [(0, 16)]
    y2 = y.copy()
    y2[9:] = y[8] - 3.0 * (t[9:] - 8) + 0.25 * (t[9:] - 8) ** 2  # reversed vertical velocity after frame 8
    two = piecewise_fit(t, np.stack([x, y2], 1))
    assert two == [(0, 9), (9, 16)]


def _away(traj, k, frames, margin):
    x, y, r = traj.position[frames, k, 0], traj.position[frames, k, 1], traj.radius[k]
    return bool(((x - r > margin) & (x + r < S - margin) & (y - r > margin) & (y + r < S - margin)).all())


def test_broken_laws_score_worse(clips):
    rng = np.random.default_rng(0)
    gt = [read_clip(c.frames, TINY) for c in clips]
    shuffled = [read_clip(shuffle_frames(c.frames, rng), TINY) for c in clips]
    assert np.nanmedian([s.ballistic_residual for s in shuffled]) > 10 * np.nanmedian([s.ballistic_residual for s in gt])

    jumped, truth = [], []
    for c, s in zip(clips, gt):
        t = c.trajectory
        frame = next((i for i in range(4, 12) if _away(t, 0, slice(i - 2, i + 2), 8.0)), None)
        if frame is not None:
            x = t.position[frame, 0, 0]
            jumped.append(read_clip(teleport(t, TINY, 0, frame, (4.0 if x < S / 2 else -4.0, 0.0)), TINY))
            truth.append(s)
    assert len(jumped) >= 4
    assert all(j.unexplained_dv > 2.0 for j in jumped)  # a 4 px jump is a 4 px/frame² velocity change
    assert all(not (s.unexplained_dv > 1.0) for s in truth)

    g_gt, g_fl = [], []
    for seed in range(10):
        setup = sample_setup(TINY, np.random.default_rng(seed), "throw" if seed % 2 else "drop")
        g_gt.append(read_clip(render(run(TINY, setup), TINY), TINY).gravity_error)
        g_fl.append(read_clip(flip_gravity(TINY, setup, at_frame=6)[0], TINY).gravity_error)
    assert np.nanmedian(g_gt) < 0.03 and np.nanmedian(g_fl) > 0.5, (g_gt, g_fl)


def test_a_failed_track_is_nan_and_summaries_skip_it(clips):
    blank = np.broadcast_to(np.array([20, 20, 28], np.uint8), clips[0].frames.shape).copy()
    s = read_clip(blank, TINY)
    assert s.n_balls == 0 and math.isnan(s.ballistic_residual) and math.isnan(s.gravity_error)
    base = np.array([1.0, 2.0, 4.0, 1.0, 3.0, 2.0, 5.0, s.ballistic_residual])
    var = base * 0.5
    var[0] = math.nan
    out = paired_change(base, var, n_resamples=999)
    assert out["n"] == 6 and out["n_dropped"] == 2
    assert out["median_change"] == pytest.approx(-0.5) and out["share_improved"] == 1.0
    assert out["median_change_ci"] == pytest.approx([-0.5, -0.5]) and out["wilcoxon_p"] < 0.05
    worse = paired_change(base[1:7], base[1:7] * np.array([1.2, 0.9, 1.5, 1.1, 1.3, 1.4]), n_resamples=999)
    assert worse["median_change"] > 0 and worse["share_improved"] == pytest.approx(1 / 6)
    assert worse["mean_change_ci"][0] <= worse["mean_change"] <= worse["mean_change_ci"][1]
    with pytest.raises(ValueError, match="paired"):
        paired_change([1.0, 2.0], [1.0])


def test_size_fidelity_reads_balls_scaled_by_1_3(clips):
    ratios, in_range = [], []
    for c in clips[:12]:
        t = c.trajectory
        big = render_frames(t.position, t.radius * 1.3, t.colours, S, supersample=TINY.supersample)
        truth = read_clip(c.frames, TINY)
        same = size_fidelity(truth, truth, TINY)
        assert same["area_ratio"] == pytest.approx(1.0) and same["in_range"] == 1.0
        fid = size_fidelity(read_clip(big, TINY), truth, TINY)
        if math.isfinite(fid["radius_ratio"]):
            ratios.append(fid["radius_ratio"])
            in_range.append(fid["in_range"])
            assert fid["area_ratio"] == pytest.approx(fid["radius_ratio"] ** 2)
    assert len(ratios) >= 8
    assert np.median(ratios) == pytest.approx(1.3, abs=0.03) and min(ratios) > 1.2
    assert np.mean(in_range) < 0.8  # most scaled balls leave the world's radius range


def test_jump_rate_curve_matches_the_shipped_metric_at_its_threshold(clips):
    rng = np.random.default_rng(1)
    frames = shuffle_frames(clips[0].frames, rng)
    thr = [0.25, 0.5, 1.0, 2.0, 4.0]
    curve = jump_rate_curve(frames, TINY, thr)
    assert all(a >= b for a, b in zip(curve, curve[1:]))  # a higher threshold counts fewer jumps
    assert curve[2] == pytest.approx(evaluate_clip(frames, TINY).jump_rate)  # tiny: max(1, 2g) = 1
    assert curve[0] > 0


def test_benchmark_tables_and_plot_read_a_results_file(tmp_path):
    """The benchmark's table and plot work on a results file (rows as the benchmark writes them)."""
    spec = importlib.util.spec_from_file_location(
        "second_readout", Path(__file__).resolve().parent.parent / "benchmarks" / "second_readout.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    clips = [make_clip(TINY, 3_000_000 + s) for s in range(6)]
    rng = np.random.default_rng(0)

    def rows(jitter):
        out = []
        for i, c in enumerate(clips):
            f = c.frames if jitter == 0 else shuffle_frames(c.frames, rng) if jitter > 1 else c.frames[::-1].copy()
            truth_b = read_clip(c.frames, TINY).to_dict()
            out.append({"seed": 0, "prompt_index": i, "caption": c.caption, **bench._score_clip(f, TINY, truth_b)})
        return out

    truth, base, mpg = rows(0), rows(2), rows(1)
    assert all(r["size"]["area_ratio"] == pytest.approx(1.0) for r in truth)
    pb = bench._col(base, "B", "ballistic_residual")
    pm = bench._col(mpg, "B", "ballistic_residual")
    summary = {"A": {m: paired_change(bench._col(base, "A", m), bench._col(mpg, "A", m), 99) for m in bench.A_METRICS},
               "B": {m: paired_change(bench._col(base, "B", m), bench._col(mpg, "B", m), 99) for m in bench.B_METRICS},
               "A_compare": {"physics_error": {"rel": -0.1, "rel_ci": [-0.2, 0.0], "p_holm": 0.04, "n": 6}},
               "size": {k: {"area_ratio_median": 1.0, "area_ratio_mean": 1.0, "area_ratio_geomean": 1.0, "share_over_1.3": 0.0,
                            "area_to_world_median": 1.0, "in_range": 1.0, "n": 6} for k in ("ground truth", "baseline")},
               "jump_rate_vs_threshold": {"baseline": [0.1] * 9, "relative_change": [0.0] * 9}}
    summary["size"]["MPG vs baseline"] = paired_change(pb, pm, 99)
    res = {"lambda": 3.0, "window": 0.5, "n_clips": 6, "guidance_scale": 2.0, "steps": 25,
           "thresholds": bench.THRESHOLDS, "today_threshold": 1.0, "summary": summary,
           "rows": {"ground truth": truth, "baseline": base, "MPG": mpg}}
    text = bench.tables(res)
    assert "B (template + piecewise fits) | ballistic_residual" in text and "| ground truth | 1.00 |" in text
    assert summary["B"]["ballistic_residual"]["median_change"] < 0  # time-reversed beats shuffled
    png = bench.plot(res, tmp_path / "p.png")
    assert png.stat().st_size > 10_000


def test_a_colour_fringe_inside_a_ball_is_not_a_second_ball(clips):
    c = next(c for c in clips if len(c.trajectory.colours) == 1)
    t = c.trajectory
    k = 1 if t.colours[0] != "magenta" else 2
    other = ("magenta", "cyan")[k - 1]
    pos = np.concatenate([t.position, t.position + np.array([0.6, 0.4])], axis=1)  # a small blob inside the ball
    frames = render_frames(pos, np.array([t.radius[0], 1.6]), [t.colours[0], other], S, supersample=TINY.supersample)
    ro = read_balls(frames, TINY)
    inside = ro.seen[:, ro.colours.index(t.colours[0])]
    assert inside.any() and not ro.seen[inside, ro.colours.index(other)].any()
    assert read_clip(frames, TINY).n_balls == 1
