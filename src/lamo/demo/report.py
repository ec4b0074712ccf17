"""The effect benchmark's report: ``index.html`` (headline, what ran, verdict table, forest plot and λ sweep,
metrics, side-by-side animations, wall times) and the table printed at the end of a run. The drawing
itself (plots, animations, the page) is :mod:`lamo.report`'s."""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..effect import BETTER, COMPOSITE, PHYSICS_PARTS, fmt_change
from ..report import fmt_mean_std, plot_forest, plot_sweep_effects, side_by_side, write_html
from .config import MDL, DemoConfig
from .stats import B_TABLE, HEADLINE, READOUT_B, ROBUST_B, TABLE, robust_sentence

__all__ = ["write_report", "print_table", "PAPER_FIGURES"]

#: What the paper reports, for context (docs/design.md §6; VideoPhy SA/PC, judged by a 7B model).
PAPER_FIGURES = [
    ["CogVideoX-2B", "60.5 / 25.6"], ["LaMo-2B (MDL + MPG)", "67.2 / 31.4"], ["VideoREPA-2B", "64.2 / 29.7"],
    ["CogVideoX-5B", "70.0 / 32.3"], ["LaMo-5B (MDL + MPG)", "73.0 / 41.0"],
    ["ablation 5B: MPG only", "68.9 / 38.4 (baseline 64.8 / 35.2)"],
]


#: The note under a verdict table with a † cell.
INTERVAL_ONLY_NOTE = ("† The interval excludes 0 but the paired test, Holm-corrected over the comparison's metrics, "
                      "does not reach p < 0.05: the interval is one metric's alone, the correction guards the whole "
                      "family against a chance finding, and a change is counted only when both agree — so it reads "
                      "as no detectable change (the comparison's section below gives its p-values).")


def _cell(e) -> str:
    """``-12.3 % [-20.1 … -4.0] ✓`` for a table (✓ improved, ✗ worsened, · no detectable change, · † no
    detectable change although the interval excludes 0: :data:`INTERVAL_ONLY_NOTE`)."""
    if e.verdict == "too few clips" or not math.isfinite(e.rel):
        return f"n = {e.n}: too few"
    mark = {"improved": " ✓", "worsened": " ✗"}.get(e.verdict, " · †" if e.interval_only else " ·")
    return f"{fmt_change(e.rel, e.rel_ci)}{mark}"


def _robust_cell(pc: dict | None) -> str:
    """``-25.1 % [-31.0 … -18.2] · 83 % · p 0.0001`` of a robust summary (:func:`lamo.physics.readout.paired_change`)."""
    if not pc or not pc.get("n"):
        return "–"
    return (f"{fmt_change(pc['median_change'], pc['median_change_ci'])} · {100 * pc['share_improved']:.0f} % · "
            f"p {pc['wilcoxon_p']:.2g}")


def _abs_cell(s: dict) -> str:
    return f"{fmt_mean_std(s['mean'], s['std'])} (n={s['n']})" if s["n"] else "–"


def _drift_recipe(folder: Path) -> str:
    """`` (mode, τ, λ_drift)`` of a fine-tune whose folder records its training (``lamo_finetune.json``), else ``""``."""
    record = Path(folder) / "lamo_finetune.json"
    if not record.is_file():
        return ""
    train = json.loads(record.read_text()).get("train", {})
    if not {"drift_mode", "drift_tau", "drift_weight"} <= set(train):
        return ""
    return f" ({train['drift_mode']}, τ = {train['drift_tau']}, λ_drift = {train['drift_weight']:g})"


def _chosen_series(sel: dict, rho: float) -> str | None:
    """The validation series of the chosen prior and window (named ``"τ=1"`` or ``"τ=1 ρ=0.5"``)."""
    series = sel.get("validation", {})
    for name in (f"{sel.get('prior')} ρ={rho:g}", sel.get("prior")):
        if name in series:
            return name
    return None


def _median_cell(pc: dict | None) -> str:
    """``-25.1 % · 83 % lower`` of a robust summary (median per-clip change, share of clips lower)."""
    if not pc or not pc.get("n"):
        return "–"
    return f"{fmt_change(pc['median_change'])} · {100 * pc['share_improved']:.0f} % lower"


