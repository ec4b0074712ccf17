"""The effect benchmark's statistics: is a variant's change of a metric real, and how large is it?

Every comparison is *paired*: the variant and its control were sampled from the same prompts and the
same initial noise, so the unit of analysis is the per-clip difference ``d_i = variant_i − control_i``
over the clips where the metric is defined in both (``n`` is always reported).

For each metric (:func:`paired_effect`):

* **effect** — the mean difference ``d̄`` and the relative change ``d̄ / mean(control)`` (same clips),
  each with a 95 % bootstrap interval over clips (:func:`scipy.stats.bootstrap`, BCa, paired
  resampling; percentile where BCa is degenerate);
* **test** — a paired sign-flip permutation test of ``d̄ = 0`` (:func:`scipy.stats.permutation_test`
  with one sample: the null flips the sign of each ``d_i``), Holm-corrected over all metrics of one
  comparison (:func:`holm`) — so the chance that *any* verdict of a comparison is a false alarm is at
  most ``alpha``;
* **verdict** — "improved" / "worsened" only when the corrected p-value is below ``alpha`` *and* the
  interval excludes 0; otherwise "no detectable change", with the **smallest detectable effect**
  ``(z_{1−α/(2m)} + z_{0.8})·sd(d)/√n`` (80 % power at the strictest Holm level, ``m`` metrics): the
  size of change this run could have seen.

The **composite physics error** (:func:`composite`) is one number per clip: the mean over the physics
metrics (ballistic residual, gravity error, jump rate) of each metric divided by the control's mean of
that metric, over the metrics defined on that clip in both variants. The control's composite averages
≈ 1, so "LaMo cuts physics error by N %" is the composite's relative change. Fidelity (detection,
permanence, radius stability, distance to the ground truth's sharpness) is reported beside it, never
folded in.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

__all__ = ["COMPOSITE", "PHYSICS_PARTS", "FIDELITY", "BETTER", "MetricEffect", "holm", "composite",
           "paired_effect", "compare", "smallest_detectable", "fmt_change"]

#: The composite physics error's name and its parts (each lower is better).
COMPOSITE = "physics_error"
PHYSICS_PARTS = ("ballistic_residual", "gravity_error", "jump_rate")
#: Fidelity: how the clip looks, reported beside the composite and never folded into it.
#: ``sharpness_error`` is the distance to the ground truth's sharpness (raw sharpness has no better side:
#: a noisy backbone is "sharper" than the world it imitates).
FIDELITY = ("detection_rate", "permanence_error", "radius_cv", "sharpness_error")
#: Which direction is better for every metric this module knows.
BETTER = {COMPOSITE: "lower", "ballistic_residual": "lower", "gravity_error": "lower", "jump_rate": "lower",
          "restitution_error": "lower", "detection_rate": "higher", "permanence_error": "lower",
          "radius_cv": "lower", "sharpness_error": "lower", "sharpness": "≈ ground truth", "motion_smoothness": "higher",
          "temporal_flickering": "higher", "guide_loss": "lower",
          # readout B (lamo.physics.readout), and the balls' size against the ground truth's
          "b_ballistic_residual": "lower", "b_gravity_error": "lower", "b_unexplained_dv": "lower",
          "b_unexplained_dv_rms": "lower", "b_break_rate": "lower", "b_size_error": "lower", "b_area_ratio": "≈ 1"}

#: Fewer paired clips than this and no verdict is given.
MIN_CLIPS = 8


@dataclass
class MetricEffect:
    """One metric of one comparison (variant − control, paired over clips). Relative values are
    fractions (−0.1 = 10 % lower than the control)."""

    metric: str
    better: str  # "lower" | "higher"
    n: int  # clips with the metric defined in both
    n_total: int  # clips in the comparison
    control_mean: float
    variant_mean: float
    diff: float  # mean paired difference
    diff_ci: tuple[float, float]
    rel: float  # diff / control_mean
    rel_ci: tuple[float, float]
    p: float  # paired permutation test, uncorrected
    p_holm: float  # Holm-corrected over the comparison's metrics
    mde: float  # smallest detectable |diff| (80 % power, strictest Holm level)
    mde_rel: float  # mde / |control_mean|
    verdict: str  # "improved" | "worsened" | "no detectable change" | "too few clips"

    def sentence(self) -> str:
        """One line for a report: ``metric: verdict — effect [CI] (n)``; a "no detectable change" whose interval
        excludes 0 says right there why it is not counted (the Holm-corrected test did not fire)."""
        if self.verdict == "too few clips":
            return f"{self.metric}: too few clips to tell (n = {self.n} of {self.n_total})"
        head = (f"{self.metric} ({self.better} is better): {self.verdict} — {fmt_change(self.rel, self.rel_ci)} "
                f"(difference {self.diff:+.4g}, control {self.control_mean:.4g}, n = {self.n}/{self.n_total}, "
                f"Holm p = {self.p_holm:.2g})")
        if self.verdict == "no detectable change":
            head += f"; smallest detectable effect ≈ {fmt_change(self.mde_rel)[1:]} ({self.mde:.3g})"
            if self.interval_only:
                head += (f" — the interval excludes 0 but the paired test, Holm-corrected over this comparison's "
                         f"metrics, does not reach p < 0.05 (p = {self.p_holm:.2g}; uncorrected {self.p:.2g}): "
                         "a change needs both, so this one is not counted")
        return head

    @property
    def interval_only(self) -> bool:
        """The 95 % interval excludes 0 while the Holm-corrected test does not fire (verdict: no detectable change)."""
        lo, hi = self.rel_ci if all(map(math.isfinite, self.rel_ci)) else self.diff_ci
        return self.verdict == "no detectable change" and math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0)

    def to_dict(self) -> dict:
        return asdict(self)


def fmt_change(rel: float, ci: Sequence[float] | None = None) -> str:
    """A relative change (fraction) as a signed percentage, ``"+12.3 %"``, with its interval ``"[−20.1 … −4.0]"``
    when ``ci`` is given. One decimal, or as many as the change needs to show its first two significant digits
    (``+0.041 %``, never ``+0.0 %`` for a change that is not zero); the interval shares the change's decimals."""
    pct = 100 * rel
    decimals = 1
    if math.isfinite(pct) and pct != 0 and abs(pct) < 0.095:
        decimals = min(6, 1 - math.floor(math.log10(abs(pct))))
    text = f"{pct:+.{decimals}f} %"
    if ci is not None:
        text += f" [{100 * ci[0]:+.{decimals}f} … {100 * ci[1]:+.{decimals}f}]"
    return text


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment (Holm 1979): the i-th smallest p is multiplied by ``m − i`` (i from 0),
    made monotone, capped at 1. NaN p-values are left out of ``m`` and stay NaN."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def smallest_detectable(sd: float, n: int, alpha: float, power: float = 0.8) -> float:
    """Smallest mean paired difference a two-sided level-``alpha`` test detects with ``power``, for
    per-clip differences of standard deviation ``sd`` over ``n`` clips (normal approximation)."""
    if n < 2:
        return math.nan
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * sd / math.sqrt(n))


