"""The effect benchmark's statistics: which metrics are compared (:data:`HEADLINE`, :data:`SECONDARY`,
:data:`READOUT_B`), paired effects per comparison (:func:`analyse`, on :func:`lamo.effect.compare`), the second
readout's (:func:`analyse_readout_b`: the same paired machinery, plus robust per-clip summaries), the headline
of both readouts (:func:`headline_both`), per-variant summaries, and :func:`reanalyse` of a finished results file."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..effect import COMPOSITE, FIDELITY, PHYSICS_PARTS, compare, fmt_change
from ..physics.metrics import aggregate
from ..physics.readout import paired_change
from ..physics.world import get_world_config
from ..report import plot_forest
from .config import _commit
from .variants import add_sharpness_error, add_size_fidelity

__all__ = ["HEADLINE", "SECONDARY", "TABLE", "READOUT_B", "ROBUST_B", "B_TABLE", "analyse", "analyse_readout_b",
           "robust_sentence", "headline_both", "reanalyse"]

#: The headline family of each comparison (Holm-corrected together): the composite, its parts, fidelity.
HEADLINE = [COMPOSITE, *PHYSICS_PARTS, *FIDELITY]
#: Reported with intervals too, Holm-corrected as a family of their own.
SECONDARY = ["restitution_error", "motion_smoothness", "temporal_flickering", "guide_loss"]

#: The absolute-value table: every compared metric and raw sharpness.
TABLE = [*HEADLINE[1:], "ghost_rate", "background_noise", "sharpness", *SECONDARY]

#: Readout B's family of each comparison (:mod:`lamo.physics.readout`; Holm-corrected together, apart from
#: readout A's): its ballistic residual, gravity error and largest unexplained velocity change, and size
#: fidelity against the ground truth's render of the same prompt (``b_size_error = |ln area ratio|``).
READOUT_B = ["b_ballistic_residual", "b_gravity_error", "b_unexplained_dv", "b_size_error"]
#: Readout B's physics statistics also summarised the robust way (:func:`lamo.physics.readout.paired_change`:
#: per-clip log-ratios, median change, share of clips improved, Wilcoxon p).
ROBUST_B = ["b_ballistic_residual", "b_gravity_error", "b_unexplained_dv"]
#: Readout B's absolute-value table.
B_TABLE = [*READOUT_B, "b_unexplained_dv_rms", "b_break_rate", "b_area_ratio"]


def _summary(rows: list[dict]) -> dict:
    """Per metric of :data:`TABLE`: mean and std over the clips where it is defined, and how many those
    are (:func:`lamo.physics.metrics.aggregate`); and how many clips could not be scored."""
    has_b = any("b_ballistic_residual" in r for r in rows)
    return {**aggregate(rows, TABLE + (B_TABLE if has_b else [])), "failed_clips": sum("error" in r for r in rows)}


def analyse(rows: dict[str, list[dict]], comparisons: list[tuple[str, str]], n_resamples: int = 4999,
            seed: int = 0) -> tuple[dict, dict]:
    """Paired effects of each ``(variant, control)`` in ``comparisons`` over the per-clip ``rows`` of each
    variant: the headline family and the secondary one, each Holm-corrected on its own."""
    effects, secondary = {}, {}
    for a, b in comparisons:
        key = f"{a} vs {b}"
        effects[key] = compare(rows[b], rows[a], HEADLINE, n_resamples=n_resamples, seed=seed)
        secondary[key] = compare(rows[b], rows[a], SECONDARY, n_resamples=n_resamples, seed=seed)
    return effects, secondary


def analyse_readout_b(rows: dict[str, list[dict]], comparisons: list[tuple[str, str]], n_resamples: int = 4999,
                      seed: int = 0) -> tuple[dict, dict]:
    """Readout B's side of each ``(variant, control)`` in ``comparisons``: its family :data:`READOUT_B` through the
    same paired machinery as readout A's (:func:`lamo.effect.compare`: intervals, Holm, verdicts), and the robust
    summaries of :data:`ROBUST_B` (:func:`lamo.physics.readout.paired_change`). Both empty when the rows carry
    no readout B statistics (a results file from before it)."""
    effects, robust = {}, {}
    if not comparisons or not any("b_ballistic_residual" in r for r in rows[comparisons[0][1]]):
        return effects, robust
    for a, b in comparisons:
        key = f"{a} vs {b}"
        effects[key] = compare(rows[b], rows[a], READOUT_B, n_resamples=n_resamples, seed=seed)
        robust[key] = {m: paired_change([r.get(m, float("nan")) for r in rows[b]],
                                        [r.get(m, float("nan")) for r in rows[a]], n_resamples=n_resamples, seed=seed)
                       for m in ROBUST_B}
    return effects, robust


def robust_sentence(metric: str, pc: dict) -> str:
    """One line of a :func:`lamo.physics.readout.paired_change` summary: ``ballistic residual −25.1 % [… ] median
    per clip, lower in 83 % of clips (Wilcoxon p = 0.001, n = 94 of 96; geometric mean −20.0 % [… ])``."""
    name = metric.removeprefix("b_").replace("_", " ")
    if not pc.get("n"):
        return f"{name}: no clip where both sides are defined"
    return (f"{name} {fmt_change(pc['median_change'], pc['median_change_ci'])} median per clip, lower in "
            f"{100 * pc['share_improved']:.0f} % of clips (Wilcoxon p = {pc['wilcoxon_p']:.2g}, "
            f"n = {pc['n']} of {pc['n'] + pc['n_dropped']}; geometric mean "
            f"{fmt_change(pc['mean_log_change'], pc['mean_log_change_ci'])})")


def headline_both(key: str, effects: dict, robust_b: dict) -> str:
    """The headline of one comparison in both readouts: readout A's composite (the project's tracker) and readout
    B's ballistic residual change (median per clip, share of clips lower), side by side."""
    e = effects[key][COMPOSITE]
    text = f"{key}: composite physics error {fmt_change(e.rel, e.rel_ci)}, {e.verdict} (readout A, the project's tracker)"
    pc = robust_b.get(key, {}).get("b_ballistic_residual")
    if pc:
        text += f"; {robust_sentence('b_ballistic_residual', pc)} (readout B)"
    return text