def print_table(effects: dict, n: int, effects_b: dict | None = None, robust_b: dict | None = None) -> None:
    """The verdict table of a run on stdout: the composite, its parts and two fidelity metrics per comparison
    (readout A, the project's tracker) and, given readout B's (:func:`lamo.demo.stats.analyse_readout_b`), its
    ballistic residual beside them: the mean change with its verdict, and the median per-clip change with the
    share of clips lower; then each comparison's headline in both readouts."""
    effects_b, robust_b = effects_b or {}, robust_b or {}
    cols = [COMPOSITE, *PHYSICS_PARTS, "detection_rate", "permanence_error"]
    extra = ["B: ballistic_residual", "B: median · share lower"] if effects_b else []
    width = max(len(k) for k in effects) + 2
    print(f"\nrelative change vs control, 95 % CI over {n} clips (✓ improved, ✗ worsened, · no detectable change); "
          "A: the project's tracker, B: the second readout")
    print("comparison".ljust(width) + "".join(c[:26].rjust(28) for c in cols + extra))
    for key, e in effects.items():
        cells = [_cell(e[c]) for c in cols]
        if effects_b:
            cells += [_cell(effects_b[key]["b_ballistic_residual"]), _median_cell(robust_b.get(key, {}).get("b_ballistic_residual"))]
        print(key.ljust(width) + "".join(c.rjust(28) for c in cells))
    print()
    for key, e in effects.items():
        print(f"  [{key}] {e[COMPOSITE].sentence()}")
        pc = robust_b.get(key, {}).get("b_ballistic_residual")
        if pc:
            print(f"  [{key}] readout B: {robust_sentence('b_ballistic_residual', pc)}")


