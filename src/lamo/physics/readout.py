"""A second physics readout, designed independently of :mod:`~lamo.physics.tracker` and
:mod:`~lamo.physics.metrics`: other localisation, threshold-free statistics, robust paired summaries.

Why a second one: every physics number of the project came from one tracker (colour blobs, centroids)
and one set of metrics (thresholded contact detection, jump counts). A second readout that shares
neither the localisation nor the thresholds tells which effects are properties of the videos and which
are properties of the ruler.

**Localisation** (:func:`read_balls`). Per frame and palette colour ``c`` over the background ``b``:

* a soft *matte* ``m = a·s``: ``a = clip(⟨p − b, c − b⟩ / ‖c − b‖², 0, 1)`` is how far the pixel lies along
  the background→colour line, and ``s`` is the colour's softmax responsibility among all palette colours
  and the background, from the distances ``d`` of the pixel to each blend segment:
  ``s ∝ exp(−d² / 2σ²)`` with ``σ = colour_sigma`` grey levels (no hard cut-off, no connected components);
* the ball's radius from the matte's mass around the matte's densest disc-sized spot,
  ``r = √(Σ m / π)`` over a disc of radius ``r_max + 1`` px (``r_max`` the world's largest radius);
* its centre by **template matching**: the normalised cross-correlation (``cv2.TM_CCOEFF_NORMED``) of
  the matte with a disc of radius ``r`` rendered by :func:`~lamo.physics.render.disc_coverage`, and a
  parabolic fit through the correlation peak and its neighbours in ``x`` and in ``y`` (sub-pixel);
* a ball is *seen* when its peak correlation is ≥ ``min_ncc`` and its mass ≥ ``min_area_fraction`` of the
  world's smallest disc, and its centre does not lie inside a larger ball seen in the same frame (balls
  cannot interpenetrate: such a blob is a colour fringe of the other ball); it is *cut* when its disc
  pokes more than ½ px out of the image (its centre is then biased, and such frames are left out of the
  physics fits).

**Physics** (:func:`readout_physics`), per ball over its runs of ≥ ``min_run`` consecutive whole frames:

* *piecewise constant-acceleration fits* — each run is split into pieces, each fitted by
  ``p(t) = p₀ + v t + ½ a t²`` in ``x`` and ``y``; how many pieces is chosen by BIC
  (``N log(SSE/N + σ₀²) + k log N`` over the ``N`` coordinates; ``k`` = 6 per piece, fewer for a piece of
  1–2 frames, + 1 per break; ``σ₀ = noise_floor``, the readout's own precision) and where they break by
  exact dynamic programming: the contacts come out of the fit itself, never from distance thresholds;
* ``ballistic_residual`` (px) — ``√(SSE / (n − k))`` over all fitted coordinates: what a constant force
  between contacts cannot explain (jitter, wobble, kicks);
* ``gravity_fit`` (px/frame²) — the vertical accelerations of the pieces of ≥ 5 frames that are not
  resting on the floor (lowest point within half a radius of the bottom edge throughout), weighted by
  their degrees of freedom; ``gravity_error = |ĝ − g| / g``;
* ``unexplained_dv`` (px/frame²) — the largest ``‖p_{t+1} − 2p_t + p_{t−1} − (0, g)‖`` over frames where
  the ball could not have reached the floor, a side or another ball in the frames around ``t`` (each gap
  larger than the largest step into or out of ``t`` along it, plus ``g`` for the floor, plus
  ``cut_margin``), i.e. velocity changes no contact can explain; and its RMS
  ``unexplained_dv_rms`` over the same frames;
* ``break_rate`` — breaks per fitted frame (the contacts the fit needed);
* ``area`` (px²) and ``radius`` (px) — the mean over balls of each ball's median whole-frame area /
  radius, for :func:`size_fidelity`.

**Summaries** (:func:`paired_change`): per-clip log-ratios variant/baseline of the same prompt and initial
noise, their median and mean with bootstrap intervals, the share of clips improved, and the Wilcoxon
signed-rank p; clips where either side is undefined are dropped and counted, never averaged in.
:func:`jump_rate_curve` shows how today's thresholded jump rate depends on its threshold.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from .render import disc_coverage
from .world import BACKGROUND, PALETTE, WorldConfig

__all__ = [
    "ReadoutConfig", "BallReadout", "ReadoutStats", "READOUT_METRICS", "read_balls", "colour_mattes",
    "piecewise_fit", "readout_physics", "read_clip", "size_fidelity", "paired_change", "jump_rate_curve",
]


@dataclass(frozen=True)
class ReadoutConfig:
    """Settings of the second readout (grey levels 0–255, px, frames). Only detection has cut-offs."""

    colour_sigma: float = 20.0  # σ of the soft colour responsibilities, grey levels
    min_ncc: float = 0.5  # a ball is seen when its template correlation peaks at least this high …
    min_area_fraction: float = 0.25  # … and its matte mass is ≥ this fraction of the world's smallest disc
    cut_margin: float = 0.5  # px a disc may poke out of the image before its centre counts as biased
    min_run: int = 5  # a ball needs this many consecutive whole frames for the piecewise fits
    noise_floor: float = 0.05  # σ₀, px: the readout's own precision on the world's renders (BIC floor)


#: name -> (unit, better, meaning), in the order of the result tables.
READOUT_METRICS: dict[str, tuple[str, str, str]] = {
    "ballistic_residual": ("px", "lower", "RMS residual of piecewise constant-acceleration fits (BIC-chosen breaks)"),
    "gravity_error": ("relative", "lower", "|ĝ − g| / g, ĝ from the pieces in the air"),
    "unexplained_dv": ("px/frame²", "lower", "largest velocity change no contact within reach can explain"),
    "unexplained_dv_rms": ("px/frame²", "lower", "RMS of those velocity changes"),
    "break_rate": ("per frame", "≈ truth", "breaks the fit needed per fitted frame"),
    "gravity_fit": ("px/frame²", "≈ g", "ĝ"),
    "area": ("px²", "≈ truth", "mean over balls of the median whole-frame area"),
    "radius": ("px", "≈ truth", "mean over balls of the median whole-frame radius"),
    "seen_fraction": ("fraction", "higher", "frames where each ball of the clip is seen, mean over balls"),
}


@dataclass
class BallReadout:
    """Per-frame ball states read by :func:`read_balls` (``T`` frames, ``K`` palette colours)."""

    colours: tuple[str, ...]  # (K,)
    positions: np.ndarray  # (T, K, 2) (x, y) px; NaN where not seen
    radius: np.ndarray  # (T, K) px; NaN where not seen
    ncc: np.ndarray  # (T, K) peak template correlation (NaN where the colour has no mass at all)
    seen: np.ndarray  # (T, K) bool
    cut: np.ndarray  # (T, K) bool: seen, but the disc pokes out of the image
    frame_size: tuple[int, int]  # (H, W)

    @property
    def whole(self) -> np.ndarray:
        """``(T, K)`` bool: seen and not cut by the image border."""
        return self.seen & ~self.cut


@dataclass
class ReadoutStats:
    """Physics and size statistics of one clip by the second readout (NaN: undefined). See the module docstring."""

    ballistic_residual: float = math.nan
    gravity_fit: float = math.nan
    gravity_error: float = math.nan
    unexplained_dv: float = math.nan
    unexplained_dv_rms: float = math.nan
    break_rate: float = math.nan
    area: float = math.nan
    radius: float = math.nan
    seen_fraction: float = math.nan
    n_balls: int = 0
    n_pieces: int = 0
    n_fitted_frames: int = 0
    colours: list[str] = field(default_factory=list)
    ball_area: dict[str, float] = field(default_factory=dict)  # colour -> median whole-frame area, px²

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Localisation
# ---------------------------------------------------------------------------------------------


def colour_mattes(frames: np.ndarray, palette: dict[str, tuple[int, int, int]] | None = None,
                  background: tuple[int, int, int] = BACKGROUND, sigma: float = 20.0) -> np.ndarray:
    """Soft mattes ``(T, K, H, W)`` float32 in [0, 1] of each palette colour in ``(T, H, W, 3)`` RGB frames."""
    palette = PALETTE if palette is None else palette
    rgb = np.array(list(palette.values()), dtype=np.float32)  # (K, 3)
    b = np.asarray(background, dtype=np.float32)
    d = np.asarray(frames, dtype=np.float32) - b  # (T, H, W, 3)
    u = rgb - b  # (K, 3)
    uu = (u * u).sum(-1)  # (K,)
    a = np.clip(np.einsum("thwc,kc->tkhw", d, u) / uu[None, :, None, None], 0.0, 1.0)  # (T, K, H, W)
    resid = d[:, None] - a[..., None] * u[None, :, None, None, :]  # (T, K, H, W, 3)
    dist2 = np.concatenate([(resid ** 2).sum(-1), (d ** 2).sum(-1)[:, None]], axis=1)  # (T, K + 1, H, W)
    logits = -dist2 / (2.0 * sigma ** 2)
    logits -= logits.max(axis=1, keepdims=True)
    s = np.exp(logits)
    s /= s.sum(axis=1, keepdims=True)
    return (a * s[:, :-1]).astype(np.float32)


def _parabolic(fm: float, f0: float, fp: float) -> float:
    """Offset in [−½, ½] of the vertex of the parabola through (−1, fm), (0, f0), (1, fp)."""
    den = fm - 2.0 * f0 + fp
    if not np.isfinite(den) or den >= 0:
        return 0.0
    return float(np.clip(0.5 * (fm - fp) / den, -0.5, 0.5))


def _locate(m: np.ndarray, world: WorldConfig, config: ReadoutConfig) -> tuple[float, float, float, float] | None:
    """``(x, y, r, ncc)`` of the ball in one matte ``(H, W)``, or ``None`` when it holds no ball."""
    H, W = m.shape
    r_min, r_max = world.radius
    min_mass = config.min_area_fraction * math.pi * r_min ** 2
    if float(m.sum()) < min_mass:
        return None
    # coarse: the densest disc-sized spot
    k = int(math.ceil(r_max)) * 2 + 1
    kern = disc_coverage(k / 2, k / 2, 0.5 * (r_min + r_max), k, k).astype(np.float32)
    dens = cv2.filter2D(m, -1, kern, borderType=cv2.BORDER_CONSTANT)
    i0, j0 = np.unravel_index(int(dens.argmax()), dens.shape)
    # radius from the mass around it
    R = r_max + 1.0
    ii, jj = np.mgrid[0:H, 0:W]
    win = (ii - i0) ** 2 + (jj - j0) ** 2 <= R ** 2
    mass = float(m[win].sum())
    if mass < min_mass:
        return None
    r = math.sqrt(mass / math.pi)
    # fine: normalised cross-correlation with a rendered disc of that radius, parabolic peak
    S = 2 * int(math.ceil(r)) + 3
    tpl = disc_coverage(S / 2, S / 2, r, S, S).astype(np.float32)
    pad = S
    mp = cv2.copyMakeBorder(m, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0)
    ncc = cv2.matchTemplate(mp, tpl, cv2.TM_CCOEFF_NORMED)  # (H + 2pad − S + 1, …)
    # the result index (y, x) puts the template centre at (x + S/2 − pad, y + S/2 − pad) in the image
    off = S / 2 - pad
    ci, cj = int(round(i0 + 0.5 - off)), int(round(j0 + 0.5 - off))
    h = int(math.ceil(r)) + 1
    lo_i, hi_i = max(1, ci - h), min(ncc.shape[0] - 1, ci + h + 1)
    lo_j, hi_j = max(1, cj - h), min(ncc.shape[1] - 1, cj + h + 1)
    if lo_i >= hi_i or lo_j >= hi_j:
        return None
    sub = ncc[lo_i:hi_i, lo_j:hi_j]
    pi, pj = np.unravel_index(int(np.nanargmax(sub)), sub.shape)
    pi, pj = pi + lo_i, pj + lo_j
    peak = float(ncc[pi, pj])
    dy = _parabolic(ncc[pi - 1, pj], peak, ncc[pi + 1, pj]) if 0 < pi < ncc.shape[0] - 1 else 0.0
    dx = _parabolic(ncc[pi, pj - 1], peak, ncc[pi, pj + 1]) if 0 < pj < ncc.shape[1] - 1 else 0.0
    return pj + dx + off, pi + dy + off, r, peak


def read_balls(frames: np.ndarray, world: WorldConfig, palette: dict[str, tuple[int, int, int]] | None = None,
               background: tuple[int, int, int] = BACKGROUND, config: ReadoutConfig = ReadoutConfig()) -> BallReadout:
    """Localise every palette colour in ``(T, H, W, 3)`` uint8 RGB frames by template matching → :class:`BallReadout`.

    ``world`` supplies the radius range (for the coarse search window and the detection floor).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be a non-empty (T, H, W, 3) RGB array, got shape {frames.shape}")
    palette = PALETTE if palette is None else palette
    colours = tuple(palette)
    T, H, W = frames.shape[:3]
    K = len(colours)
    mattes = colour_mattes(frames, palette, background, config.colour_sigma)  # (T, K, H, W)
    pos = np.full((T, K, 2), np.nan)
    rad = np.full((T, K), np.nan)
    ncc = np.full((T, K), np.nan)
    for t in range(T):
        for k in range(K):
            hit = _locate(mattes[t, k], world, config)
            if hit is not None:
                x, y, r, c = hit
                ncc[t, k] = c
                if c >= config.min_ncc:
                    pos[t, k], rad[t, k] = (x, y), r
    seen = np.isfinite(rad)
    for t in range(T):  # balls cannot interpenetrate: a smaller blob whose centre lies inside another is a fringe
        ks = np.flatnonzero(seen[t])
        for k in ks:
            for j in ks:
                if j != k and seen[t, j] and rad[t, k] < rad[t, j] and \
                        np.linalg.norm(pos[t, k] - pos[t, j]) < rad[t, j]:
                    seen[t, k] = False
                    pos[t, k], rad[t, k] = np.nan, np.nan
                    break
    with np.errstate(invalid="ignore"):
        x, y = pos[..., 0], pos[..., 1]
        m = config.cut_margin
        cut = seen & ((x - rad < -m) | (x + rad > W + m) | (y - rad < -m) | (y + rad > H + m))
    return BallReadout(colours=colours, positions=pos, radius=rad, ncc=ncc, seen=seen, cut=cut, frame_size=(H, W))


