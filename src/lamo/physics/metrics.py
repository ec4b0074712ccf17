"""Physics read back out of a clip: metrics over :class:`~lamo.physics.tracker.Tracks`.

A generated clip has no ground-truth contacts, so contacts are detected from the tracks themselves
(:func:`detect_contacts`). ``δ = contact_margin`` px; ``v_in = p_t − p_{t−1}`` and ``v_out = p_{t+1} − p_t``
are frame-to-frame velocities (px/frame); ``r̄`` is a ball's median tracked radius; the floor is the
bottom edge of the image, the walls its sides (a ball may also leave through a side or the top):

* touching the floor / left / right / top: the disc is within ``δ`` of that edge;
* near ball ``j``: ``‖p_k − p_j‖ − r̄_k − r̄_j ≤ δ + s_kj`` (``s_kj`` the larger step of ``p_k − p_j``
  around ``t``: two balls falling side by side are not in contact);
* a floor bounce at ``t``: coming down (``v_in,y > 0``), then going up (``v_out,y < 0``) or kicked up
  (``g − Δv_y`` above the jump threshold), within ``δ + g + max|v_y|`` of the floor; a left-wall bounce:
  moving left, then right or kicked right, within ``δ + max|v_x|`` of the left edge (right: mirrored);
* resting: touching the floor at ``t − 1, t, t + 1``;
* within reach of the floor / a wall (for explaining velocity jumps): within ``δ + g + max|v_y|`` /
  ``δ + max|v_x|`` of it — it may have touched it between frames;
* clipped: at an edge with a radius below 90 % of ``r̄`` — partly outside the image, centre biased;
* leaving / entering: clipped, or heading out of / coming in from a side or the top within two steps.

**Free flight** frames are visible frames that touch nothing, are near no ball and show no bounce; runs
of them are *segments*. Each metric
is documented on :class:`PhysicsMetrics` with its unit and which direction is better. All use pixels
and frames, like the world (:class:`~lamo.physics.world.WorldConfig`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from .tracker import TrackerConfig, Tracks, track
from .world import BACKGROUND, WorldConfig

__all__ = [
    "ClipError", "MetricConfig", "ContactFrames", "PhysicsMetrics", "PHYSICS_METRICS",
    "detect_contacts", "jump_threshold", "physics_metrics", "frame_sharpness", "evaluate_clip", "aggregate",
]


class ClipError(ValueError):
    """A clip cannot be scored (wrong size, too short, no object …). The message says why."""


@dataclass(frozen=True)
class MetricConfig:
    """Thresholds of the physics metrics (px, frames)."""

    contact_margin: float = 0.75  # δ: "touching" tolerance, px
    min_segment: int = 5  # free-flight frames needed for the gravity and ballistic fits
    min_bounce_segment: int = 3  # free-flight frames needed on each side of a bounce
    max_bounce_gap: int = 4  # at most this many contact frames between the two sides of a bounce
    min_bounce_speed: float = 0.75  # px/frame: slower impacts give no restitution estimate
    jump_threshold: float = 1.0  # px/frame²: an acceleration this far from expected is a "jump" …
    jump_threshold_g: float = 2.0  # … or this many g, whichever is larger


#: name -> (unit, better, one-line meaning); the order of the result tables.
PHYSICS_METRICS: dict[str, tuple[str, str, str]] = {
    "gravity_error": ("relative", "lower", "|fitted vertical acceleration − g| / g in free flight"),
    "ballistic_residual": ("px", "lower", "RMS residual of ballistic fits on free-flight segments"),
    "restitution_error": ("abs", "lower", "|estimated − true| restitution at floor bounces"),
    "jump_rate": ("per frame", "lower", "acceleration outliers away from contacts, per frame"),
    "velocity_jumps": ("count", "lower", "number of acceleration outliers away from contacts"),
    "permanence_error": ("fraction", "lower", "frames whose object set differs from the clip's"),
    "radius_cv": ("ratio", "lower", "coefficient of variation of each ball's radius"),
    "detection_rate": ("fraction", "higher", "expected (frame, ball) pairs where the ball is found"),
    "sharpness": ("grey²", "higher", "variance of the Laplacian of the frames"),
    "ghost_rate": ("fraction", "lower", "frames with a ball drawn twice or a ball not in the clip's object set"),
    "background_noise": ("grey levels", "lower", "mean deviation from the background colour away from the balls"),
    "gravity_fit": ("px/frame²", "≈ g", "fitted vertical acceleration in free flight"),
    "restitution_fit": ("ratio", "≈ e", "estimated restitution at floor bounces"),
    "n_objects": ("count", "", "balls in the clip's modal object set"),
}


@dataclass
class ContactFrames:
    """Per-frame contact analysis of tracks: ``(T, K)`` bool over ``tracks.colours`` unless noted."""

    touching_floor: np.ndarray
    touching_left: np.ndarray
    touching_right: np.ndarray
    touching_top: np.ndarray
    near_pair: np.ndarray  # (T, K, K): ball k is near ball j
    floor_bounce: np.ndarray
    left_bounce: np.ndarray
    right_bounce: np.ndarray
    resting: np.ndarray
    near_floor: np.ndarray  # within one step of the floor (δ + g + max|v_y|): it may have touched it
    near_left: np.ndarray  # within one step of the left edge (δ + max|v_x|)
    near_right: np.ndarray
    clipped: np.ndarray  # partly outside the image
    leaving: np.ndarray  # clipped, or heading out through a side / the top within two steps
    entering: np.ndarray  # clipped, or coming in from a side / the top within two steps
    flight: np.ndarray  # free flight: visible and none of the contacts above
    radius: np.ndarray  # (K,) median tracked radius r̄, px (NaN when never seen)

    @property
    def near_ball(self) -> np.ndarray:
        return self.near_pair.any(axis=2)

    @property
    def touching_border(self) -> np.ndarray:
        """Touching a side or the top: where a ball may be cut by the image edge."""
        return self.touching_left | self.touching_right | self.touching_top


@dataclass
class PhysicsMetrics:
    """Physics metrics of one clip. NaN means undefined (e.g. no bounce in the clip).

    * ``gravity_error`` — relative, lower is better (0 = exact). On each free-flight segment of
      ≥ ``min_segment`` frames, ``y(t) = c + b t + ½ a t²`` is fitted by least squares; the error is the
      length-weighted mean of ``|a − g| / |g|``. Catches wrong, missing or flipped gravity.
    * ``ballistic_residual`` — px RMS, lower is better. The same segments fitted with the ballistic
      model (``x`` linear in ``t``, ``y`` quadratic); ``√(mean ‖p − p̂‖²)`` over all fitted frames.
      Catches motion that is not a free-fall parabola between contacts (jitter, kicks, teleports).
      Both fits are undefined (NaN) when no segment is long enough — as in chaotic clips where contacts
      seem to happen every frame — so read them with ``jump_rate`` and the count of undefined clips.
    * ``restitution_error`` — absolute, lower is better. At each floor bounce with free flight on both
      sides, quadratic fits of ``y`` before and after are intersected to find the contact time ``t_c``;
      ``ê = −ẏ_after(t_c) / ẏ_before(t_c)``; the error is the mean ``|ê − e|`` over bounces.
    * ``velocity_jumps`` / ``jump_rate`` — count / count per evaluated frame, lower is better. The
      second difference ``a_t = p_{t+1} − 2p_t + p_{t−1}`` (px/frame²) minus free fall ``(0, g)`` is what
      forces did at ``t``; the part a contact at ``t − 1 … t + 1`` can explain is removed (the floor only
      pushes up, a wall only away from itself, a ball only away from the other ball). A jump is a
      remainder longer than ``max(jump_threshold, jump_threshold_g·|g|)``. Frames where a ball is
      clipped by the image edge are not evaluated. Catches teleports, kicks and time jumps.
    * ``permanence_error`` — fraction of frames, lower is better. A colour belongs to the clip's
      (modal) object set when it is seen in more frames than it is missing; a frame is inconsistent
      when a member is missing, a non-member appears, or a colour is split into several blobs.
      Absences and sightings of a ball that leaves or enters through a side or the top are excused.
    * ``radius_cv`` — ratio, lower is better. Per ball ``std(r)/mean(r)`` over frames where it is
      whole (not at a side/top edge, not touching another ball); mean over balls.
    * ``detection_rate`` — fraction, higher is better: found / expected (frame, ball) pairs.
    * ``sharpness`` — grey-level², higher is sharper: mean over frames of ``var(∇²I)`` (OpenCV
      Laplacian of the 0–255 grey image). Scene-dependent: compare with the ground truth's value.
    * ``ghost_rate`` — fraction of frames, lower is better: frames where a colour is seen as several
      blobs or a colour outside the modal object set appears (the "extra" half of ``permanence_error``).
    * ``background_noise`` — grey levels (0–255), lower is better: over the pixels farther than one pixel
      from any pixel the tracker gives to a ball, the mean of the largest per-channel deviation from the
      background colour — speckle, smears and shapes of no palette colour. 0 on the world's renders.
    * ``gravity_fit`` (px/frame²) and ``restitution_fit`` are the raw estimates behind the errors.
    """

    gravity_error: float
    ballistic_residual: float
    restitution_error: float
    velocity_jumps: int
    jump_rate: float
    permanence_error: float
    radius_cv: float
    detection_rate: float
    sharpness: float
    gravity_fit: float
    restitution_fit: float
    n_objects: int
    colours: list[str] = field(default_factory=list)  # the modal object set
    n_segments: int = 0  # free-flight segments fitted
    n_bounces: int = 0  # floor bounces with a restitution estimate
    n_jump_frames: int = 0  # second differences evaluated for jumps
    ghost_rate: float = math.nan
    background_noise: float = math.nan  # needs the frames

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Contacts
# ---------------------------------------------------------------------------------------------


def jump_threshold(gravity: float, config: MetricConfig = MetricConfig()) -> float:
    """Acceleration deviation (px/frame²) above which a velocity change is abrupt."""
    return max(config.jump_threshold, config.jump_threshold_g * abs(gravity))


def _around(step: np.ndarray) -> np.ndarray:
    """Per frame, the larger magnitude of the steps into and out of it: ``(T−1, …)`` → ``(T, …)``, 0 if unknown."""
    pad = np.full((1,) + step.shape[1:], np.nan)
    return np.nan_to_num(np.fmax(np.abs(np.concatenate([pad, step])), np.abs(np.concatenate([step, pad]))))


def detect_contacts(tracks: Tracks, gravity: float, config: MetricConfig = MetricConfig()) -> ContactFrames:
    """Detect contacts from the tracks alone (see the module docstring); ``gravity`` in px/frame²."""
    H, W = tracks.frame_size
    p, vis = tracks.positions, tracks.visible  # (T, K, 2), (T, K)
    T, K = vis.shape
    delta, g, thr = config.contact_margin, gravity, jump_threshold(gravity, config)
    with np.errstate(all="ignore"):  # NaN (unseen) compares False everywhere below
        r = np.array([np.nanmedian(tracks.radius[:, k]) if vis[:, k].any() else np.nan for k in range(K)])  # (K,)
        x, y = p[..., 0], p[..., 1]  # (T, K)
        d_floor, d_left, d_right, d_top = H - (y + r), x - r, W - (x + r), y - r
        v = np.diff(p, axis=0)  # (T-1, K, 2)
        pad = np.full((1, K, 2), np.nan)
        v_in, v_out = np.concatenate([pad, v]), np.concatenate([v, pad])  # (T, K, 2): p_t − p_{t−1}, p_{t+1} − p_t
        vx_in, vy_in, vx_out, vy_out = v_in[..., 0], v_in[..., 1], v_out[..., 0], v_out[..., 1]
        sx, sy = _around(v[..., 0]), _around(v[..., 1])  # (T, K) largest |v_x|, |v_y| around t

        touching = {name: vis & (d <= delta) for name, d in
                    (("floor", d_floor), ("left", d_left), ("right", d_right), ("top", d_top))}
        floor_bounce = (vy_in > 0) & ((vy_out < 0) | (g - (vy_out - vy_in) > thr)) & (d_floor <= delta + g + sy)
        left_bounce = (vx_in < 0) & ((vx_out > 0) | (vx_out - vx_in > thr)) & (d_left <= delta + sx)
        right_bounce = (vx_in > 0) & ((vx_out < 0) | (vx_in - vx_out > thr)) & (d_right <= delta + sx)
        near_floor = vis & (d_floor <= delta + g + sy)
        near_left, near_right = vis & (d_left <= delta + sx), vis & (d_right <= delta + sx)
        clipped = (touching["left"] | touching["right"] | touching["top"]) & (tracks.radius < 0.9 * r)
        leaving = clipped | (vis & (((vx_in < 0) & (d_left <= delta - 2 * vx_in))
                                    | ((vx_in > 0) & (d_right <= delta + 2 * vx_in))
                                    | ((vy_in < 0) & (d_top <= delta - 2 * vy_in))))
        entering = clipped | (vis & (((vx_out > 0) & (d_left <= delta + 2 * vx_out))
                                     | ((vx_out < 0) & (d_right <= delta - 2 * vx_out))
                                     | ((vy_out > 0) & (d_top <= delta + 2 * vy_out))))
        near_pair = np.zeros((T, K, K), dtype=bool)
        for k in range(K):
            for j in range(K):
                if j != k and vis[:, k].any() and vis[:, j].any():
                    rel = p[:, k] - p[:, j]  # (T, 2)
                    gap = np.linalg.norm(rel, axis=-1) - r[k] - r[j]
                    s_rel = _around(np.linalg.norm(np.diff(rel, axis=0), axis=-1))  # (T,)
                    near_pair[:, k, j] = vis[:, k] & vis[:, j] & (gap <= delta + s_rel)
    resting = np.zeros_like(vis)
    resting[1:-1] = touching["floor"][:-2] & touching["floor"][1:-1] & touching["floor"][2:]
    contact = (touching["floor"] | touching["left"] | touching["right"] | touching["top"] | near_pair.any(axis=2)
               | floor_bounce | left_bounce | right_bounce)
    return ContactFrames(
        touching_floor=touching["floor"], touching_left=touching["left"], touching_right=touching["right"],
        touching_top=touching["top"], near_pair=near_pair, floor_bounce=floor_bounce, left_bounce=left_bounce,
        right_bounce=right_bounce, resting=resting, near_floor=near_floor, near_left=near_left,
        near_right=near_right, clipped=clipped, leaving=leaving, entering=entering, flight=vis & ~contact, radius=r,
    )


def _runs(mask: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the maximal runs of ``True`` in a 1-D mask."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    return np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def _window(m: np.ndarray) -> np.ndarray:
    """``out[t − 1] = m[t − 1] | m[t] | m[t + 1]`` for the middle frames ``t = 1 … T − 2`` → ``(T − 2, …)``."""
    return m[2:] | m[1:-1] | m[:-2]


def _contact_directions(c: ContactFrames, p: np.ndarray, t: int, k: int) -> list[np.ndarray]:
    """Unit directions in which contacts within reach around frame ``t`` (``t − 1 … t + 1``) can push
    ball ``k``: the floor up, the left wall right, the right wall left, another ball away from itself."""
    w = slice(t - 1, t + 2)
    dirs = []
    if c.near_floor[w, k].any():
        dirs.append(np.array([0.0, -1.0]))
    if c.near_left[w, k].any():
        dirs.append(np.array([1.0, 0.0]))
    if c.near_right[w, k].any():
        dirs.append(np.array([-1.0, 0.0]))
    for j in np.flatnonzero(c.near_pair[w, k].any(axis=0)):
        n = p[t, k] - p[t, j]
        if np.isfinite(n).all() and np.linalg.norm(n) > 0:
            dirs.append(n / np.linalg.norm(n))
    return dirs


def _unexplained(r: np.ndarray, dirs: list[np.ndarray]) -> float:
    """``min ‖r − Σ λ_i d_i‖`` over ``λ ≥ 0``: the part of ``r`` that pushes along ``dirs`` cannot make.

    In 2-D the optimum uses at most two directions, so every single direction and pair is tried.
    """
    best = float(np.linalg.norm(r))
    for i, d in enumerate(dirs):
        lam = float(r @ d)
        if lam > 0:
            best = min(best, float(np.linalg.norm(r - lam * d)))
        for e in dirs[i + 1:]:
            m = np.stack([d, e], axis=1)  # (2, 2)
            if abs(np.linalg.det(m)) > 1e-9 and (np.linalg.solve(m, r) >= 0).all():
                return 0.0
    return best


def _bounce_restitution(t_a: np.ndarray, y_a: np.ndarray, t_b: np.ndarray, y_b: np.ndarray,
                        min_speed: float) -> float | None:
    """``ê = −ẏ_b(t_c)/ẏ_a(t_c)`` where the quadratic fits before (a) and after (b) meet (``t_c``)."""
    t0 = 0.5 * (t_a[-1] + t_b[0])  # centre time for conditioning
    ca, cb = np.polyfit(t_a - t0, y_a, 2), np.polyfit(t_b - t0, y_b, 2)
    lo, hi = t_a[-1] - t0 - 0.5, t_b[0] - t0 + 0.5
    diff = ca - cb
    if abs(diff[0]) < 1e-9:
        roots = np.array([-diff[2] / diff[1]]) if abs(diff[1]) > 1e-12 else np.array([])
    else:
        roots = np.roots(diff)
    roots = [z.real for z in np.atleast_1d(roots) if abs(z.imag) < 1e-9 and lo <= z.real <= hi]
    tc = min(roots, key=abs) if roots else 0.0
    v_in, v_out = np.polyval(np.polyder(ca), tc), np.polyval(np.polyder(cb), tc)
    if v_in < min_speed:
        return None
    return float(-v_out / v_in)


def _modal_presence(tracks: Tracks, c: ContactFrames) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``member`` (K,), ``missing`` and ``extra`` (T, K): see ``PhysicsMetrics.permanence_error``.

    An absence is excused when the ball was last seen leaving the image or is next seen entering it;
    a sighting of a non-member is excused when it is leaving or entering.
    """
    vis = tracks.visible
    T, K = vis.shape
    excused = np.zeros((T, K), dtype=bool)
    for k in range(K):
        seen = np.flatnonzero(vis[:, k])
        for t in np.flatnonzero(~vis[:, k]) if seen.size else []:
            before, after = seen[seen < t], seen[seen > t]
            left = before.size > 0 and c.leaving[before[-1], k]
            excused[t, k] = left or (after.size > 0 and c.entering[after[0], k])
    member = vis.sum(0) > (~vis & ~excused).sum(0)  # (K,)
    missing = member[None] & ~vis & ~excused
    extra = ~member[None] & vis & ~(c.leaving | c.entering)
    return member, missing, extra


