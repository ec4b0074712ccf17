"""The physics world: configuration, determinism, exact free flight, conservation laws, walls,
friction, captions, JSON round trips and the anti-aliased renderer."""
import math
from dataclasses import replace

import numpy as np
import pytest

from lamo.physics import (
    PALETTE, SCENARIOS, WORLD_PRESETS, Ball, Setup, Trajectory, WorldConfig, caption, disc_coverage,
    get_world_config, make_clip, render_frames, run, simulate,
)

TINY = WORLD_PRESETS["tiny"]


def test_presets_and_config_round_trip():
    assert (TINY.size, TINY.frames) == (32, 16)
    assert (WORLD_PRESETS["small"].size, WORLD_PRESETS["small"].frames) == (48, 24)
    cfg = get_world_config("small", gravity=0.3)
    assert cfg.gravity == 0.3 and WORLD_PRESETS["small"].gravity != 0.3  # a copy, preset untouched
    assert WorldConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown WorldConfig keys"):
        WorldConfig.from_dict({**cfg.to_dict(), "wind": 1.0})
    with pytest.raises(ValueError, match="unknown colours"):
        WorldConfig(colours=("red", "purple"))
    with pytest.raises(ValueError, match="unknown world preset"):
        get_world_config("huge")
    with pytest.raises(ValueError, match="largest radius"):  # too big to place two balls for "collide"
        get_world_config("tiny", size=16, radius=(2.0, 3.0))


def test_same_seed_same_clip_different_seed_different_clip():
    a, b, c = simulate(TINY, 123), simulate(TINY, 123), simulate(TINY, 124)
    assert np.array_equal(a.position, b.position) and np.array_equal(a.velocity, b.velocity)
    assert a.events == b.events and a.colours == b.colours and a.scenario == b.scenario
    assert not (a.position.shape == c.position.shape and np.allclose(a.position, c.position))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_family_stays_inside_its_walls(scenario):
    for seed in range(8):
        t = simulate(TINY, seed, scenario)
        r, S = t.radius[None, :], TINY.size
        x, y = t.position[..., 0], t.position[..., 1]
        assert (y <= S - r + 1e-6).all(), "a ball went through the floor"
        if t.side_walls:
            assert ((x >= r - 1e-6) & (x <= S - r + 1e-6)).all(), "a ball went through a wall"
        else:  # "pass": the ball leaves through a side; `visible` follows the geometry
            geo = (x + r > 0) & (x - r < S) & (y + r > 0) & (y - r < S)
            assert np.array_equal(t.visible, geo)
        assert len(set(t.colours)) == len(t.colours) and all(c in PALETTE for c in t.colours)


def test_free_flight_is_exact_parabola():
    setup = Setup("throw", [Ball("red", 3.0, (6.0, 20.0), (1.0, -3.5))])
    t = run(TINY, setup)
    assert not t.events  # no contact within 16 frames
    tt = np.arange(TINY.frames)
    assert np.allclose(t.position[:, 0, 0], 6.0 + 1.0 * tt, atol=1e-9)
    assert np.allclose(t.position[:, 0, 1], 20.0 - 3.5 * tt + 0.5 * TINY.gravity * tt**2, atol=1e-9)


def test_elastic_ball_collision_conserves_energy_and_momentum():
    cfg = replace(TINY, size=64, gravity=0.0, ball_restitution=1.0)  # big enough to reach no wall
    setup = Setup("collide", [Ball("red", 3.0, (24.0, 31.0), (1.2, 0.1)), Ball("blue", 4.0, (40.0, 32.5), (-0.8, 0.0))])
    t = run(cfg, setup, gravity=0.0)
    assert [e.kind for e in t.events] == ["ball"]
    m = t.radius**2  # masses ∝ area
    ke = 0.5 * (m[None, :] * (t.velocity**2).sum(-1)).sum(1)  # (T,)
    mom = (m[None, :, None] * t.velocity).sum(1)  # (T, 2)
    assert np.allclose(ke, ke[0], rtol=1e-12) and np.allclose(mom, mom[0], atol=1e-12)
    assert not np.allclose(t.velocity[-1], t.velocity[0])  # they did exchange momentum


