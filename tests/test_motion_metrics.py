"""Weight-free VBench-style motion metrics: flow sanity, dynamic degree, smoothness, flickering."""
import numpy as np
import pytest

from lamo.motion_metrics import MOTION_METRICS, aggregate_motion, farneback_flow, motion_metrics
from lamo.physics import WORLD_PRESETS, render, shuffle_frames, simulate

TINY = WORLD_PRESETS["tiny"]


@pytest.fixture(scope="module")
def clips():
    return [render(simulate(TINY, seed), TINY) for seed in range(10)]


def test_farneback_flow_recovers_a_translation():
    rng = np.random.default_rng(0)
    img = (rng.random((64, 64)) * 255).astype(np.uint8)
    import cv2

    img = cv2.GaussianBlur(img, (0, 0), 2.0)
    shifted = np.roll(img, (1, 2), axis=(0, 1))  # content moves by (dx, dy) = (2, 1)
    flow = farneback_flow(img, shifted)
    assert np.median(flow[8:-8, 8:-8, 0]) == pytest.approx(2.0, abs=0.15)
    assert np.median(flow[8:-8, 8:-8, 1]) == pytest.approx(1.0, abs=0.15)


def test_static_video_is_not_dynamic_and_perfectly_smooth(clips):
    still = np.repeat(clips[0][:1], 16, axis=0)
    m = motion_metrics(still)
    assert m.dynamic_degree == 0 and m.dynamic_score == 0
    assert m.motion_smoothness == pytest.approx(1.0, abs=1e-3) and m.temporal_flickering == pytest.approx(1.0)
    assert m.threshold == pytest.approx(6 * 32 / 256)


def test_world_clips_are_dynamic_smooth_and_steady(clips):
    ms = [motion_metrics(f) for f in clips]
    assert np.mean([m.dynamic_degree for m in ms]) >= 0.8
    assert min(m.motion_smoothness for m in ms) > 0.98
    assert min(m.temporal_flickering for m in ms) > 0.999


def test_shuffled_frames_are_less_smooth(clips):
    rng = np.random.default_rng(0)
    gt = np.mean([1 - motion_metrics(f).motion_smoothness for f in clips])
    shuffled = np.mean([1 - motion_metrics(shuffle_frames(f, rng)).motion_smoothness for f in clips])
    assert shuffled > 2.5 * gt, (gt, shuffled)  # interpolation error, grey levels / 255


def test_flicker_lowers_temporal_flickering(clips):
    rng = np.random.default_rng(0)
    for f in clips[:4]:
        jitter = rng.integers(-12, 13, size=(len(f), 1, 1, 1))
        flick = np.clip(f.astype(int) + jitter, 0, 255).astype(np.uint8)
        assert motion_metrics(f).temporal_flickering > 0.999
        assert motion_metrics(flick).temporal_flickering < 0.985


def test_bad_input_and_aggregate(clips):
    with pytest.raises(ValueError, match="at least 3"):
        motion_metrics(clips[0][:2])
    with pytest.raises(ValueError, match="RGB"):
        motion_metrics(clips[0][..., 0])
    ms = [motion_metrics(f) for f in clips[:3]]
    agg = aggregate_motion(ms + [None])
    assert set(agg) == set(MOTION_METRICS)
    assert agg["dynamic_degree"]["n"] == 3 and agg["dynamic_degree"]["n_undefined"] == 0