def frame_sharpness(frames: np.ndarray) -> float:
    """Mean over frames of the variance of the Laplacian of the grey image (0–255) → grey-level²."""
    vals = [cv2.Laplacian(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY), cv2.CV_64F).var() for f in frames]
    return float(np.mean(vals))


def _ballistic_fits(p: np.ndarray, segments: dict[int, list[np.ndarray]], g: float, config: MetricConfig):
    """Fit ``x`` linear and ``y`` quadratic on each long enough segment.

    Returns ``(gravity_fit, gravity_error, ballistic_residual, n_segments)`` (NaN when no segment).
    """
    acc, lengths, sq_res, n_res = [], [], 0.0, 0
    for k, segs in segments.items():
        for seg in segs:
            if len(seg) < config.min_segment:
                continue
            t = seg - seg[0]
            cx, cy = np.polyfit(t, p[seg, k, 0], 1), np.polyfit(t, p[seg, k, 1], 2)
            res = np.stack([p[seg, k, 0] - np.polyval(cx, t), p[seg, k, 1] - np.polyval(cy, t)], -1)  # (n, 2)
            sq_res += float((res**2).sum())
            n_res += len(seg)
            acc.append(2.0 * cy[0])  # y = c + b t + ½ a t²
            lengths.append(len(seg))
    if not acc:
        return math.nan, math.nan, math.nan, 0
    acc, w = np.array(acc), np.array(lengths, dtype=float)
    return (float((acc * w).sum() / w.sum()), float((np.abs(acc - g) * w).sum() / w.sum() / max(abs(g), 1e-9)),
            math.sqrt(sq_res / n_res), len(acc))