# ---------------------------------------------------------------------------------------------
# Piecewise constant-acceleration fits
# ---------------------------------------------------------------------------------------------


def _piece_fit(t: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray]:
    """Least-squares ``p(t) = p₀ + v t + ½ a t²`` of ``(n, 2)`` points → ``(SSE, (3, 2) coefficients)``."""
    tt = t - t[0]
    A = np.stack([np.ones_like(tt), tt, 0.5 * tt ** 2], axis=1)  # (n, 3)
    coef, *_ = np.linalg.lstsq(A, p, rcond=None)  # (3, 2)
    r = p - A @ coef
    return float((r ** 2).sum()), coef


def _piece_params(length: int) -> int:
    """Parameters of a piece of ``length`` frames (``p₀, v, a`` in x and y, fewer when it is shorter) + its break."""
    return 2 * min(length, 3) + 1


def piecewise_fit(t: np.ndarray, p: np.ndarray, noise_floor: float = 0.05) -> list[tuple[int, int]]:
    """Split the track ``p`` (``(n, 2)`` px at frames ``t``) into constant-acceleration pieces.

    A piece of ``L`` frames has ``2·min(L, 3)`` parameters (``p₀, v, a`` in ``x`` and ``y``; a 1- or 2-frame
    piece fewer) and each break one more. For every total parameter count ``k`` the split with the least
    squared residual is found exactly (dynamic programming over the break frames), and ``k`` is the one with
    the lowest BIC ``N log(SSE/N + σ₀²) + k log N`` (``N = 2n`` coordinates, ``σ₀ = noise_floor``): breaks
    are kept only where they explain enough, with no distance or velocity threshold.
    Returns the pieces as ``[(start, stop), …]`` index ranges into ``t``.
    """
    n = len(t)
    if n == 0:
        return []
    sse = np.zeros((n + 1, n + 1))  # sse[i, j]: piece of points i … j − 1
    for i in range(n):
        for j in range(i + 4, n + 1):
            sse[i, j] = _piece_fit(t[i:j], p[i:j])[0]
    max_k = _piece_params(3) * n
    best = np.full((max_k + 2, n + 1), np.inf)  # best[k, j]: points 0 … j − 1 with k parameters (+1 break)
    arg = np.zeros((max_k + 2, n + 1), dtype=int)
    best[0, 0] = 0.0
    for j in range(1, n + 1):
        for i in range(j):
            c = _piece_params(j - i)
            cand = best[:max_k + 2 - c, i] + sse[i, j]
            better = cand < best[c:, j]
            best[c:, j] = np.where(better, cand, best[c:, j])
            arg[c:, j] = np.where(better, i, arg[c:, j])
    N = 2 * n
    ks = [k for k in range(1, max_k + 2) if np.isfinite(best[k, n]) and k - 1 < N]
    bic = [N * math.log(best[k, n] / N + noise_floor ** 2) + (k - 1) * math.log(N) for k in ks]
    k = ks[int(np.argmin(bic))]
    pieces, j = [], n
    while j > 0:
        i = arg[k, j]
        pieces.append((i, j))
        k, j = k - _piece_params(j - i), i
    return pieces[::-1]


