"""Weight-free motion metrics in the style of VBench, on any video, with OpenCV optical flow.

VBench (Huang et al., 2024) scores motion with learned models; these versions need no weights and run
on a CPU. Each is computed per video on ``(T, H, W, 3)`` uint8 RGB frames, with dense Farneback flow
(``cv2.calcOpticalFlowFarneback``) on the grey frames; pyramid depth and window scale with the
resolution so that tiny videos (32×32) and large ones both work.

* **Dynamic degree** — VBench: RAFT flow between consecutive frames; per pair the mean of the top 5 %
  flow magnitudes; a video is *dynamic* when at least ``round(4·T/16)`` pairs exceed
  ``6·min(H, W)/256`` px. Same rule here with Farneback flow in place of RAFT. Per video we also
  report ``dynamic_score``, the fraction of pairs above the threshold. Higher = more motion (neither
  direction is "better"; VBench reports it alongside smoothness because a static video is smooth).
* **Motion smoothness** ∈ [0, 1], higher is better — VBench drops the odd frames, re-creates them from
  the even ones with the AMT interpolation network and scores ``(255 − mean |Î − I|)/255``. Here each
  middle frame ``I_{t+1}`` is predicted from ``I_t`` and ``I_{t+2}`` by warping both halfway along the
  Farneback flows between them, ``Î = ½(I_t(x − ½F_{t→t+2}(x)) + I_{t+2}(x − ½F_{t+2→t}(x)))``, and the
  score is ``1 − mean|Î − I_{t+1}|/255`` over all middle frames. Linear, steady motion is predicted
  well; jerks, jumps and shuffled frames are not. Without a learned interpolator, large displacements
  of small objects are predicted worse than by AMT, so absolute values are not comparable with VBench's.
* **Temporal flickering** ∈ [0, 1], higher is better — VBench keeps only static-camera videos and scores
  ``(255 − mean |I_{t+1} − I_t|)/255`` over whole frames. Here the mean is taken over *static pixels*
  only (flow below ``static_flow`` px both ways, away from moving regions), so moving objects don't
  count as flicker and any video can be scored: ``1 − mean_static |I_{t+1} − I_t| / 255``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

__all__ = ["MotionMetrics", "MOTION_METRICS", "farneback_flow", "motion_metrics", "aggregate_motion"]

#: name -> (unit, better, one-line meaning); the order of the result tables.
MOTION_METRICS: dict[str, tuple[str, str, str]] = {
    "dynamic_degree": ("fraction", "", "videos with enough large-motion frame pairs (VBench rule)"),
    "dynamic_score": ("fraction", "", "frame pairs whose top-5% flow exceeds the threshold"),
    "flow_top5": ("px/frame", "", "mean of the top-5% flow magnitudes"),
    "motion_smoothness": ("[0,1]", "higher", "1 − flow-interpolation error of middle frames / 255"),
    "temporal_flickering": ("[0,1]", "higher", "1 − mean |frame difference| on static pixels / 255"),
}


@dataclass
class MotionMetrics:
    """Motion metrics of one video (see the module docstring). NaN = undefined (e.g. no static pixel)."""

    dynamic_degree: float  # 1.0 if the video is dynamic by VBench's rule, else 0.0 (mean over videos = VBench's)
    dynamic_score: float  # fraction of consecutive pairs above the threshold
    flow_top5: float  # px/frame
    motion_smoothness: float  # [0, 1]
    temporal_flickering: float  # [0, 1]
    threshold: float  # px/frame: 6·min(H, W)/256
    frames: int

    def to_dict(self) -> dict:
        return asdict(self)


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def farneback_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense flow from grey frame ``a`` to ``b`` → ``(H, W, 2)`` px, ``(dx, dy)`` such that ``a(x) ≈ b(x + F(x))``.

    Pyramid levels: one per halving down to ~16 px (at most 5); window ≈ ``min(H, W)/4`` in [5, 21].
    """
    size = min(a.shape[:2])
    levels = int(np.clip(math.floor(math.log2(max(size, 1) / 16)), 0, 5))
    win = int(np.clip(size // 4, 5, 21)) | 1
    return cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=levels, winsize=win, iterations=3,
                                        poly_n=5, poly_sigma=1.1, flags=0)


def _warp(img: np.ndarray, flow: np.ndarray, scale: float) -> np.ndarray:
    """Backward warp: ``out(x) = img(x + scale·flow(x))`` (bilinear, borders replicated)."""
    H, W = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    return cv2.remap(img, gx + scale * flow[..., 0], gy + scale * flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def motion_metrics(frames: np.ndarray, top_fraction: float = 0.05, static_flow: float = 0.2) -> MotionMetrics:
    """Dynamic degree, motion smoothness and temporal flickering of one video.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB, ``T ≥ 3``.
        top_fraction: share of the largest flow magnitudes averaged per frame pair (VBench: 5 %).
        static_flow: px/frame below which a pixel counts as static for flickering.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) RGB, got shape {frames.shape}")
    T, H, W = frames.shape[:3]
    if T < 3:
        raise ValueError(f"the video has {T} frame(s); motion metrics need at least 3")
    grey = [_grey(f) for f in frames]
    rgb = frames.astype(np.float32)
    fwd = [farneback_flow(grey[t], grey[t + 1]) for t in range(T - 1)]  # (H, W, 2) each
    bwd = [farneback_flow(grey[t + 1], grey[t]) for t in range(T - 1)]

    # Dynamic degree (VBench's rule with Farneback flow).
    threshold = 6.0 * min(H, W) / 256.0
    n_top = max(1, int(H * W * top_fraction))
    top = np.array([np.sort(np.linalg.norm(f, axis=-1).ravel())[-n_top:].mean() for f in fwd])  # (T-1,)
    count_needed = max(1, round(4 * T / 16))
    dynamic = float((top > threshold).sum() >= count_needed)

    # Motion smoothness: predict each middle frame from its neighbours by halfway warps.
    errors = []
    for t in range(T - 2):
        f02, f20 = farneback_flow(grey[t], grey[t + 2]), farneback_flow(grey[t + 2], grey[t])
        # A pixel x of the middle frame came from x − ½F(x) in frame t and goes to x + ½F(x) in t+2.
        a = _warp(rgb[t], f02, -0.5)
        b = _warp(rgb[t + 2], f20, -0.5)
        errors.append(np.abs(0.5 * (a + b) - rgb[t + 1]).mean())
    smoothness = 1.0 - float(np.mean(errors)) / 255.0

    # Temporal flickering on static pixels.
    diffs, counts = 0.0, 0
    kernel = np.ones((3, 3), np.uint8)
    for t in range(T - 1):
        moving = (np.linalg.norm(fwd[t], axis=-1) >= static_flow) | (np.linalg.norm(bwd[t], axis=-1) >= static_flow)
        static = cv2.dilate(moving.astype(np.uint8), kernel, iterations=2) == 0  # (H, W), margin round motion
        d = np.abs(rgb[t + 1] - rgb[t]).mean(-1)  # (H, W)
        diffs += float(d[static].sum())
        counts += int(static.sum())
    flickering = 1.0 - diffs / counts / 255.0 if counts else math.nan

    return MotionMetrics(dynamic_degree=dynamic, dynamic_score=float((top > threshold).mean()),
                         flow_top5=float(top.mean()), motion_smoothness=smoothness,
                         temporal_flickering=flickering, threshold=threshold, frames=T)


def aggregate_motion(records: Sequence[MotionMetrics | dict | None]) -> dict[str, dict]:
    """Mean / std / n / n_undefined of each motion metric over videos (``None`` = failed video).

    The mean of ``dynamic_degree`` is VBench's dynamic degree: the fraction of dynamic videos.
    """
    from .physics.metrics import aggregate

    return aggregate(records, MOTION_METRICS)