def _restitutions(p: np.ndarray, vis: np.ndarray, c: ContactFrames, segments: dict[int, list[np.ndarray]],
                  config: MetricConfig) -> list[float]:
    """``ê`` at each floor bounce: two segments separated by a short run of floor-only contact frames."""
    floor_gap = c.touching_floor | c.floor_bounce
    other_gap = c.touching_border | c.near_ball | c.left_bounce | c.right_bounce
    e_hat = []
    for k, segs in segments.items():
        for a, b in zip(segs[:-1], segs[1:]):
            gap = np.arange(a[-1] + 1, b[0])
            if not 1 <= len(gap) <= config.max_bounce_gap or min(len(a), len(b)) < config.min_bounce_segment:
                continue
            if vis[gap, k].all() and floor_gap[gap, k].all() and not other_gap[gap, k].any():
                est = _bounce_restitution(a.astype(float), p[a, k, 1], b.astype(float), p[b, k, 1],
                                          config.min_bounce_speed)
                if est is not None:
                    e_hat.append(est)
    return e_hat


def _velocity_jumps(p: np.ndarray, vis: np.ndarray, c: ContactFrames, g: float, config: MetricConfig):
    """``(jumps, evaluated)``: accelerations that no contact within reach explains (see PhysicsMetrics)."""
    a2 = p[2:] - 2 * p[1:-1] + p[:-2]  # (T-2, K, 2) at frames 1..T-2, px/frame²
    res = a2 - np.array([0.0, g])  # what forces other than gravity did
    valid = vis[2:] & vis[1:-1] & vis[:-2] & ~_window(c.clipped)  # (T-2, K)
    thr = jump_threshold(g, config)
    jumps = 0
    for i, k in zip(*np.nonzero(valid & (np.linalg.norm(np.nan_to_num(res), axis=-1) > thr))):
        if _unexplained(res[i, k], _contact_directions(c, p, i + 1, k)) > thr:
            jumps += 1
    return jumps, int(valid.sum())


