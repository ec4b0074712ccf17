"""Markdown tables of an effect-benchmark results file (``lamo bench effect`` / ``lamo demo``).

    python benchmarks/effect_table.py benchmarks/results/effect_full_cpu.json

prints what the run measured — the test effects (relative change, 95 % interval, verdict) per
comparison and metric, the validation sweep that chose the knobs, and the run's provenance — so the
tables in ``benchmarks/README.md`` and the README are copied from the file, never typed. The ablation
scripts beside it (``prior_recipes.py``, ``guidance_ablations.py``, ``drift_ablations.py``) share its tables, plot,
size options and cell cache.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
from pathlib import Path

from lamo._io import write_text_atomic

MARK = {"improved": "✓", "worsened": "✗", "no detectable change": "·", "too few clips": "?"}


def cell(e: dict) -> str:
    if e["verdict"] == "too few clips" or e["rel"] is None or not math.isfinite(e["rel"]):
        return f"n = {e['n']}: too few"
    lo, hi = e["rel_ci"]
    return f"{100 * e['rel']:+.1f} % [{100 * lo:+.1f}, {100 * hi:+.1f}] {MARK[e['verdict']]}"


def effect_table(effects: dict, metrics: list[str]) -> list[str]:
    lines = ["| comparison | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for comp, per_metric in effects.items():
        lines.append(f"| {comp} | " + " | ".join(cell(per_metric[m]) for m in metrics) + " |")
    return lines


def sweep_table(validation: dict) -> list[str]:
    lines = ["| prior | λ | composite physics error | detection rate (difference) | n |", "|---|---|---|---|---|"]
    for prior, points in validation.items():
        for lam, eff in sorted(points.items(), key=lambda kv: float(kv[0])):
            c, d = eff["physics_error"], eff["detection_rate"]
            lines.append(f"| {prior} | {float(lam):g} | {100 * c['rel']:+.1f} % [{100 * c['rel_ci'][0]:+.1f}, "
                         f"{100 * c['rel_ci'][1]:+.1f}] | {d['diff']:+.3f} [{d['diff_ci'][0]:+.3f}, {d['diff_ci'][1]:+.3f}] "
                         f"| {c['n']} |")
    return lines


def pct(e: dict, key: str = "rel", k: float = 100.0, unit: str = " %", digits: int = 1) -> str:
    """``value [lo, hi]`` of one effect's ``key`` (``rel`` or ``diff``) and its interval, scaled by ``k``."""
    lo, hi = e[f"{key}_ci"]
    return f"{k * e[key]:+.{digits}f}{unit} [{k * lo:+.{digits}f}, {k * hi:+.{digits}f}]"


def contrast_lines(contrasts: dict, intro: str) -> list[str]:
    """The validation contrasts table (each ``{"what", "physics_error", "detection_rate"}``), after ``intro``."""
    out = ["", intro, "", "| contrast | what changes | composite physics error | smallest detectable | "
           "detection rate (difference) |", "|---|---|---|---|---|"]
    for comp, e in contrasts.items():
        c, d = e["physics_error"], e["detection_rate"]
        out.append(f"| {comp} | {e['what']} | {pct(c)} {MARK[c['verdict']]} | {100 * c['mde_rel']:.1f} % | "
                   f"{pct(d, 'diff', 1.0, '', 3)} {MARK[d['verdict']]} |")
    return out


def test_lines(res: dict) -> list[str]:
    """The held-out test's effect table and each comparison's composite with its smallest detectable effect."""
    metrics = list(next(iter(res["effects"].values())))
    out = ["", f"Test (held-out, {res['n_test_clips']} clips per variant): relative change vs control, 95 % BCa "
           "interval; ✓ improved, ✗ worsened, · no detectable change (Holm-corrected over the 8 metrics).", ""]
    out += effect_table(res["effects"], metrics)
    out += ["", "Composite physics error per test comparison, with the smallest effect the run could have detected:"]
    for comp, per in res["effects"].items():
        e = per["physics_error"]
        out.append(f"* {comp}: {100 * e['rel']:+.1f} % {MARK[e['verdict']]} (smallest detectable "
                   f"{100 * e['mde_rel']:.1f} %, p_holm {e['p_holm']:.3g})")
    return out


