"""Choosing the knobs on validation prompts only: which prior, λ and window ρ, and the peer's step size η
(:func:`choose`: the lowest validation composite physics error that keeps the detection rate)."""
from __future__ import annotations

import math

from ..effect import COMPOSITE, compare
from .config import DemoConfig
from .variants import _sample, _score, validation_prompts

__all__ = ["choose"]


def choose(effects: dict[str, dict], tolerance: float) -> tuple[str | None, str]:
    """The candidate with the lowest validation composite physics error among those whose detection
    rate fell by at most ``tolerance`` (absolute, point estimate); ties go to the earlier candidate.
    ``effects``: candidate → :func:`lamo.effect.compare` output against the baseline. Returns the
    winner (``None`` when no candidate keeps fidelity) and the reason, in words."""
    ok = {k: e for k, e in effects.items()
          if math.isfinite(e[COMPOSITE].rel) and not (e["detection_rate"].diff < -tolerance)}
    if not ok:
        return None, f"no candidate kept the detection rate within {tolerance:g} of the baseline's"
    best = min(ok, key=lambda k: ok[k][COMPOSITE].rel)
    return best, (f"lowest validation composite physics error ({100 * ok[best][COMPOSITE].rel:+.1f} %) among "
                  f"{len(ok)} of {len(effects)} candidates with detection within {tolerance:g}")


def _effect_summary(effects: dict) -> dict:
    """What a selection keeps of a validation comparison: composite and detection with intervals."""
    return {m: {"rel": e.rel, "rel_ci": list(e.rel_ci), "diff": e.diff, "diff_ci": list(e.diff_ci), "n": e.n}
            for m, e in effects.items()}


def _select(cfg: DemoConfig, pipe, preset, world, priors: dict) -> dict:
    """Choose the prior, λ and the peer's step size on validation prompts × seeds (never the test's)."""
    val_prompts = validation_prompts(world, cfg.val_prompts)
    first = next(iter(priors.values()))

    def rows_of(prior, lam, flowmo=0.0, desc="", window=None):
        frames, _ = _sample(pipe, val_prompts, cfg.val_seeds, cfg, preset, prior, lam, flowmo=flowmo, desc=desc,
                            window=window)
        return _score(frames, world, val_prompts, cfg.val_seeds)

    metrics = [COMPOSITE, "detection_rate"]
    windows = tuple(cfg.windows) or (cfg.window,)
    base = rows_of(first, 0.0, desc="validation: baseline")
    per_prior, lam_of, win_of, validation = {}, {}, {}, {}
    for label, prior in priors.items():
        effects = {}  # (λ, ρ) → effects; λ and ρ are chosen together
        for w in windows:
            series = label if len(windows) == 1 else f"{label} ρ={w:g}"
            for lam in cfg.sweep:
                effects[lam, w] = compare(base, rows_of(prior, lam, desc=f"validation: {series} λ={lam:g}", window=w),
                                          metrics, n_resamples=cfg.n_resamples, seed=cfg.seed)
            validation[series] = {str(lam): _effect_summary(effects[lam, w]) for lam in cfg.sweep}
        knob, why = choose(effects, cfg.detection_tolerance)
        if knob is None:
            knob, why = (min(cfg.sweep), windows[0]), why + "; the smallest λ is used"
        lam_of[label], win_of[label] = (knob[0], why), knob[1]
        per_prior[label] = effects[knob]
    label, why = choose(per_prior, math.inf)
    label = label or next(iter(priors))
    eta_effects = {eta: compare(base, rows_of(None, 0.0, flowmo=eta, desc=f"validation: peer η={eta:g}"), metrics,
                                n_resamples=cfg.n_resamples, seed=cfg.seed) for eta in cfg.flowmo_sweep}
    eta, eta_why = choose(eta_effects, cfg.detection_tolerance) if eta_effects else (None, "no sweep")
    return {
        "prior": label, "prior_why": why, "lambda": lam_of[label][0], "lambda_why": lam_of[label][1],
        "lambda_per_prior": {k: v[0] for k, v in lam_of.items()},
        "window": win_of[label], "window_per_prior": win_of, "windows": list(windows),
        "flowmo_eta": eta if eta is not None else (min(cfg.flowmo_sweep) if cfg.flowmo_sweep else 0.0),
        "flowmo_why": eta_why, "flowmo_variant": cfg.flowmo_variant, "flowmo_fraction": cfg.flowmo_fraction,
        "validation": validation, "validation_flowmo": {str(k): _effect_summary(v) for k, v in eta_effects.items()},
        "val_prompts": cfg.val_prompts, "val_seeds": list(cfg.val_seeds), "steps": cfg.steps, "cfg_scale": cfg.cfg_scale,
        "detection_tolerance": cfg.detection_tolerance,
    }