def _runs(mask: np.ndarray) -> list[np.ndarray]:
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    return np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)


def readout_physics(ro: BallReadout, world: WorldConfig, config: ReadoutConfig = ReadoutConfig()) -> ReadoutStats:
    """Threshold-free physics statistics of one clip's :class:`BallReadout` (see the module docstring).

    The clip's balls are the colours seen in more frames than not; a clip with none gets all-NaN statistics.
    """
    H, W = ro.frame_size
    g = world.gravity
    T, K = ro.seen.shape
    balls = [k for k in range(K) if ro.seen[:, k].sum() * 2 > T]
    stats = ReadoutStats(n_balls=len(balls), colours=[ro.colours[k] for k in balls])
    if not balls:
        return stats
    whole = ro.whole
    p = ro.positions
    sse_tot, n_obs, n_par, n_pieces, n_frames = 0.0, 0, 0, 0, 0
    acc, acc_w = [], []
    r_med = {k: float(np.nanmedian(ro.radius[whole[:, k], k])) if whole[:, k].any() else math.nan for k in balls}
    for k in balls:
        for run in _runs(whole[:, k]):
            if len(run) < config.min_run:
                continue
            pk = p[run, k]
            pieces = piecewise_fit(run.astype(float), pk, config.noise_floor)
            n_pieces += len(pieces)
            n_frames += len(run)
            n_par += sum(_piece_params(j - i) for i, j in pieces) - 1
            n_obs += 2 * len(run)
            for i, j in pieces:
                s, coef = _piece_fit(run[i:j].astype(float), pk[i:j])
                sse_tot += s
                resting = np.all(H - (pk[i:j, 1] + r_med[k]) < 0.5 * r_med[k])
                if j - i >= 5 and not resting:
                    acc.append(coef[2, 1])
                    acc_w.append(j - i - 3)
    if n_obs:
        stats.ballistic_residual = math.sqrt(sse_tot / max(1, n_obs - n_par))
        stats.n_pieces, stats.n_fitted_frames = n_pieces, n_frames
        runs_fitted = sum(1 for k in balls for run in _runs(whole[:, k]) if len(run) >= config.min_run)
        stats.break_rate = (n_pieces - runs_fitted) / n_frames
    if acc:
        stats.gravity_fit = float(np.average(acc, weights=acc_w))
        stats.gravity_error = abs(stats.gravity_fit - g) / abs(g)

    # velocity changes no contact within reach can explain
    dv = []
    for k in balls:
        for t in range(1, T - 1):
            if not whole[t - 1:t + 2, k].all():
                continue
            q = p[t - 1:t + 2, k]  # (3, 2)
            reach = np.abs(np.diff(q, axis=0)).max(axis=0)  # (2,): the largest |Δx|, |Δy| into and out of t
            r = r_med[k]
            x, y = q[:, 0], q[:, 1]
            m = config.cut_margin
            if (H - (y + r)).min() <= reach[1] + abs(g) + m or min((x - r).min(), (W - (x + r)).min()) <= reach[0] + m:
                continue  # the floor (a frame's fall away) or a side within reach
            near = False
            for j in range(K):
                if j == k or not ro.seen[t - 1:t + 2, j].any():
                    continue
                qj = p[t - 1:t + 2, j]
                gap = np.linalg.norm(q - qj, axis=1) - r - np.nanmedian(ro.radius[:, j])
                rel = np.linalg.norm(np.diff(q - qj, axis=0), axis=1)
                if not np.all(np.isfinite(gap)) or np.nanmin(gap) <= np.nanmax(rel, initial=0.0):
                    near = True
                    break
            if near:
                continue
            dv.append(float(np.linalg.norm(q[2] - 2 * q[1] + q[0] - np.array([0.0, g]))))
    if dv:
        stats.unexplained_dv = max(dv)
        stats.unexplained_dv_rms = math.sqrt(float(np.mean(np.square(dv))))

    areas = {ro.colours[k]: math.pi * r_med[k] ** 2 for k in balls if math.isfinite(r_med[k])}
    stats.ball_area = areas
    if areas:
        stats.area = float(np.mean(list(areas.values())))
        stats.radius = float(np.mean([r_med[k] for k in balls if math.isfinite(r_med[k])]))
    stats.seen_fraction = float(np.mean([ro.seen[:, k].mean() for k in balls]))
    return stats