def plot_lambda_sweeps(res: dict, path, describe: dict, noun: str, figsize=(12, 3.9)):
    """The validation sweep per candidate (``res["validation"]``: name → λ → effects): composite physics error
    (relative change) and detection rate (difference) against the baseline at each λ, 95 % intervals; the λ
    the rule chose (``res["lambda"][name]``) filled, the others hollow. ``describe``: name → legend text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lams = sorted({float(x) for v in res["validation"].values() for x in v})
    n = len(res["validation"])
    fig, axes = plt.subplots(1, 2, figsize=figsize)
    for ax, (metric, key, k, label) in zip(axes, [("physics_error", "rel", 100, "composite physics error, change %"),
                                                  ("detection_rate", "diff", 1, "detection rate, difference")]):
        for i, (name, points) in enumerate(res["validation"].items()):
            first = True
            for j, lam in enumerate(lams):
                if str(lam) not in points:
                    continue
                e = points[str(lam)][metric]
                x, y = j + (i - (n - 1) / 2) * 0.8 / n, k * e[key]
                chosen = lam == float(res["lambda"][name])
                ax.errorbar([x], [y], yerr=[[y - k * e[key + "_ci"][0]], [k * e[key + "_ci"][1] - y]], fmt="o",
                            color=f"C{i}", mfc=f"C{i}" if chosen else "white", capsize=2, ms=5,
                            label=f"{name}: {describe[name]}" if first else None)
                first = False
        ax.axhline(0, color="#333", lw=0.8)
        ax.set_xticks(range(len(lams)), [f"λ = {lam:g}" for lam in lams])
        ax.set_title(label, fontsize=10)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(f"validation ({res['val_prompts']} prompts × {len(res['val_seeds'])} seeds): each {noun} vs baseline, "
                 f"95 % CI; filled = the λ the rule chose; best: {res['best']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _digest(obj) -> str:
    """A short, stable hash of a JSON-able description (what made a cached cell)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Cells:
    """Finished cells on disk (``OUT/cells/<label>.json``): the rows and seconds of one variant at one λ on
    one prompt set, with a key of everything that made them; a cell whose key differs is made again."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.reused: list[str] = []

    def path(self, label: str) -> Path:
        for a, b in (("λ", "lam"), ("ρ", "rho"), ("∝", "-prop-")):
            label = label.replace(a, b)
        return self.folder / (re.sub(r"[^A-Za-z0-9.=_-]+", "_", label) + ".json")  # validation_lam-prop-noise_lam=1

    def get(self, label: str, key: dict) -> dict | None:
        p = self.path(label)
        if not p.is_file():
            return None
        cell = json.loads(p.read_text())
        if cell.get("key") != key:
            return None
        self.reused.append(label)
        return cell

    def put(self, label: str, key: dict, rows: list[dict], seconds: float) -> dict:
        cell = {"label": label, "key": key, "rows": rows, "seconds": seconds}
        write_text_atomic(self.path(label), json.dumps(cell, default=float))  # whole or absent, also when killed mid-write
        return cell


def begin(cfg, out: Path) -> tuple[float, dict, Cells]:
    """What an ablation run starts with: torch's threads set from ``cfg.threads``, ``out`` made, and
    ``(start time, an empty timings dict, the cell cache in out/cells)``."""
    import time

    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    return time.time(), {}, Cells(out / "cells")


def add_size_args(p) -> None:
    """The effect benchmark's sizes as options of an ablation script (smaller ones for tests)."""
    p.add_argument("--world-overrides", default="{}", help="JSON, e.g. '{\"size\": 16, \"frames\": 8}'")
    p.add_argument("--prior-clips", type=int, default=512)
    p.add_argument("--prior-steps", type=int, default=500)
    p.add_argument("--prior-batch", type=int, default=32)
    p.add_argument("--val-prompts", type=int, default=32)
    p.add_argument("--test-prompts", type=int, default=128)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--n-resamples", type=int, default=4999)


def size_config(args) -> dict:
    """:class:`lamo.demo.run.DemoConfig` fields of :func:`add_size_args`' options (and the benchmark's seeds)."""
    return dict(world_overrides=json.loads(args.world_overrides), prior_clips=args.prior_clips,
                prior_steps=args.prior_steps, prior_batch=args.prior_batch, val_prompts=args.val_prompts,
                test_prompts=args.test_prompts, steps=args.steps, n_resamples=args.n_resamples,
                val_seeds=(100, 101), test_seeds=(0, 1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", help="results.json of `lamo bench effect` or `lamo demo`")
    args = p.parse_args()
    res = json.loads(open(args.results).read())
    metrics = list(next(iter(res["effects"].values())))
    sel = res["selection"]
    out = [f"Run: `{res.get('command', '?')}` at commit {res.get('commit', '?')}, {res['date']}, {res['machine']}, "
           f"torch {res['torch']}; {res['n_test_clips']} test clips per variant; "
           f"{res['timings']['total_s'] / 60:.1f} min end to end.", "",
           f"Knobs ({sel['source']}): prior {sel['prior']}, λ = {res['lambda']:g}, window ρ = {res.get('window', 0.8):g} "
           f"({sel.get('lambda_why', '')}); "
           f"peer η = {res['flowmo_eta']:g} ({sel.get('flowmo_why', '')}).", "",
           "Test (held-out prompts): relative change vs control, 95 % bootstrap interval; ✓ improved, ✗ worsened, "
           "· no detectable change (Holm-corrected paired permutation test).", ""]
    out += effect_table(res["effects"], metrics)
    if sel.get("validation"):
        out += ["", f"Validation ({sel['val_prompts']} prompts × {len(sel['val_seeds'])} seeds): the λ (and ρ) sweep that chose the knobs.", ""]
        out += sweep_table(sel["validation"])
    if sel.get("validation_flowmo"):
        out += ["", "Validation: the peer's step size.", ""]
        out += [line.replace("| prior | λ |", "| peer | η |") for line in sweep_table({"FlowMo": sel["validation_flowmo"]})]
    out += ["", "Headline: " + res["headline"]]
    print("\n".join(out))


if __name__ == "__main__":
    main()
