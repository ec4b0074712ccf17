"""Choosing the knobs on validation prompts only: which prior, λ and window ρ, and the peer's step size η
(:func:`choose`: the lowest validation composite physics error that keeps the detection rate), and the rule that
compares candidates with each other rather than with the baseline alone (:func:`choose_paired`: a challenger
replaces the incumbent only when a paired interval says it is better; :func:`choose_stably`: and only when two
disjoint validation seed sets make the same choice)."""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..effect import COMPOSITE, compare, composite, holm, paired_effect
from ..errors import InputError
from .config import DemoConfig
from .variants import _sample, _score, validation_prompts

try:  # the prior's validated settings (sampling.json), lamo.prior's interface
    from ..prior import read_sampling_settings, write_sampling_settings
except ImportError:  # a lamo without it: selection.json alone carries the knobs
    read_sampling_settings = write_sampling_settings = None

__all__ = ["choose", "choose_paired", "choose_stably", "seed_set_stability", "sampling_settings", "record_sampling_settings", "apply_sampling_settings"]

log = logging.getLogger(__name__)


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


def choose_paired(baseline: Sequence[Mapping], incumbent: Sequence[Mapping],
                  challengers: Mapping[str, Sequence[Mapping]], tolerance: float = 0.01, alpha: float = 0.05,
                  n_resamples: int = 4999, seed: int = 0) -> dict:
    """Keep the incumbent unless a challenger is detectably better than it, paired on the same clips.

    All rows are per-clip rows of the same (prompt, seed) clips in the same order, sampled from the same initial
    noise. A challenger is *eligible* when its detection rate fell by at most ``tolerance`` against the
    ``baseline`` (absolute, point estimate: :func:`choose`'s fidelity rule). Every candidate's per-clip composite
    physics error is taken against the baseline (:func:`lamo.effect.composite`: each part divided by the
    baseline's mean, so the baseline's composite averages 1 and a candidate's mean is one minus its effect), and
    each eligible challenger's is compared with the incumbent's clip by clip (:func:`lamo.effect.paired_effect`:
    the mean difference ``diff`` — in units of the baseline's composite, so −0.1 is ten points more effect — with
    a 95 % bootstrap interval, and a paired sign-flip test); the p-values are Holm-corrected over the eligible
    challengers. A challenger *beats* the incumbent when that interval lies wholly below 0 and its corrected
    p < ``alpha``; among those that do, the lowest difference wins. Otherwise the incumbent stays (``choice`` is
    ``None``). (Normalising by the baseline, not by the incumbent, keeps a part the incumbent nearly removed —
    a rare jump — from dominating the comparison.)

    Returns ``{"choice", "why", "candidates": {name: {eligible, detection_diff, diff, diff_ci, rel, rel_ci, p,
    p_holm, n, beats}}}`` (``rel``: ``diff`` over the incumbent's mean composite).
    """
    rows = {"incumbent": incumbent, **challengers}
    if any(len(r) != len(baseline) for r in rows.values()):
        raise ValueError("choose_paired needs the same clips in every candidate: row counts "
                         f"{ {k: len(v) for k, v in rows.items()} } against the baseline's {len(baseline)}")
    _, inc = composite(baseline, incumbent)
    table: dict[str, dict] = {}
    for name, r in challengers.items():
        det = compare(baseline, r, ["detection_rate"], n_resamples=n_resamples, seed=seed)["detection_rate"]
        e = paired_effect(inc, composite(baseline, r)[1], COMPOSITE, n_resamples=n_resamples, seed=seed)
        table[name] = {"eligible": bool(not (det.diff < -tolerance) and math.isfinite(e.diff)),
                       "detection_diff": det.diff, "diff": e.diff, "diff_ci": list(e.diff_ci), "rel": e.rel,
                       "rel_ci": list(e.rel_ci), "p": e.p, "n": e.n}
    names = [k for k, v in table.items() if v["eligible"]]
    adjusted = holm([table[k]["p"] for k in names])
    for k, p in zip(names, adjusted):
        v = table[k]
        v["p_holm"] = float(p)
        v["beats"] = bool(p < alpha and math.isfinite(v["diff_ci"][1]) and v["diff_ci"][1] < 0)
    for v in table.values():
        v.setdefault("p_holm", math.nan)
        v.setdefault("beats", False)
    winners = [k for k in names if table[k]["beats"]]
    if not winners:
        return {"choice": None, "candidates": table,
                "why": (f"no challenger's composite physics error was detectably below the incumbent's (paired 95 % "
                        f"interval below 0 and Holm-corrected p < {alpha:g} over {len(names)} eligible of "
                        f"{len(table)}): the incumbent stays")}
    best = min(winners, key=lambda k: table[k]["diff"])
    v = table[best]
    return {"choice": best, "candidates": table,
            "why": (f"composite physics error {100 * v['diff']:+.1f} [{100 * v['diff_ci'][0]:+.1f}, "
                    f"{100 * v['diff_ci'][1]:+.1f}] points of the baseline's against the incumbent, paired on "
                    f"{v['n']} clips (Holm p = "
                    f"{v['p_holm']:.2g}); the lowest of {len(winners)} challenger(s) that beat it, among {len(names)} "
                    f"eligible of {len(table)}")}