def read_clip(frames: np.ndarray, world: WorldConfig, config: ReadoutConfig = ReadoutConfig()) -> ReadoutStats:
    """:func:`read_balls` then :func:`readout_physics` on one clip of ``world``."""
    return readout_physics(read_balls(frames, world, config=config), world, config)


# ---------------------------------------------------------------------------------------------
# Size fidelity
# ---------------------------------------------------------------------------------------------


def size_fidelity(generated: ReadoutStats | dict, truth: ReadoutStats | dict, world: WorldConfig) -> dict:
    """How the generated balls' sizes compare with the world's, for one clip.

    ``generated`` and ``truth`` are the readouts of a generated clip and of the ground-truth render of the
    same caption (and world seed). Returns:

    * ``area_ratio`` — generated / ground-truth median area, geometric mean over the colours both show
      (1 = the world's size; NaN when they share no ball);
    * ``radius_ratio`` — its square root (the linear scale of the balls);
    * ``area_to_world`` — the generated mean area / the world's mean disc area ``π(a² + ab + b²)/3``
      for radii uniform in ``world.radius = (a, b)``;
    * ``in_range`` — the fraction of the generated balls whose radius lies in the world's range
      (widened by 0.25 px for the readout's precision).
    """
    gen = generated.to_dict() if hasattr(generated, "to_dict") else dict(generated)
    tru = truth.to_dict() if hasattr(truth, "to_dict") else dict(truth)
    ga, ta = gen.get("ball_area") or {}, tru.get("ball_area") or {}
    shared = [c for c in ga if c in ta and ga[c] > 0 and ta[c] > 0]
    ratio = math.exp(float(np.mean([math.log(ga[c] / ta[c]) for c in shared]))) if shared else math.nan
    a, b = world.radius
    world_area = math.pi * (a * a + a * b + b * b) / 3.0
    radii = [math.sqrt(v / math.pi) for v in ga.values() if v > 0]
    area = gen.get("area", math.nan)
    return {
        "area_ratio": ratio,
        "radius_ratio": math.sqrt(ratio) if math.isfinite(ratio) else math.nan,
        "area_to_world": area / world_area if area is not None and math.isfinite(area) else math.nan,
        "in_range": float(np.mean([a - 0.25 <= r <= b + 0.25 for r in radii])) if radii else math.nan,
    }


