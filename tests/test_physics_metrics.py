"""Tracker accuracy (rendered and after an mp4 round trip), and physics metrics that tell physics from
non-physics: ground truth scores near-perfect; each counterfactual scores clearly worse on the metric
meant to catch it."""
import numpy as np
import pytest

from lamo.physics import (
    WORLD_PRESETS, ClipError, aggregate, detect_contacts, evaluate_clip, flip_gravity, hide_ball, physics_metrics,
    render, run, sample_setup, shuffle_frames, simulate, teleport, track, with_restitution,
)
from lamo.video_io import read_video, write_video

TINY = WORLD_PRESETS["tiny"]
S = TINY.size


def _scores(frames_list):
    return [physics_metrics(track(f), TINY, f) for f in frames_list]


def _mean(ms, name):
    vals = np.array([getattr(m, name) for m in ms], dtype=float)
    return float(np.nanmean(vals)), int(np.isfinite(vals).sum())


def _tracking_errors(traj, tracks):
    """Centre errors (px) of each ball on frames where it is whole and apart from the others."""
    errs, rad_errs = [], []
    for k, c in enumerate(traj.colours):
        kk, p, r = tracks.index(c), traj.position[:, k], traj.radius[k]
        ok = (p[:, 0] - r > 0) & (p[:, 0] + r < S) & (p[:, 1] - r > 0)
        for j in range(len(traj.colours)):
            if j != k:
                ok &= np.linalg.norm(p - traj.position[:, j], axis=1) > r + traj.radius[j] + 1
        assert tracks.visible[ok, kk].all()
        errs.append(np.linalg.norm(tracks.positions[ok, kk] - p[ok], axis=1))
        rad_errs.append(np.abs(tracks.radius[ok, kk] - r))
    return np.concatenate(errs), np.concatenate(rad_errs)


@pytest.fixture(scope="module")
def clips():
    """24 ground-truth clips of the tiny world: (trajectory, frames)."""
    out = []
    for seed in range(24):
        t = simulate(TINY, seed)
        out.append((t, render(t, TINY)))
    return out


# ---------------------------------------------------------------------------------------------
# Tracker
# ---------------------------------------------------------------------------------------------


def test_tracker_recovers_ground_truth_subpixel(clips):
    errs, rad = zip(*(_tracking_errors(t, track(f)) for t, f in clips))
    errs, rad = np.concatenate(errs), np.concatenate(rad)
    assert errs.mean() < 0.03 and errs.max() < 0.15, (errs.mean(), errs.max())
    assert rad.max() < 0.15
    t, f = clips[0]
    tr = track(f)
    assert set(tr.present_colours) == set(t.colours)
    absent = [k for k, c in enumerate(tr.colours) if c not in t.colours]
    assert not tr.visible[:, absent].any() and np.isnan(tr.positions[:, absent]).all()


def test_tracker_after_mp4_round_trip(clips, tmp_path):
    errs = []
    for i, (t, f) in enumerate(clips[:8]):
        write_video(tmp_path / f"{i}.mp4", f, fps=TINY.fps, pix_fmt="yuv444p")  # as lamo data physics writes them
        back = read_video(tmp_path / f"{i}.mp4")
        assert back.shape == f.shape
        errs.append(_tracking_errors(t, track(back))[0])
    errs = np.concatenate(errs)
    assert errs.mean() < 0.1 and errs.max() < 0.5, (errs.mean(), errs.max())


# ---------------------------------------------------------------------------------------------
# Ground truth vs counterfactuals
# ---------------------------------------------------------------------------------------------


def test_ground_truth_scores_near_perfect(clips):
    ms = _scores([f for _, f in clips])
    assert _mean(ms, "gravity_error")[0] < 0.02 and _mean(ms, "gravity_error")[1] >= 10
    assert _mean(ms, "ballistic_residual")[0] < 0.03
    assert _mean(ms, "restitution_error")[0] < 0.02 and _mean(ms, "restitution_error")[1] >= 3
    assert all(m.velocity_jumps == 0 for m in ms)
    assert all(m.permanence_error == 0 for m in ms)
    assert all(m.detection_rate == 1 for m in ms)
    assert _mean(ms, "radius_cv")[0] < 0.01
    assert all(m.n_objects == len(t.colours) for m, (t, _) in zip(ms, clips))
    assert all(m.ghost_rate == 0 and m.background_noise == 0 for m in ms)
    summary = aggregate(ms + [None])  # None = a failed clip, skipped
    assert summary["restitution_error"]["n"] + summary["restitution_error"]["n_undefined"] == len(ms)


def test_shuffled_frames_are_caught_by_velocity_jumps(clips):
    rng = np.random.default_rng(0)
    gt = _scores([f for _, f in clips])
    shuffled = _scores([shuffle_frames(f, rng) for _, f in clips])
    assert _mean(gt, "jump_rate")[0] == 0
    assert _mean(shuffled, "jump_rate")[0] > 0.2
    assert np.mean([m.velocity_jumps > 0 for m in shuffled]) >= 0.9