def physics_metrics(tracks: Tracks, world: WorldConfig, frames: np.ndarray | None = None,
                    config: MetricConfig = MetricConfig()) -> PhysicsMetrics:
    """All physics metrics of one clip (see :class:`PhysicsMetrics`); ``frames`` only for sharpness.

    Raises:
        ClipError: no ball of the palette was found in any frame.
    """
    p, vis = tracks.positions, tracks.visible  # (T, K, 2), (T, K)
    T, K = vis.shape
    if not vis.any():
        raise ClipError(f"no ball of the world's palette was found in any of the {T} frames "
                        "(the clip is empty, all background, or not from this world)")
    g = world.gravity
    c = detect_contacts(tracks, g, config)
    segments = {k: _runs(c.flight[:, k]) for k in range(K) if vis[:, k].any()}  # free-flight runs per ball

    gravity_fit, gravity_error, ballistic_residual, n_segments = _ballistic_fits(p, segments, g, config)
    e_hat = _restitutions(p, vis, c, segments, config)
    jumps, n_jump_frames = _velocity_jumps(p, vis, c, g, config)

    # Object permanence and detection.
    member, missing, extra = _modal_presence(tracks, c)
    split = (tracks.n_components > 1).any(axis=1)  # (T,): a colour seen as several blobs
    found = int((vis & member[None]).sum())

    # Shape stability, over frames where a ball is whole.
    cvs = []
    for k in np.flatnonzero(member):
        rk = tracks.radius[vis[:, k] & ~c.touching_border[:, k] & ~c.near_ball[:, k], k]
        if len(rk) >= 3:
            cvs.append(float(rk.std() / rk.mean()))

    return PhysicsMetrics(
        gravity_error=gravity_error,
        ballistic_residual=ballistic_residual,
        restitution_error=float(np.mean(np.abs(np.array(e_hat) - world.restitution))) if e_hat else math.nan,
        velocity_jumps=jumps,
        jump_rate=jumps / n_jump_frames if n_jump_frames else math.nan,
        permanence_error=float((missing.any(axis=1) | extra.any(axis=1) | split).mean()),
        radius_cv=float(np.mean(cvs)) if cvs else math.nan,
        detection_rate=found / (found + int(missing.sum())) if member.any() else 0.0,
        sharpness=frame_sharpness(frames) if frames is not None else math.nan,
        gravity_fit=gravity_fit,
        restitution_fit=float(np.mean(e_hat)) if e_hat else math.nan,
        n_objects=int(member.sum()),
        colours=[tracks.colours[k] for k in np.flatnonzero(member)],
        n_segments=n_segments,
        n_bounces=len(e_hat),
        n_jump_frames=n_jump_frames,
        ghost_rate=float((extra.any(axis=1) | split).mean()),
        background_noise=background_noise(frames, tracks) if frames is not None else math.nan,
    )