def write_report(outdir: Path, cfg: DemoConfig, *, meta: dict, priors: dict, prior_stats: dict, sel: dict, lam: float,
                 rho: float, eta: float, test: list, frames: dict, variants: dict, effects: dict, secondary: dict,
                 summary: dict, sample_s: dict, sample_cpu_s: dict, timings: dict, tuned: dict, world, headline: str,
                 effects_b: dict | None = None, robust_b: dict | None = None, headline_both: str | None = None) -> Path:
    """Render ``outdir/index.html`` and its ``media/`` (forest plot, λ sweep, side-by-side GIFs) → the page.

    ``frames``: variant → ``(S, P, T, H, W, 3)`` test clips; ``test``: the held-out clips (ground truth);
    ``effects`` / ``secondary``: :func:`lamo.demo.stats.analyse`'s; ``summary``: per-variant metric summaries;
    ``sample_s`` / ``sample_cpu_s``: sampling wall / CPU time per variant; ``headline``: the sentence of MPG vs baseline's composite;
    ``effects_b`` / ``robust_b``: readout B's (:func:`lamo.demo.stats.analyse_readout_b`), ``headline_both``: MPG vs
    baseline in both readouts (:func:`lamo.demo.stats.headline_both`)."""
    effects_b, robust_b = effects_b or {}, robust_b or {}
    names = ["ground truth", *variants]
    n_test = cfg.test_prompts * len(cfg.test_seeds)
    media = outdir / "media"
    images = [plot_forest(media / "forest.png", {k: {m: e[m] for m in HEADLINE} for k, e in effects.items()},
                          title=f"held-out test: relative change vs control, 95 % CI (n = {n_test} clips)").relative_to(outdir)]
    if sel.get("validation"):
        images.append(plot_sweep_effects(media / "sweep.png", sel["validation"],
                                         title=f"validation ({sel['val_prompts']} prompts × {len(sel['val_seeds'])} seeds): "
                                               "effect of λ, 95 % CI", chosen=lam,
                                         chosen_series=_chosen_series(sel, rho)).relative_to(outdir))
    anims = []
    for i, c in enumerate(test[:cfg.gifs]):
        clips_i = [c.frames] + [frames[n][0, i] for n in variants]
        gif = side_by_side(media / f"prompt_{i}.gif", clips_i, names, fps=world.fps, scale=4).relative_to(outdir)
        anims.append({"src": gif, "caption": f"prompt {i}: “{c.caption}”"})
    effect_table = [[key] + [_cell(e[m]) for m in HEADLINE] for key, e in effects.items()]
    abs_rows = [[m, BETTER.get(m, "")] + [_abs_cell(summary[n][m]) for n in names] for m in TABLE]
    abs_rows += [[m, BETTER.get(m, "")] + [_abs_cell(summary[n][m]) if m in summary[n] else "–" for n in names]
                 for m in B_TABLE if any(m in summary[n] for n in names)]
    abs_rows.append(["failed clips", ""] + [str(summary[n]["failed_clips"]) for n in names])
    b_table = [[key] + [_cell(e[m]) for m in READOUT_B]
               + [_robust_cell(robust_b.get(key, {}).get(m)) for m in ROBUST_B] for key, e in effects_b.items()]
    prior_line = "; ".join(f"{k}: validation cosine {s.get('val_cosine', math.nan):.3f}" for k, s in prior_stats.items())
    return write_html(outdir / "index.html", "LaMo effect benchmark — physics world", [
        {"title": "Headline", "text": [
            f"MPG vs baseline, composite physics error (mean of ballistic residual, gravity error and jump rate, "
            f"each relative to the baseline's mean), readout A (the project's tracker): {headline}",
            *([f"Both readouts — {headline_both}"] if headline_both else [])]},
        {"title": "What ran", "text": [
            f"Backbone: the shipped toy CogVideoX ({meta.get('step', meta['train'].get('steps'))} training steps). "
            f"Motion prior{'s' if len(priors) > 1 else ''} ({prior_line}); used: {sel['prior']}.",
            f"Knobs ({sel['source']}): λ = {lam:g}, window ρ = {rho:g} ({sel.get('lambda_why', '')}); peer step size η = {eta:g} "
            f"({sel.get('flowmo_why', '')}) — chosen on {sel.get('val_prompts')} validation prompts × "
            f"{len(sel.get('val_seeds', []))} seeds, never on the test prompts."
            + (f" Stability: {sel['stability']['why']}." if (sel.get("stability") or {}).get("why") else ""),
            f"Test: {cfg.test_prompts} held-out prompts × {len(cfg.test_seeds)} seeds = {n_test} clips per variant, "
            f"the same initial noise per (prompt, seed) in every variant; {cfg.steps} sampling steps, classifier-free guidance scale "
            f"{cfg.guidance_scale}.",
            "MDL: the backbone's transformer fine-tuned with the Motion Drift Loss"
            f"{_drift_recipe(tuned[MDL])}, compared with the same fine-tune without it (same data, steps and seed), "
            "so extra training is not mistaken for MDL."
            if MDL in variants else "MDL variants skipped: no fine-tuned transformers were found."]},
        {"title": "How to read the verdicts", "text": [
            "Each cell: relative change of the variant against its control (the same clips), 95 % bootstrap interval "
            "over clips; ✓ improved, ✗ worsened (Holm-corrected paired permutation test p < 0.05 and the interval "
            "excludes 0), · no detectable change. The composite physics error is the headline; fidelity "
            "(detection, permanence, radius stability, distance to the ground truth's sharpness) is shown beside "
            "it, never folded in."],
         "table": {"header": ["comparison", *HEADLINE], "rows": effect_table},
         "notes": [INTERVAL_ONLY_NOTE] if any("†" in c for r in effect_table for c in r) else []},
        *([{"title": "Second readout", "text": [
            "Readout B (lamo.physics.readout) shares neither the localisation nor the thresholds of the project's tracker "
            "(readout A): soft colour mattes, template-matched sub-pixel centres, piecewise constant-acceleration fits "
            "whose breaks are chosen by BIC. Its family — ballistic residual, gravity error, largest unexplained velocity "
            "change, and size error |ln(area / the ground truth's area of the same prompt)| (fidelity: 0 = the world's "
            "size) — goes through the same paired statistics as readout A's (mean change, 95 % interval, Holm over "
            "the family, verdict). The last columns summarise per-clip log-ratios robustly: the median change with "
            "its bootstrap interval, the share of clips lower, and the Wilcoxon signed-rank p.",
            *([f"Both readouts: {headline_both}"] if headline_both else [])],
            "table": {"header": ["comparison", *(f"B: {m[2:]}" for m in READOUT_B),
                                 *(f"B: {m[2:]} median per clip · share lower · Wilcoxon p" for m in ROBUST_B)],
                      "rows": b_table}}] if b_table else []),
        {"title": "Forest plot and λ sweep", "images": images},
        *({"title": key, "text": [e.sentence() for e in [*effects[key].values(), *secondary[key].values()]]
                                  + [f"readout B — {e.sentence()}" for e in effects_b.get(key, {}).values()]
                                  + [f"readout B, robust — {robust_sentence(m, pc)}"
                                     for m, pc in robust_b.get(key, {}).items()]}
          for key in effects),
        {"title": "Metrics (mean ± std over clips; n = clips where the metric is defined)",
         "table": {"header": ["metric", "better", *names], "rows": abs_rows}},
        {"title": f"Side by side (seed {cfg.test_seeds[0]}): ground truth and every variant", "images": anims},
        {"title": "The paper's own figures, for context (VideoPhy SA / PC, not comparable with this world)",
         "table": {"header": ["model", "SA / PC"], "rows": PAPER_FIGURES}},
        {"title": "Sampling time per variant (s, all test clips, this machine)",
         "text": ["Timed after a warm-up call (one short MPG sampling of the first prompt, not counted), so no variant "
                  "pays for the first call's one-off costs; sampling only (a fine-tune's loading is not counted). "
                  "Wall time moves with whatever else the machine runs; CPU time (this process, all threads) much less: "
                  "compare variants by it on a shared machine."],
         "table": {"header": ["variant", "wall s", "× baseline", "CPU s", "× baseline"],
                   "rows": [[n, f"{v:.1f}", f"{v / sample_s['baseline']:.2f}", f"{sample_cpu_s[n]:.1f}",
                             f"{sample_cpu_s[n] / sample_cpu_s['baseline']:.2f}"] for n, v in sample_s.items()]}},
        {"title": "Timings (s)", "json": timings},
    ])
