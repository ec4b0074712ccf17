"""Counterfactual clips that break one law each — to check that the metrics catch what they claim.

Each returns frames ``(T, S, S, 3)`` uint8 (and, where it re-simulates, the new trajectory):

* :func:`shuffle_frames` — time order destroyed (ballistic residual, jumps);
* :func:`flip_gravity` — ``g → −g`` from a frame on (gravity consistency);
* :func:`hide_ball` — a ball vanishes for a few frames (object permanence);
* :func:`teleport` — a ball jumps by an offset and carries on from there (velocity jumps);
* :func:`with_restitution` — bounces with another restitution than the world's (bounce consistency).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .render import render, render_frames
from .world import Setup, Trajectory, WorldConfig, run

__all__ = ["shuffle_frames", "flip_gravity", "hide_ball", "teleport", "with_restitution"]


def shuffle_frames(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frames in a random order other than the original one."""
    T = len(frames)
    perm = rng.permutation(T)
    while T > 1 and np.array_equal(perm, np.arange(T)):
        perm = rng.permutation(T)
    return frames[perm]


def flip_gravity(cfg: WorldConfig, setup: Setup, at_frame: int) -> tuple[np.ndarray, Trajectory]:
    """Re-simulate ``setup`` with gravity pointing *up* from frame ``at_frame`` on."""
    g = np.full(cfg.frames - 1, cfg.gravity)
    g[at_frame:] = -cfg.gravity
    traj = run(cfg, setup, gravity=g)
    return render(traj, cfg), traj


def hide_ball(traj: Trajectory, cfg: WorldConfig, ball: int, start: int, stop: int) -> np.ndarray:
    """Render ``traj`` with ball ``ball`` missing from frames ``start … stop − 1``."""
    draw = np.ones(traj.visible.shape, dtype=bool)
    draw[start:stop, ball] = False
    return render(traj, cfg, draw=draw)


def teleport(traj: Trajectory, cfg: WorldConfig, ball: int, frame: int, offset: tuple[float, float]) -> np.ndarray:
    """Render ``traj`` with ball ``ball`` displaced by ``offset`` (px) from frame ``frame`` on."""
    pos = traj.position.copy()
    pos[frame:, ball] += np.asarray(offset, dtype=np.float64)
    return render_frames(pos, traj.radius, traj.colours, cfg.size, supersample=cfg.supersample)


def with_restitution(cfg: WorldConfig, setup: Setup, restitution: float) -> tuple[np.ndarray, Trajectory]:
    """Re-simulate ``setup`` in a world whose floor and walls have another ``restitution``."""
    other = replace(cfg, restitution=restitution)
    traj = run(other, setup)
    return render(traj, other), traj