def choose_stably(baseline: Sequence[Mapping], incumbent: Sequence[Mapping],
                  challengers: Mapping[str, Sequence[Mapping]], groups: Mapping[str, Sequence[int]],
                  **kwargs) -> dict:
    """:func:`choose_paired` on all clips and on each disjoint group of them (e.g. two validation seed sets:
    ``groups`` maps a name to row indices); the choice stands only when every group makes the same choice as
    all clips together — otherwise the incumbent stays. ``kwargs`` go to :func:`choose_paired`.

    Returns ``{"choice", "stable", "why", "pooled": …, "groups": {name: …}}``."""
    seen: set[int] = set()
    for g, idx in groups.items():
        if not idx:
            raise ValueError(f"validation group {g!r} holds no clips")
        if seen & set(idx):
            raise ValueError(f"validation groups overlap (group {g!r}); they must be disjoint")
        seen |= set(idx)
    pooled = choose_paired(baseline, incumbent, challengers, **kwargs)
    pick = lambda rows, idx: [rows[i] for i in idx]  # noqa: E731
    per = {g: choose_paired(pick(baseline, idx), pick(incumbent, idx), {k: pick(v, idx) for k, v in challengers.items()},
                            **kwargs) for g, idx in groups.items()}
    choices = {g: r["choice"] for g, r in per.items()}
    stable = all(c == pooled["choice"] for c in choices.values())
    if stable:
        why = f"every validation group made the same choice as all clips together: {pooled['why']}"
        choice = pooled["choice"]
    else:
        said = ", ".join(f"{g}: {c or 'the incumbent'}" for g, c in choices.items())
        why = (f"the validation groups disagree ({said}; "
               f"all clips: {pooled['choice'] or 'the incumbent'}): the incumbent stays")
        choice = None
    return {"choice": choice, "stable": stable, "why": why, "pooled": pooled, "groups": per}


def _choose_knobs(per_prior: Mapping[str, Mapping[tuple, dict]], cfg: DemoConfig, windows: Sequence[float]):
    """The selection rule over a λ × ρ sweep per prior: each prior's (λ, ρ) by :func:`choose` (the smallest λ at the
    first window when none keeps detection), then the prior whose chosen knob has the lowest composite (the first
    prior on a tie or when none is finite). ``per_prior``: prior → (λ, ρ) → :func:`lamo.effect.compare` output
    against the baseline. Returns ``(prior, why, {prior: ((λ, ρ), why)})``."""
    knobs, best = {}, {}
    for label, effects in per_prior.items():
        knob, why = choose(effects, cfg.detection_tolerance)
        if knob is None:
            knob, why = (min(cfg.sweep), windows[0]), why + "; the smallest λ is used"
        knobs[label], best[label] = (knob, why), effects[knob]
    label, why = choose(best, math.inf)
    return label or next(iter(per_prior)), why, knobs


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
    per_prior, validation, rows = {}, {}, {}
    for label, prior in priors.items():
        effects = {}  # (λ, ρ) → effects; λ and ρ are chosen together
        for w in windows:
            series = label if len(windows) == 1 else f"{label} ρ={w:g}"
            for lam in cfg.sweep:
                rows[label, lam, w] = rows_of(prior, lam, desc=f"validation: {series} λ={lam:g}", window=w)
                effects[lam, w] = compare(base, rows[label, lam, w], metrics, n_resamples=cfg.n_resamples, seed=cfg.seed)
            validation[series] = {str(lam): _effect_summary(effects[lam, w]) for lam in cfg.sweep}
        per_prior[label] = effects
    label, why, knobs = _choose_knobs(per_prior, cfg, windows)
    lam_of = {k: (knob[0], knob_why) for k, (knob, knob_why) in knobs.items()}
    win_of = {k: knob[1] for k, (knob, _) in knobs.items()}
    stability = seed_set_stability(base, rows, cfg, (label, lam_of[label][0], win_of[label]))
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
        "val_prompts": cfg.val_prompts, "val_seeds": list(cfg.val_seeds), "steps": cfg.steps, "guidance_scale": cfg.guidance_scale,
        "detection_tolerance": cfg.detection_tolerance, "stability": stability,
    }