def background_noise(frames: np.ndarray, tracks: Tracks) -> float:
    """Mean over the pixels of ``(T, H, W, 3)`` frames farther than one pixel from a ball pixel of
    ``tracks`` of their largest per-channel deviation from the background colour (grey levels)."""
    if tracks.claimed is None:
        return math.nan
    kernel = np.ones((3, 3), np.uint8)
    near = np.stack([cv2.dilate(c.astype(np.uint8), kernel) > 0 for c in tracks.claimed])  # (T, H, W)
    dev = np.abs(np.asarray(frames, np.float32) - np.asarray(BACKGROUND, np.float32)).max(-1)  # (T, H, W)
    return float(dev[~near].mean()) if (~near).any() else 0.0


def evaluate_clip(frames: np.ndarray, world: WorldConfig, tracker: TrackerConfig = TrackerConfig(),
                  config: MetricConfig = MetricConfig()) -> PhysicsMetrics:
    """Check, track and score one clip of ``world`` (``(T, H, W, 3)`` uint8 RGB).

    Raises:
        ClipError: the frames have the wrong size, are not ``world.frames`` of them, or show no ball.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ClipError(f"frames must be (T, H, W, 3) RGB, got shape {frames.shape}")
    T, H, W = frames.shape[:3]
    if (H, W) != (world.size, world.size):
        raise ClipError(f"frame size {W}×{H} does not match the world's {world.size}×{world.size} "
                        "(pass the world of these clips: its world.json or --preset)")
    if T < 3:
        raise ClipError(f"the clip has {T} frame(s); physics metrics need at least 3")
    if T != world.frames:  # a cut-short clip would be scored as a short one
        raise ClipError(f"the clip has {T} frames but the world's clips have {world.frames} (a truncated video, "
                        "or clips of another world: pass its world.json or --preset)")
    return physics_metrics(track(frames, config=tracker), world, frames, config)


def aggregate(records: Sequence[PhysicsMetrics | Mapping | None],
              names: Mapping[str, tuple] | Sequence[str] = PHYSICS_METRICS) -> dict[str, dict]:
    """Mean and spread of each metric over clips.

    ``records``: per-clip metrics (dataclasses or dicts); ``None`` marks a failed clip and is skipped.
    Returns ``{name: {"mean", "std", "n", "n_undefined"}}`` — ``std`` is the population standard
    deviation over the ``n`` clips where the metric is defined, ``n_undefined`` counts NaN / missing.
    """
    rows = [r.to_dict() if hasattr(r, "to_dict") else dict(r) for r in records if r is not None]
    out = {}
    for name in names:
        vals = [r.get(name) for r in rows]
        ok = np.array([float(v) for v in vals if v is not None and math.isfinite(float(v))])
        out[name] = {
            "mean": float(ok.mean()) if ok.size else math.nan,
            "std": float(ok.std()) if ok.size else math.nan,
            "n": int(ok.size),
            "n_undefined": len(rows) - int(ok.size),
        }
    return out