# ---------------------------------------------------------------------------------------------
# Robust paired summaries
# ---------------------------------------------------------------------------------------------


def paired_change(baseline: Sequence[float], variant: Sequence[float], n_resamples: int = 4999,
                  seed: int = 0, lower_is_better: bool = True) -> dict:
    """Robust summary of a per-clip statistic under a variant against the baseline, paired by clip.

    Per clip ``ℓ = ln(variant / baseline)``; pairs where either value is NaN, infinite or ≤ 0 are dropped
    (``n_dropped``). Returns ``n``, ``median_change`` = ``exp(median ℓ) − 1`` with its bootstrap 95 %
    interval, ``mean_log_change`` = ``exp(mean ℓ) − 1`` (the geometric-mean ratio − 1) with its interval,
    ``mean_change`` = ratio of the arithmetic means − 1 with its interval, ``share_improved`` (ties count
    half) and ``wilcoxon_p`` (two-sided signed-rank test of ℓ; NaN with fewer than 6 pairs).
    """
    b = np.asarray(baseline, dtype=np.float64)
    v = np.asarray(variant, dtype=np.float64)
    if b.shape != v.shape:
        raise ValueError(f"baseline and variant must be paired clip by clip; got {b.shape} and {v.shape}")
    ok = np.isfinite(b) & np.isfinite(v) & (b > 0) & (v > 0)
    b, v = b[ok], v[ok]
    n = int(ok.sum())
    out = {"n": n, "n_dropped": int((~ok).sum())}
    nan2 = [math.nan, math.nan]
    if n == 0:
        return {**out, "median_change": math.nan, "median_change_ci": nan2, "mean_log_change": math.nan,
                "mean_log_change_ci": nan2, "mean_change": math.nan, "mean_change_ci": nan2,
                "share_improved": math.nan, "wilcoxon_p": math.nan}
    ell = np.log(v / b)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    boot_med = np.median(ell[idx], axis=1)
    boot_mean = ell[idx].mean(axis=1)
    boot_ratio = v[idx].mean(axis=1) / b[idx].mean(axis=1)
    ci = lambda x: [float(np.expm1(np.percentile(x, 2.5))), float(np.expm1(np.percentile(x, 97.5)))]  # noqa: E731
    better = (ell < 0) if lower_is_better else (ell > 0)
    share = float((better.sum() + 0.5 * (ell == 0).sum()) / n)
    p = math.nan
    if n >= 6 and np.any(ell != 0):
        from scipy.stats import wilcoxon

        p = float(wilcoxon(ell).pvalue)
    return {**out, "median_change": float(np.expm1(np.median(ell))), "median_change_ci": ci(boot_med),
            "mean_log_change": float(np.expm1(ell.mean())), "mean_log_change_ci": ci(boot_mean),
            "mean_change": float(v.mean() / b.mean() - 1.0),
            "mean_change_ci": [float(np.percentile(boot_ratio, 2.5) - 1), float(np.percentile(boot_ratio, 97.5) - 1)],
            "share_improved": share, "wilcoxon_p": p}


def jump_rate_curve(frames: np.ndarray, world: WorldConfig, thresholds: Sequence[float]) -> list[float]:
    """Today's ``jump_rate`` (:mod:`lamo.physics.metrics`) of one clip at each jump threshold (px/frame²).

    The clip is tracked once by :func:`lamo.physics.tracker.track`; each threshold replaces both
    ``jump_threshold`` and the ``jump_threshold_g·g`` floor (set to 0), everything else as shipped.
    NaN where the clip cannot be scored.
    """
    from dataclasses import replace

    from .metrics import ClipError, MetricConfig, physics_metrics
    from .tracker import track

    tracks = track(np.asarray(frames))
    out = []
    for thr in thresholds:
        cfg = replace(MetricConfig(), jump_threshold=float(thr), jump_threshold_g=0.0)
        try:
            out.append(float(physics_metrics(tracks, world, config=cfg).jump_rate))
        except ClipError:
            out.append(math.nan)
    return out