def seed_set_stability(base: Sequence[Mapping], rows: Mapping[tuple, Sequence[Mapping]], cfg: DemoConfig,
                       chosen: tuple) -> dict:
    """Would each half of the validation seeds have chosen the same (prior, λ, ρ)? The validation seeds split into
    two disjoint sets (the first half and the second); on each, :func:`choose`'s rule runs again over every
    candidate — λ and ρ per prior, then the prior — on that set's clips alone. ``rows``: (prior, λ, ρ) → the
    validation rows, in ``base``'s order. Returns ``{"stable", "groups": {name: {"prior", "lambda", "window",
    "seeds"}}, "chosen"}``; ``stable`` is ``None`` with fewer than two validation seeds (nothing to split)."""
    seeds, windows = tuple(cfg.val_seeds), tuple(cfg.windows) or (cfg.window,)
    chosen_d = {"prior": chosen[0], "lambda": float(chosen[1]), "window": float(chosen[2])}
    if len(seeds) < 2:
        return {"stable": None, "groups": {}, "chosen": chosen_d,
                "why": "one validation seed: no disjoint seed sets to compare"}
    half = len(seeds) // 2
    groups: dict[str, dict] = {}
    for part in (seeds[:half], seeds[half:]):
        idx = [i for i, r in enumerate(base) if r.get("seed") in part]
        pick = lambda rs: [rs[i] for i in idx]  # noqa: E731
        b = pick(base)
        per_prior: dict[str, dict] = {}
        for (label, lam, w), r in rows.items():  # only point estimates choose: few resamples suffice
            per_prior.setdefault(label, {})[lam, w] = compare(b, pick(r), [COMPOSITE, "detection_rate"],
                                                              n_resamples=199, seed=cfg.seed)
        label, _, knobs = _choose_knobs(per_prior, cfg, windows)
        (lam, w), _ = knobs[label]
        groups["seeds " + ", ".join(map(str, part))] = {"prior": label, "lambda": float(lam), "window": float(w),
                                                         "seeds": list(part)}
    stable = all({k: g[k] for k in ("prior", "lambda", "window")} == chosen_d for g in groups.values())
    said = "; ".join(f"{n}: {g['prior']} λ={g['lambda']:g} ρ={g['window']:g}" for n, g in groups.items())
    if stable:
        return {"stable": True, "groups": groups, "chosen": chosen_d, "contenders": {},
                "why": "both validation seed sets, alone, make the same choice"}
    contenders = _contenders(base, rows, chosen, groups, cfg)
    how = "; ".join(f"{k}: {v['said']}" for k, v in contenders.items())
    why = (f"the validation seed sets, alone, choose differently ({said}): the choice rests on all validation clips "
           f"together and is not stable. Paired on all {len(base)} validation clips, against the choice: {how}")
    return {"stable": False, "groups": groups, "chosen": chosen_d, "contenders": contenders, "why": why}


