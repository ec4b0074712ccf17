"""Anti-aliased rendering of the ball world to ``(T, H, W, 3)`` uint8 RGB frames.

Each pixel is sampled at ``s × s`` sub-pixel centres, and each sample's coverage is a one-sample-wide
linear ramp across the disc's edge, ``clip((r − d)·s + ½, 0, 1)`` with ``d`` the distance to the
centre. The pixel's coverage ``α`` is the mean over its samples — very close to the exact area
fraction of the pixel inside the disc — and the pixel colour is ``(1 − α)·below + α·colour``, balls
drawn in index order over the plain :data:`~lamo.physics.world.BACKGROUND`.

Because ``α`` is (nearly) the true area fraction, the coverage-weighted centroid of a disc's pixels
is its centre to well under 0.1 px, which is what lets the tracker recover positions sub-pixel.
"""
from __future__ import annotations

import numpy as np

from .world import BACKGROUND, PALETTE, Trajectory, WorldConfig

__all__ = ["disc_coverage", "render_frames", "render"]


def disc_coverage(x: float, y: float, r: float, height: int, width: int, supersample: int = 4) -> np.ndarray:
    """Fraction of each pixel covered by the disc of centre ``(x, y)`` and radius ``r`` → ``(H, W)``."""
    s = supersample
    xs = (np.arange(width * s) + 0.5) / s  # sub-pixel centres, px
    ys = (np.arange(height * s) + 0.5) / s
    d = np.sqrt((xs[None, :] - x) ** 2 + (ys[:, None] - y) ** 2)  # (H·s, W·s)
    cov = np.clip((r - d) * s + 0.5, 0.0, 1.0)
    return cov.reshape(height, s, width, s).mean(axis=(1, 3))  # (H, W)


def render_frames(
    position: np.ndarray,
    radius: np.ndarray,
    colours: tuple[str, ...] | list[str],
    size: int | tuple[int, int],
    draw: np.ndarray | None = None,
    supersample: int = 4,
    background: tuple[int, int, int] = BACKGROUND,
) -> np.ndarray:
    """Render discs to frames.

    Args:
        position: ``(T, K, 2)`` centres ``(x, y)`` in px (image coordinates, y down).
        radius: ``(K,)`` or ``(T, K)`` radii, px.
        colours: ``K`` palette names (or RGB triples).
        size: ``H = W`` or ``(H, W)``.
        draw: optional ``(T, K)`` bool; ``False`` leaves a ball out of that frame.
    Returns:
        ``(T, H, W, 3)`` uint8 RGB.
    """
    H, W = (size, size) if isinstance(size, (int, np.integer)) else size
    position = np.asarray(position, dtype=np.float64)
    T, K = position.shape[:2]
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (T, K))
    rgb = np.array([PALETTE[c] if isinstance(c, str) else c for c in colours], dtype=np.float64).reshape(K, 3)
    out = np.empty((T, H, W, 3), dtype=np.uint8)
    for t in range(T):
        img = np.broadcast_to(np.asarray(background, dtype=np.float64), (H, W, 3)).copy()  # (H, W, 3)
        for k in range(K):
            if draw is not None and not draw[t, k]:
                continue
            x, y, r = position[t, k, 0], position[t, k, 1], radius[t, k]
            if not (np.isfinite(x) and np.isfinite(y)) or x + r < 0 or x - r > W or y + r < 0 or y - r > H:
                continue
            a = disc_coverage(x, y, r, H, W, supersample)[..., None]  # (H, W, 1)
            img = (1.0 - a) * img + a * rgb[k]
        out[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def render(traj: Trajectory, cfg: WorldConfig, draw: np.ndarray | None = None) -> np.ndarray:
    """Render a simulated :class:`Trajectory` at the world's resolution → ``(T, S, S, 3)`` uint8."""
    return render_frames(traj.position, traj.radius, traj.colours, cfg.size, draw=draw, supersample=cfg.supersample)
