"""The effect benchmark's statistics: which metrics are compared (:data:`HEADLINE`, :data:`SECONDARY`), paired
effects per comparison (:func:`analyse`, on :func:`lamo.effect.compare`), per-variant summaries, and
:func:`reanalyse` of a finished results file."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..effect import COMPOSITE, FIDELITY, PHYSICS_PARTS, compare
from ..physics.metrics import aggregate
from ..report import plot_forest
from .config import _commit
from .variants import add_sharpness_error

__all__ = ["HEADLINE", "SECONDARY", "TABLE", "analyse", "reanalyse"]

#: The headline family of each comparison (Holm-corrected together): the composite, its parts, fidelity.
HEADLINE = [COMPOSITE, *PHYSICS_PARTS, *FIDELITY]
#: Reported with intervals too, Holm-corrected as a family of their own.
SECONDARY = ["restitution_error", "motion_smoothness", "temporal_flickering", "guide_loss"]

#: The absolute-value table: every compared metric and raw sharpness.
TABLE = [*HEADLINE[1:], "ghost_rate", "background_noise", "sharpness", *SECONDARY]


def _summary(rows: list[dict]) -> dict:
    """Per metric of :data:`TABLE`: mean and std over the clips where it is defined, and how many those
    are (:func:`lamo.physics.metrics.aggregate`); and how many clips could not be scored."""
    return {**aggregate(rows, TABLE), "failed_clips": sum("error" in r for r in rows)}


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


def reanalyse(results: str | Path, out: str | Path) -> dict:
    """Recompute a results file's statistics from its per-clip rows with the current metric set
    (:data:`HEADLINE`, :data:`SECONDARY`, ``sharpness_error``) — no sampling; writes ``out`` (JSON) and a
    forest plot beside it, records that it was re-analysed, and returns the new results."""
    res = json.loads(Path(results).read_text())
    rows = res["per_clip"]
    for r in rows.values():
        add_sharpness_error(r, rows["ground truth"])
    comparisons = [tuple(k.split(" vs ")) for k in res["effects"]]
    effects, secondary = analyse(rows, comparisons, res["config"].get("n_resamples", 4999), res["config"].get("seed", 0))
    mpg = next(k for k in effects if k.startswith("MPG λ="))
    res.update(effects={k: {m: e.to_dict() for m, e in v.items()} for k, v in effects.items()},
               secondary={k: {m: e.to_dict() for m, e in v.items()} for k, v in secondary.items()},
               summary={n: _summary(r) for n, r in rows.items()}, headline=effects[mpg][COMPOSITE].sentence())
    res.setdefault("reanalysed", []).append({"from": str(results), "commit": _commit(), "date": time.strftime("%Y-%m-%d"),
                                             "metrics": HEADLINE + SECONDARY})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=float))
    plot_forest(out.with_suffix(".png"), {k: {m: e[m] for m in HEADLINE} for k, e in effects.items()},
                title=f"held-out test: relative change vs control, 95 % CI (n = {res['n_test_clips']} clips)")
    return res