def _values(rows: Sequence[Mapping], metric: str) -> np.ndarray:
    return np.array([_num(r.get(metric)) for r in rows], dtype=float)


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def composite(control: Sequence[Mapping], variant: Sequence[Mapping],
              parts: Sequence[str] = PHYSICS_PARTS) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip composite physics error of ``control`` and ``variant`` (same clips, same order).

    Each part ``k`` is divided by the control's mean of ``k`` over the clips where ``k`` is defined in
    both; a clip's composite is the mean of its parts defined in both (NaN when none is). Returns two
    ``(N,)`` arrays."""
    if len(control) != len(variant):
        raise ValueError(f"paired rows differ in length: control {len(control)}, variant {len(variant)}")
    a_parts, b_parts = [], []
    for k in parts:
        a, b = _values(variant, k), _values(control, k)
        both = np.isfinite(a) & np.isfinite(b)
        norm = b[both].mean() if both.any() else math.nan
        if not (math.isfinite(norm) and norm > 0):
            continue  # a part the control never shows (or shows as exactly 0) cannot be normalised
        a_parts.append(np.where(both, a / norm, np.nan))
        b_parts.append(np.where(both, b / norm, np.nan))
    if not a_parts:
        nan = np.full(len(control), np.nan)
        return nan, nan.copy()
    with _quiet():
        return np.nanmean(np.stack(b_parts), axis=0), np.nanmean(np.stack(a_parts), axis=0)


@contextmanager
def _quiet():
    """Silence numpy's and scipy's RuntimeWarnings (a mean of an all-NaN column is meant to be NaN; BCa on
    degenerate resamples is retried as a percentile interval)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _bootstrap(data: tuple[np.ndarray, ...], statistic, rng: np.random.Generator, n_resamples: int) -> tuple[float, float]:
    """95 % BCa interval (percentile when BCa is degenerate), paired resampling of clips."""
    if all(np.allclose(x, x[0]) for x in data):
        v = float(statistic(*[x[None] for x in data], axis=-1)[0])
        return v, v  # no spread: the interval is the point
    for method in ("BCa", "percentile"):
        with _quiet():
            res = stats.bootstrap(data, statistic, paired=True, vectorized=True, n_resamples=n_resamples,
                                  confidence_level=0.95, method=method, random_state=rng)
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(lo) and math.isfinite(hi):
            return lo, hi
    return math.nan, math.nan