def reanalyse(results: str | Path, out: str | Path) -> dict:
    """Recompute a results file's statistics from its per-clip rows with the current metric set
    (:data:`HEADLINE`, :data:`SECONDARY`, ``sharpness_error``) — no sampling; writes ``out`` (JSON) and a
    forest plot beside it, records that it was re-analysed, and returns the new results."""
    res = json.loads(Path(results).read_text())
    rows = res["per_clip"]
    world = get_world_config(res["config"].get("world", "tiny"), **res["config"].get("world_overrides", {}))
    for r in rows.values():
        add_sharpness_error(r, rows["ground truth"])
        add_size_fidelity(r, rows["ground truth"], world)
    comparisons = [tuple(k.split(" vs ")) for k in res["effects"]]
    n_resamples, seed = res["config"].get("n_resamples", 4999), res["config"].get("seed", 0)
    effects, secondary = analyse(rows, comparisons, n_resamples, seed)
    effects_b, robust_b = analyse_readout_b(rows, comparisons, n_resamples, seed)
    mpg = next(k for k in effects if k.startswith("MPG λ="))
    res.update(effects={k: {m: e.to_dict() for m, e in v.items()} for k, v in effects.items()},
               secondary={k: {m: e.to_dict() for m, e in v.items()} for k, v in secondary.items()},
               summary={n: _summary(r) for n, r in rows.items()}, headline=effects[mpg][COMPOSITE].sentence())
    if effects_b:
        res.update(readout_b={"effects": {k: {m: e.to_dict() for m, e in v.items()} for k, v in effects_b.items()},
                              "robust": robust_b}, headline_both=headline_both(mpg, effects, robust_b))
    res.setdefault("reanalysed", []).append({"from": str(results), "commit": _commit(), "date": time.strftime("%Y-%m-%d"),
                                             "metrics": HEADLINE + SECONDARY + (READOUT_B if effects_b else [])})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=float))
    plot_forest(out.with_suffix(".png"), {k: {m: e[m] for m in HEADLINE} for k, e in effects.items()},
                title=f"held-out test: relative change vs control, 95 % CI (n = {res['n_test_clips']} clips)")
    return res