def test_elastic_floor_and_walls_conserve_energy():
    cfg = replace(TINY, restitution=1.0)
    t = run(cfg, Setup("throw", [Ball("green", 3.0, (16.0, 8.0), (2.5, 0.0))]))
    kinds = {e.kind for e in t.events}
    assert {"floor", "wall"} <= kinds
    energy = 0.5 * (t.velocity[:, 0] ** 2).sum(-1) - cfg.gravity * t.position[:, 0, 1]  # per unit mass, y down
    assert np.allclose(energy, energy[0], atol=1e-9)


def test_restitution_scales_the_bounce_speed():
    t = run(TINY, Setup("drop", [Ball("white", 3.0, (16.0, 6.0))]))
    (hit,) = [e for e in t.events if e.kind == "floor"][:1]
    # Speed at impact from energy: v = sqrt(2 g h); right after the bounce: −e·v.
    v_in = math.sqrt(2 * TINY.gravity * (TINY.size - 3.0 - 6.0))
    f = math.ceil(hit.time)  # first frame after the bounce
    vy_after = t.velocity[f, 0, 1] - TINY.gravity * (f - hit.time)  # back to the impact time
    assert vy_after == pytest.approx(-TINY.restitution * v_in, rel=1e-9)
    assert t.floor_contact[f, 0]


def test_rolling_with_and_without_friction():
    slow = run(TINY, Setup("roll", [Ball("red", 3.0, (6.0, 29.0), (1.5, 0.0), resting=True)], friction=0.1))
    free = run(TINY, Setup("roll", [Ball("red", 3.0, (6.0, 29.0), (1.5, 0.0), resting=True)], friction=0.0))
    assert np.allclose(slow.position[:, 0, 1], 29.0) and slow.floor_contact.all()
    dv = np.diff(slow.velocity[:, 0, 0])
    assert np.allclose(dv[slow.velocity[1:, 0, 0] > 0], -0.1 * TINY.gravity)  # Coulomb: μ·g per frame
    assert np.allclose(free.velocity[:, 0, 0], 1.5)


def test_captions_follow_the_events():
    drop = run(TINY, Setup("drop", [Ball("orange", 3.0, (16.0, 6.0))]))
    assert caption(drop) == "an orange ball is dropped and bounces on the floor"
    throw = run(TINY, Setup("throw", [Ball("red", 3.0, (20.0, 16.0), (2.0, -1.0))]))
    assert caption(throw).startswith("a red ball is thrown to the right, bounces off the wall")
    for seed in range(20):
        clip = make_clip(TINY, seed)
        assert all(c in clip.caption for c in clip.trajectory.colours)


def test_trajectory_json_round_trip():
    t = simulate(TINY, 7, "collide")
    back = Trajectory.from_json(t.to_json(decimals=12))
    assert np.allclose(back.position, t.position) and np.array_equal(back.ball_contact, t.ball_contact)
    assert back.colours == t.colours and [e.kind for e in back.events] == [e.kind for e in t.events]


def test_renderer_is_antialiased_with_exact_area():
    cov = disc_coverage(10.3, 12.7, 3.4, 32, 32, supersample=4)
    assert cov.sum() == pytest.approx(math.pi * 3.4**2, rel=5e-3)
    assert ((cov > 0.05) & (cov < 0.95)).sum() > 10  # soft edge
    jj, ii = np.meshgrid(np.arange(32) + 0.5, np.arange(32) + 0.5)
    assert (cov * jj).sum() / cov.sum() == pytest.approx(10.3, abs=0.02)
    assert (cov * ii).sum() / cov.sum() == pytest.approx(12.7, abs=0.02)
    frames = render_frames(np.array([[[10.3, 12.7]]]), np.array([3.4]), ["cyan"], 32)
    assert frames.shape == (1, 32, 32, 3) and frames.dtype == np.uint8
    assert tuple(frames[0, 12, 10]) == PALETTE["cyan"] and tuple(frames[0, 0, 0]) == (20, 20, 28)