def test_flipped_gravity_is_caught_by_gravity_consistency():
    gt, flipped = [], []
    for seed in range(10):
        setup = sample_setup(TINY, np.random.default_rng(seed), "throw" if seed % 2 else "drop")
        gt.append(render(run(TINY, setup), TINY))
        flipped.append(flip_gravity(TINY, setup, at_frame=6)[0])
    g_gt, n_gt = _mean(_scores(gt), "gravity_error")
    g_fl, n_fl = _mean(_scores(flipped), "gravity_error")
    assert n_gt >= 6 and n_fl >= 6
    assert g_gt < 0.02 and g_fl > 0.5, (g_gt, g_fl)


def _away_from_edges(traj, k, frames, margin):
    """Ball ``k`` stays ``margin`` px away from the sides and the top (where balls can leave) in ``frames``."""
    x, y, r = traj.position[frames, k, 0], traj.position[frames, k, 1], traj.radius[k]
    return bool(((x - r > margin) & (x + r < S - margin) & (y - r > margin)).all())


def test_a_hidden_ball_is_caught_by_object_permanence(clips):
    hidden = []
    for t, f in clips:
        if _away_from_edges(t, 0, slice(4, 10), 3.0):
            hidden.append(hide_ball(t, TINY, 0, 5, 9))  # gone for 4 of 16 frames
    assert len(hidden) >= 5
    ms = _scores(hidden)
    assert all(m.permanence_error >= 0.2 for m in ms)
    assert all(m.detection_rate <= 0.9 for m in ms)


def test_a_teleport_is_caught_by_velocity_jumps_and_ballistic_fit(clips):
    jumped = []
    for t, f in clips:
        frame = next((i for i in range(4, 12) if _away_from_edges(t, 0, slice(i - 2, i + 2), 8.0)), None)
        if frame is not None:
            x = t.position[frame, 0, 0]
            jumped.append(teleport(t, TINY, 0, frame, (5.0 if x < S / 2 else -5.0, 0.0)))
    assert len(jumped) >= 5
    ms = _scores(jumped)
    assert all(m.velocity_jumps >= 1 for m in ms)
    assert np.mean([m.velocity_jumps for m in ms]) >= 1.5
    res, n = _mean(ms, "ballistic_residual")
    assert n >= 3 and res > 0.3


def test_other_restitution_is_caught_by_bounce_consistency():
    gt, other = [], []
    for seed in range(12):
        setup = sample_setup(TINY, np.random.default_rng(seed), "drop")
        gt.append(render(run(TINY, setup), TINY))
        other.append(with_restitution(TINY, setup, 0.4)[0])
    e_gt, n_gt = _mean(_scores(gt), "restitution_error")
    e_other, n_other = _mean(_scores(other), "restitution_error")
    assert n_gt >= 3 and n_other >= 3
    assert e_gt < 0.02 and e_other > 0.3, (e_gt, e_other)


def test_contacts_found_in_tracks_match_ground_truth_bounces(clips):
    hits = total = 0
    for t, f in clips:
        tr = track(f)
        c = detect_contacts(tr, TINY.gravity)
        for ev in t.events:
            frame = int(np.ceil(ev.time))
            if ev.kind != "floor" or frame >= t.num_frames - 1 or not t.visible[frame - 1:frame + 1, ev.balls[0]].all():
                continue  # the last frame, or off-screen
            k = tr.index(t.colours[ev.balls[0]])
            window = slice(max(frame - 1, 0), frame + 1)
            total += 1
            hits += bool((c.floor_bounce[window, k] | c.touching_floor[window, k]).any())
    assert total >= 10 and hits == total


# ---------------------------------------------------------------------------------------------
# Clips that cannot be scored
# ---------------------------------------------------------------------------------------------


def test_clips_that_cannot_be_scored_say_why(clips):
    _, f = clips[0]
    with pytest.raises(ClipError, match="no ball"):
        evaluate_clip(np.full_like(f, 20), TINY)
    with pytest.raises(ClipError, match="frame size 48×48"):
        evaluate_clip(np.zeros((16, 48, 48, 3), np.uint8), TINY)
    with pytest.raises(ClipError, match="at least 3"):
        evaluate_clip(f[:2], TINY)
    m = evaluate_clip(f, TINY)
    assert m.detection_rate == 1 and np.isfinite(m.sharpness)


def test_speckle_and_ghost_balls_are_caught_by_the_appearance_metrics(clips):
    traj, frames = next((t, f) for t, f in clips if len(t.colours) == 1)
    noisy = np.clip(frames.astype(int) + np.random.default_rng(0).integers(-12, 13, frames.shape), 0, 255).astype(np.uint8)
    m = physics_metrics(track(noisy), TINY, noisy)
    assert 7 < m.background_noise < 11  # the largest of 3 |uniform(−12, 12)|: 9 grey levels on average
    assert m.ghost_rate == 0
    ghost = frames.copy()
    ghost[:, :, :S // 2] = frames[:, :, S // 2:]  # the right half drawn over the left: balls there appear twice
    ghost[:, :, S // 2:] = frames[:, :, S // 2:]
    m = physics_metrics(track(ghost), TINY, ghost)
    twice = [(p[:, 0] > S / 2 + traj.radius[0] + 1) for p in traj.position.transpose(1, 0, 2)][0]
    assert twice.any() and m.ghost_rate >= 0.9 * twice.mean() > 0
    assert m.background_noise == 0  # the copies are balls, not background
