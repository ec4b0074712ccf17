"""Read ball states back out of any clip of the world — ground truth, re-encoded or generated.

Colour model. An anti-aliased edge pixel of a ball of colour ``c`` over the background ``b`` is a blend
``p = b + α (c − b)``. For each palette colour the tracker projects the pixel onto that blend line::

    α_k = ⟨p − b, c_k − b⟩ / ‖c_k − b‖²        (match strength: 1 = pure colour, 0 = background)
    d_k = ‖p − b − clip(α_k, 0, 1)(c_k − b)‖    (distance to the blend segment, grey levels)

and gives the pixel to the colour with the smallest ``d_k``, if ``d_k ≤ tol_abs + tol_rel·α_k‖c_k − b‖``.

Per frame and colour: pixels with ``α > core_alpha`` form the core mask; its 8-connected components
(``cv2.connectedComponentsWithStats``) with a coverage-weighted area ``≥ min_area`` are objects; the
largest is the ball. Its region is the component grown by one pixel (to take back the soft edge) and
restricted to pixels of that colour with ``α > edge_alpha``. With weights ``w = clip(α, 0, 1)``::

    centre = Σ w·(j + ½, i + ½) / Σ w      (px, the world's coordinates)
    radius = √(Σ w / π)                     (px; Σ w is the disc's area)

On clips rendered by :mod:`~lamo.physics.render` this recovers the true centre to ~0.05 px (a little
more after an mp4 round trip). A ball cut by the image border gets a biased centre: the metrics treat
frames touching the border as contact frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .world import BACKGROUND, PALETTE

__all__ = ["Tracks", "TrackerConfig", "track"]


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds of :func:`track` (grey levels are 0–255)."""

    core_alpha: float = 0.5  # a pixel is "inside" a ball above this match strength
    edge_alpha: float = 0.05  # soft-edge pixels next to the core count down to this strength
    tol_abs: float = 12.0  # allowed distance to the blend line, grey levels …
    tol_rel: float = 0.3  # … plus this fraction of α·‖c − b‖ (compression and blur scale with contrast)
    min_area: float = 2.0  # px²: smaller blobs are noise


@dataclass
class Tracks:
    """Per-frame object states read from a clip (``T`` frames, ``K`` palette colours).

    Dim ``K`` runs over ``colours`` (the whole palette, in order), whether a colour appears or not.
    """

    colours: tuple[str, ...]  # (K,)
    positions: np.ndarray  # (T, K, 2) float64, (x, y) px; NaN where not visible
    radius: np.ndarray  # (T, K) px; NaN where not visible
    visible: np.ndarray  # (T, K) bool
    area: np.ndarray  # (T, K) coverage-weighted area of the ball, px² (0 when not visible)
    n_components: np.ndarray  # (T, K) int: objects of that colour (> 1: the colour is split/duplicated)
    frame_size: tuple[int, int]  # (H, W)
    claimed: np.ndarray | None = None  # (T, H, W) bool: pixels the colour model gives to some ball (α > edge_alpha)

    @property
    def num_frames(self) -> int:
        return self.positions.shape[0]

    @property
    def present(self) -> np.ndarray:
        """``(K,)`` bool: the colour is visible in at least one frame."""
        return self.visible.any(axis=0)

    @property
    def present_colours(self) -> tuple[str, ...]:
        return tuple(c for c, p in zip(self.colours, self.present) if p)

    def index(self, colour: str) -> int:
        return self.colours.index(colour)


def _colour_match(frames: np.ndarray, rgb: np.ndarray, background: np.ndarray, cfg: TrackerConfig) -> np.ndarray:
    """Match weights ``w = clip(α_k, 0, 1)`` of pixels assigned to colour ``k`` → ``(T, K, H, W)`` float32."""
    d = frames.astype(np.float32) - background  # (T, H, W, 3)
    u = (rgb - background).astype(np.float32)  # (K, 3)
    uu = (u * u).sum(-1)  # (K,)
    du = np.einsum("thwc,kc->tkhw", d, u)  # (T, K, H, W)
    alpha = du / uu[None, :, None, None]
    a = np.clip(alpha, 0.0, 1.0)
    dd = (d * d).sum(-1)[:, None]  # (T, 1, H, W)
    dist = np.sqrt(np.maximum(dd - 2 * a * du + a * a * uu[None, :, None, None], 0.0))  # (T, K, H, W)
    label = dist.argmin(axis=1)  # (T, H, W)
    own = label[:, None] == np.arange(len(rgb))[None, :, None, None]  # (T, K, H, W)
    ok = dist <= cfg.tol_abs + cfg.tol_rel * a * np.sqrt(uu)[None, :, None, None]
    return np.where(own & ok, a, 0.0).astype(np.float32)


def track(
    frames: np.ndarray,
    palette: dict[str, tuple[int, int, int]] | None = None,
    background: tuple[int, int, int] = BACKGROUND,
    config: TrackerConfig = TrackerConfig(),
) -> Tracks:
    """Track every palette colour in ``frames`` (``(T, H, W, 3)`` uint8 RGB) → :class:`Tracks`."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be a non-empty (T, H, W, 3) RGB array, got shape {frames.shape}")
    palette = PALETTE if palette is None else palette
    colours = tuple(palette)
    rgb = np.array([palette[c] for c in colours], dtype=np.float32)  # (K, 3)
    T, H, W = frames.shape[:3]
    K = len(colours)
    w = _colour_match(frames, rgb, np.asarray(background, dtype=np.float32), config)  # (T, K, H, W)

    pos = np.full((T, K, 2), np.nan)
    rad = np.full((T, K), np.nan)
    area = np.zeros((T, K))
    ncomp = np.zeros((T, K), dtype=np.int64)
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)  # pixel centres, (H, W)
    kernel = np.ones((3, 3), np.uint8)
    for t in range(T):
        for k in range(K):
            wk = w[t, k]  # (H, W)
            core = (wk > config.core_alpha).astype(np.uint8)
            if not core.any():
                continue
            n, labels = cv2.connectedComponentsWithStats(core, connectivity=8)[:2]
            grown = [cv2.dilate((labels == c).astype(np.uint8), kernel) for c in range(1, n)]
            areas = np.array([wk[(g > 0) & (wk > config.edge_alpha)].sum() for g in grown])
            big = areas >= config.min_area
            ncomp[t, k] = int(big.sum())
            if not big.any():
                continue
            best = int(areas.argmax())
            region = (grown[best] > 0) & (wk > config.edge_alpha)
            wr = np.where(region, wk, 0.0)
            s = float(wr.sum())
            pos[t, k] = ((wr * jj).sum() / s, (wr * ii).sum() / s)
            rad[t, k] = np.sqrt(s / np.pi)
            area[t, k] = s
    return Tracks(colours=colours, positions=pos, radius=rad, visible=area > 0, area=area, n_components=ncomp,
                  frame_size=(H, W), claimed=(w > config.edge_alpha).any(axis=1))