def _mean_diff(a, b, axis=-1):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def _rel_diff(a, b, axis=-1):
    return _mean_diff(a, b, axis) / np.mean(b, axis=axis)


def paired_effect(control: np.ndarray, variant: np.ndarray, metric: str, better: str | None = None,
                  n_resamples: int = 4999, seed: int = 0) -> MetricEffect:
    """Effect of ``variant`` over ``control`` on one metric (``(N,)`` arrays, NaN = undefined on that clip).
    ``p_holm``, ``mde`` and ``verdict`` are filled in by :func:`compare` (here: uncorrected, one metric)."""
    better = better or BETTER.get(metric, "lower")
    a, b = np.asarray(variant, float), np.asarray(control, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"{metric}: control and variant must be 1-D arrays of the same clips, got {b.shape} and {a.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b, n = a[ok], b[ok], int(ok.sum())
    nan2 = (math.nan, math.nan)
    if n < MIN_CLIPS:
        return MetricEffect(metric, better, n, len(ok), float(b.mean()) if n else math.nan,
                            float(a.mean()) if n else math.nan, float((a - b).mean()) if n else math.nan, nan2,
                            math.nan, nan2, math.nan, math.nan, math.nan, math.nan, "too few clips")
    rng = np.random.default_rng(seed)
    d = a - b
    cmean = float(b.mean())
    diff_ci = _bootstrap((a, b), _mean_diff, rng, n_resamples)
    if cmean != 0:
        rel, rel_ci = float(d.mean() / cmean), _bootstrap((a, b), _rel_diff, rng, n_resamples)
        if cmean < 0:
            rel_ci = (rel_ci[1], rel_ci[0])
    else:
        rel, rel_ci = math.nan, nan2
    if np.all(d == 0):
        p = 1.0
    else:
        p = float(stats.permutation_test((d,), np.mean, permutation_type="samples", vectorized=True,
                                         n_resamples=9999, alternative="two-sided", random_state=rng).pvalue)
    return MetricEffect(metric, better, n, len(ok), cmean, float(a.mean()), float(d.mean()), diff_ci, rel, rel_ci,
                        p, p, math.nan, math.nan, "")


def _verdict(e: MetricEffect, alpha: float) -> str:
    if e.verdict == "too few clips":
        return e.verdict
    lo, hi = e.diff_ci
    excludes_zero = math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0)
    if not (e.p_holm < alpha and excludes_zero):
        return "no detectable change"
    good = e.diff < 0 if e.better == "lower" else e.diff > 0
    return "improved" if good else "worsened"


def compare(control: Sequence[Mapping], variant: Sequence[Mapping], metrics: Sequence[str],
            alpha: float = 0.05, n_resamples: int = 4999, seed: int = 0) -> dict[str, MetricEffect]:
    """Every metric of ``variant`` against ``control`` (per-clip rows, same clips in the same order),
    Holm-corrected over ``metrics``. ``COMPOSITE`` in ``metrics`` is computed by :func:`composite`."""
    if len(control) != len(variant):
        raise ValueError(f"paired rows differ in length: control {len(control)}, variant {len(variant)} — "
                         "a comparison needs the same (prompt, seed) clips in both")
    if not metrics:
        raise ValueError("compare needs at least one metric")
    effects, pairs = {}, {}
    for m in metrics:
        b, a = composite(control, variant) if m == COMPOSITE else (_values(control, m), _values(variant, m))
        pairs[m] = (a - b)[np.isfinite(a) & np.isfinite(b)]
        effects[m] = paired_effect(b, a, m, n_resamples=n_resamples, seed=seed)
    adjusted = holm([e.p for e in effects.values()])
    strictest = alpha / max(1, int(np.isfinite(adjusted).sum()))  # Holm's first step
    for (m, e), p in zip(effects.items(), adjusted):
        e.p_holm = float(p)
        if e.verdict != "too few clips":
            e.mde = smallest_detectable(float(pairs[m].std(ddof=1)), len(pairs[m]), strictest)
            e.mde_rel = abs(e.mde / e.control_mean) if e.control_mean else math.nan
        e.verdict = _verdict(e, alpha)
    return effects