def _contenders(base: Sequence[Mapping], rows: Mapping[tuple, Sequence[Mapping]], chosen: tuple, groups: Mapping,
                cfg: DemoConfig) -> dict:
    """How far apart the choice and each seed set's other choice are on all validation clips, paired: the other
    knob's per-clip composite physics error minus the choice's (both against the baseline, in units of the
    baseline's composite), with a 95 % bootstrap interval and a sign-flip p. An interval above 0 says the choice
    is detectably better on all clips, one that holds 0 that validation cannot tell the two apart."""
    def of(prior, lam, w):
        return next(r for k, r in rows.items() if (k[0], float(k[1]), float(k[2])) == (prior, float(lam), float(w)))

    others = {}
    for g in groups.values():
        key = (g["prior"], g["lambda"], g["window"])
        if key != (chosen[0], float(chosen[1]), float(chosen[2])):
            others[f"{key[0]} λ={key[1]:g} ρ={key[2]:g}"] = of(*key)
    # choose_paired's comparison of each challenger with the incumbent (here: the choice), clip by clip
    table = choose_paired(base, of(*chosen), others, n_resamples=cfg.n_resamples, seed=cfg.seed)["candidates"]
    out: dict[str, dict] = {}
    for name, c in table.items():
        (lo, hi), p = c["diff_ci"], c["p"]
        verdict = ("the choice is detectably better" if lo > 0 and p < 0.05 else
                   "the choice is detectably worse" if hi < 0 and p < 0.05 else "validation cannot tell them apart")
        out[name] = {"diff": c["diff"], "diff_ci": [lo, hi], "p": p, "n": c["n"], "verdict": verdict,
                     "said": f"{100 * c['diff']:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] of the baseline's "
                             f"composite (p = {p:.2g}): {verdict}"}
    return out


def sampling_settings(sel: dict, cfg: DemoConfig) -> dict:
    """The settings a selection validated, as a prior's ``sampling.json`` holds them: λ and ρ chosen on
    validation, and the steps and classifier-free guidance scale they were chosen under."""
    return {"motion_guidance_scale": float(sel["lambda"]), "motion_guidance_window": float(sel.get("window", cfg.window)),
            "num_inference_steps": int(cfg.steps), "guidance_scale": float(cfg.guidance_scale)}


def record_sampling_settings(folder: str | Path, sel: dict, cfg: DemoConfig) -> Path | None:
    """Write the selection's :func:`sampling_settings` into ``folder`` (a prior's) as ``sampling.json``, with
    what chose them, so ``lamo sample --prior FOLDER`` and ``pipe(..., motion_prior=...)`` use them.
    Returns the file (``None`` when this lamo cannot write prior settings)."""
    if write_sampling_settings is None:
        log.warning("this lamo cannot write a prior's sampling.json; the chosen knobs are in selection.json only")
        return None
    source = (f"lamo bench effect: {sel.get('lambda_why', 'chosen on validation prompts')}, on {sel['val_prompts']} "
              f"validation prompts × {len(sel['val_seeds'])} seeds")
    return write_sampling_settings(folder, sampling_settings(sel, cfg), source)


def apply_sampling_settings(sel: dict, prior_folder: str | Path, cfg: DemoConfig) -> dict:
    """The selection with λ and ρ from the prior's own ``sampling.json`` when it has one (else ``sel`` as is).
    Its steps and guidance scale must be this run's: λ validated under other ones is refused."""
    record = read_sampling_settings(prior_folder) if read_sampling_settings is not None else None
    if record is None:
        return sel
    s = record["settings"]
    made = {k: s[k] for k in ("num_inference_steps", "guidance_scale") if k in s}
    here = {"num_inference_steps": cfg.steps, "guidance_scale": cfg.guidance_scale}
    if any(float(v) != float(here[k]) for k, v in made.items()):
        raise InputError(f"{Path(prior_folder) / 'sampling.json'} validated λ under other sampler settings ({made}) "
                         f"than this run's ({ {k: here[k] for k in made} }); pass the same --steps / --guidance-scale, "
                         "or --prior '' --selection '' to choose λ here")
    return {**sel, "lambda": float(s.get("motion_guidance_scale", sel["lambda"])),
            "window": float(s.get("motion_guidance_window", sel.get("window", cfg.window))),
            "sampling_settings": record,
            "source": f"λ and ρ from {Path(prior_folder) / 'sampling.json'}, η from {sel['source']}"}
