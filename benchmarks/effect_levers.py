"""Levers on MPG's effect, chosen by a validation rule that compares candidates paired, on two seed sets.

Which changes make Motion Prior Guidance's effect on the shipped demo backbone stronger, and is the prior the
bottleneck? Every candidate is a *cell* — a motion prior, λ, the window ρ and the number of guidance
corrections per denoising step — sampled at the shipped setting (25 steps, CFG 2) from the same initial noise
per (prompt, seed) as the effect benchmark (:func:`lamo.demo.variants._sample`):

* **priors** (:data:`PRIORS`): the shipped one (512 clips of world seed 2, 500 steps, ``small``, τ = 1), and
  priors trained here by :func:`lamo.demo.priors.train_prior` with more data (clips of world seed 2 encoded by
  the backbone's own VAE and text encoder), more steps, the ``Δz_{i−1}`` input (the release architecture at
  small size, with and without it), a larger preset;
* **λ** re-chosen for each prior (its own cells), ρ = 0.5 (the shipped window);
* **K guidance corrections per step** (:mod:`lamo.repeated_guidance`: K gradient steps of λ/K each).

Validation: 64 prompts of world seed 4 (:func:`lamo.demo.variants.validation_prompts`) × seeds 100–103 =
256 clips per cell, two disjoint seed sets of 128 ({100, 101} and {102, 103}). The choice is the project's rule
:func:`lamo.demo.selection.choose_stably`: a challenger replaces the incumbent (the shipped prior at its λ 3,
ρ 0.5) only when its composite physics error is detectably below the incumbent's *paired on the same clips*
(95 % bootstrap interval below 0 and Holm-corrected sign-flip p < 0.05 over the eligible challengers; detection
within 0.01 of the baseline's), and only when both seed sets make the same choice as all 256 clips together.

Each prior's quality is measured as ``lamo eval prior --world`` does (:func:`lamo.prior_quality.world_prior_quality`,
256 clips of world seed 5: validation cosine and win rates against counterfactuals), and drawn against its best
validation effect.

Test, read once after the choice: 128 held-out prompts of world seed 3 × seeds 0, 1 = 256 clips each for the
baseline, the incumbent and the best challenger on validation (whether the rule adopted it or not), scored by
both readouts (:func:`lamo.demo.variants._score` with ``second_readout=True``; size fidelity against the
ground-truth renders) and compared by :func:`lamo.demo.stats.analyse` / :func:`~lamo.demo.stats.analyse_readout_b`.

Every cell's rows are cached in ``--out/cells`` and every prior in ``--out/prior-<name>``, so a killed run
resumes; ``--budget-min`` skips the cells and priors that would not fit before the test (recorded as dropped)::

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/effect_levers.py --out runs/effect-levers \\
        --results benchmarks/results/effect_levers_cpu.json --threads 1 --budget-min 75

``--table FILE`` prints the tables of a finished results file again.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

from lamo._io import write_text_atomic

ROOT = Path(__file__).resolve().parent.parent

#: The priors: ``None`` is the shipped one; otherwise how it is trained (:func:`lamo.demo.priors.train_prior`).
PRIORS: dict[str, dict | None] = {
    "shipped": None,
    "data4096": dict(clips=4096, steps=2000, preset="small", options=dict(tau=1),
                     what="8× the data and 4× the steps (4096 clips, 2000 steps)"),
    "so4096": dict(clips=4096, steps=2000, preset="small",
                   options=dict(tau=1, arch="release", hidden_channels=64, num_blocks=4, second_order=True),
                   what="release arch (small) + Δz_{i−1} input, 4096 clips, 2000 steps"),
    "long512": dict(clips=512, steps=2000, preset="small", options=dict(tau=1),
                    what="the shipped data, 4× the steps (512 clips, 2000 steps)"),
    "rel4096": dict(clips=4096, steps=2000, preset="small",
                    options=dict(tau=1, arch="release", hidden_channels=64, num_blocks=4),
                    what="release arch (small) without Δz_{i−1}, 4096 clips, 2000 steps"),
}


def prior_what(name: str) -> str:
    spec = PRIORS[name]
    return "the shipped prior (512 clips, 500 steps, small)" if spec is None else spec["what"]


def ensure_prior(name: str, spec: dict | None, cfg, pipe, preset, world, out: Path, cache: dict, wait_s: float = 0.0,
                 scale: float = 1.0):
    """The prior ``name``: the shipped one, a trained one from ``out/prior-<name>``, or trained now (on the first
    ``spec["clips"]`` clips of world seed 2, encoded once per run and cached in ``cache``) → ``(prior, stats)``.
    ``wait_s``: wait this long for another process (training the same priors into ``out``) to finish it first.
    ``scale``: multiply the clips and steps (small runs for tests)."""
    from lamo.demo.priors import encode_world_clips, train_prior
    from lamo.prior import MotionPrior

    folder = Path(cfg.prior) if spec is None else out / f"prior-{name}"
    deadline = time.time() + wait_s
    while spec is not None and time.time() < deadline and not (folder / "training_stats.json").is_file():
        time.sleep(10)
    if (folder / "training_stats.json").is_file() and (folder / "diffusion_pytorch_model.safetensors").is_file():
        stats = json.loads((folder / "training_stats.json").read_text())
        return MotionPrior.from_pretrained(folder).float().eval(), stats
    if spec is None:
        raise FileNotFoundError(f"{folder} holds no prior")
    n = max(4, round(spec["clips"] * scale))
    if cache.get("n", 0) < n:
        cache["latents"], cache["cond"] = encode_world_clips(pipe, preset, world, n)
        cache["n"] = n
    pcfg = replace(cfg, prior_preset=spec["preset"], prior_steps=max(1, round(spec["steps"] * scale)), prior_batch=min(cfg.prior_batch, n))
    prior, stats = train_prior(pcfg, cache["latents"][:n], cache["cond"][:n], folder, spec["options"],
                               {"lever": name, "what": spec["what"], "options": spec["options"]})
    return prior.float().eval(), stats


#: The validation cells in the order they run (cheapest and most informative first): name → (prior, λ, ρ, K).
#: ``baseline`` (λ = 0) is every comparison's control; ``incumbent`` is today's shipped choice.
CELLS: dict[str, tuple[str, float, float, int]] = {
    "baseline": ("shipped", 0.0, 0.5, 1),
    "incumbent": ("shipped", 3.0, 0.5, 1),
    "shipped λ=10": ("shipped", 10.0, 0.5, 1),
    "data4096 λ=3": ("data4096", 3.0, 0.5, 1),
    "data4096 λ=10": ("data4096", 10.0, 0.5, 1),
    "shipped λ=10 K=3": ("shipped", 10.0, 0.5, 3),
    "so4096 λ=3": ("so4096", 3.0, 0.5, 1),
    "so4096 λ=10": ("so4096", 10.0, 0.5, 1),
    "shipped λ=3 K=3": ("shipped", 3.0, 0.5, 3),
    "long512 λ=3": ("long512", 3.0, 0.5, 1),
    "long512 λ=10": ("long512", 10.0, 0.5, 1),
    "rel4096 λ=3": ("rel4096", 3.0, 0.5, 1),
    "rel4096 λ=10": ("rel4096", 10.0, 0.5, 1),
    "shipped λ=1 ρ=0.8": ("shipped", 1.0, 0.8, 1),  # one validation seed's choice in the 128-clip full benchmark
}
VAL_PROMPTS, VAL_SEEDS = 64, (100, 101, 102, 103)


def seed_sets(seeds) -> dict[str, tuple[int, ...]]:
    """The two disjoint validation seed sets: the first half of ``seeds`` and the second."""
    seeds = tuple(seeds)
    half = len(seeds) // 2
    return {"seeds " + ", ".join(map(str, part)): part for part in (seeds[:half], seeds[half:])}


def describe_cell(name: str) -> str:
    prior, lam, rho, k = CELLS[name]
    if lam == 0:
        return "no guidance"
    return f"{prior} prior, λ = {lam:g}, ρ = {rho:g}" + (f", {k} corrections per step" if k > 1 else "")


def sample_cell(pipe, prompts, seeds, cfg, preset, world, prior, lam: float, rho: float, k: int, label: str,
                second_readout: bool = False) -> list[dict]:
    """One cell's rows: every (seed, prompt) clip sampled with the effect benchmark's noise and scored."""
    from lamo.demo.variants import _sample, _score
    from lamo.repeated_guidance import repeated_corrections

    with repeated_corrections(k):
        frames, guide = _sample(pipe, prompts, seeds, cfg, preset, prior, lam, desc=label, window=rho)
    rows = _score(frames, world, prompts, seeds, second_readout=second_readout)
    if guide is not None:
        for r, g in zip(rows, guide):
            r["guide_loss"] = float(g)
    return rows, frames


def medians_of(rows: dict[str, list[dict]]) -> dict:
    """Per variant, the median over clips of the headline physics metrics of both readouts (NaN where no clip
    defines one)."""
    import warnings

    import numpy as np

    keys = ("ballistic_residual", "gravity_error", "jump_rate", "detection_rate", "b_ballistic_residual",
            "b_gravity_error", "b_unexplained_dv", "b_area_ratio")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {n: {m: float(np.nanmedian([r.get(m, np.nan) for r in rs])) for m in keys} for n, rs in rows.items()}


def _cached(path: Path, make):
    if path.is_file():
        return json.loads(path.read_text())
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(value, default=float))  # whole or absent, also when killed mid-write
    return value


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def run(args) -> dict:
    import numpy as np
    import torch

    from lamo.demo.run import DemoConfig, _load_pipeline, provenance
    from lamo.demo.selection import choose_stably
    from lamo.demo.stats import analyse, analyse_readout_b, headline_both
    from lamo.demo.variants import add_ground_truth, held_out_clips, validation_prompts
    from lamo.effect import COMPOSITE, compare
    from lamo.prior_quality import world_prior_quality

    t0 = time.time()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = DemoConfig(threads=args.threads, chunk=args.chunk, n_resamples=args.n_resamples,
                     world_overrides=json.loads(args.world_overrides), steps=args.steps)
    if args.backbone:
        cfg = replace(cfg, backbone=args.backbone)
    if args.prior:
        cfg = replace(cfg, prior=args.prior)
    pipe, meta, preset, world = _load_pipeline(cfg)
    budget = 60 * args.budget_min if args.budget_min else math.inf
    reserve = args.test_reserve_min * 60  # kept for the test and the statistics

    def left() -> float:
        return budget - (time.time() - t0)

    cells = [c for c in CELLS if c in args.cells or not args.cells or c in ("baseline", "incumbent")]
    priors, prior_stats, quality, dropped, timings = {}, {}, {}, [], {}
    encode_cache: dict = {}
    val_prompts = validation_prompts(world, args.val_prompts)
    val_rows: dict[str, list[dict]] = {}
    cell_s: dict[str, float] = {}
    for name in cells:
        pname, lam, rho, k = CELLS[name]
        path = out / "cells" / f"val_{_slug(name)}.json"
        if not path.is_file():
            need = (np.median(list(cell_s.values())) if cell_s else 150.0) * (1.6 if k > 1 else 1.0)
            if (pname not in priors and PRIORS[pname] is not None and not args.wait_priors_min
                    and not (out / f"prior-{pname}" / "training_stats.json").is_file()):
                spec = PRIORS[pname]
                need += 0.25 * spec["steps"] * (4 if spec["preset"] == "medium" else 1)
            if need > left() - reserve:
                dropped.append(f"{name}: projected {need / 60:.1f} min, {max(0, left() - reserve) / 60:.1f} min left before the test")
                print(f"[{(time.time() - t0) / 60:5.1f} min] dropped {dropped[-1]}", flush=True)
                continue
        if pname not in priors:
            t = time.time()
            priors[pname], prior_stats[pname] = ensure_prior(pname, PRIORS[pname], cfg, pipe, preset, world, out,
                                                             encode_cache, 60 * args.wait_priors_min, args.prior_scale)
            timings[f"prior_{pname}_s"] = time.time() - t
        t = time.time()
        val_rows[name] = _cached(path, lambda: sample_cell(pipe, val_prompts, tuple(args.val_seeds), cfg, preset, world, priors[pname],
                                                           lam, rho, k, f"validation: {name}")[0])
        cell_s[name] = time.time() - t
        if cell_s[name] < 5:  # read from the cache: not a timing
            cell_s.pop(name)
        e = compare(val_rows["baseline"], val_rows[name], [COMPOSITE, "detection_rate"], n_resamples=args.n_resamples)
        print(f"[{(time.time() - t0) / 60:5.1f} min] {name}: composite {100 * e[COMPOSITE].rel:+.1f} % "
              f"[{100 * e[COMPOSITE].rel_ci[0]:+.1f}, {100 * e[COMPOSITE].rel_ci[1]:+.1f}], detection "
              f"{e['detection_rate'].diff:+.4f}", flush=True)

    # the priors' quality, as `lamo eval prior --world` measures it
    for pname, prior in priors.items():
        def measure():
            q = world_prior_quality(pipe, prior, world, n=args.quality_clips)
            return q.to_dict()
        t = time.time()
        qpath = out / "quality" / f"{pname}.json"
        quality[pname] = _cached(qpath, measure)
        timings[f"quality_{pname}_s"] = time.time() - t

    # the choice: paired against the incumbent, on all 256 clips and on each seed set of 128
    seeds_of = [r["seed"] for r in val_rows["baseline"]]
    groups = {g: [i for i, s in enumerate(seeds_of) if s in ss] for g, ss in seed_sets(args.val_seeds).items()}
    challengers = {k: v for k, v in val_rows.items() if k not in ("baseline", "incumbent")}
    choice = choose_stably(val_rows["baseline"], val_rows["incumbent"], challengers, groups,
                           tolerance=cfg.detection_tolerance, n_resamples=args.n_resamples, seed=cfg.seed)
    validation = {}
    for name, rows in val_rows.items():
        if name == "baseline":
            continue
        per = {"all": rows, **{g: [rows[i] for i in idx] for g, idx in groups.items()}}
        validation[name] = {}
        for part, rs in per.items():
            base = val_rows["baseline"] if part == "all" else [val_rows["baseline"][i] for i in groups[part]]
            e = compare(base, rs, [COMPOSITE, "detection_rate"], n_resamples=args.n_resamples, seed=cfg.seed)
            validation[name][part] = {m: {"rel": v.rel, "rel_ci": list(v.rel_ci), "diff": v.diff,
                                          "diff_ci": list(v.diff_ci), "n": v.n, "p_holm": v.p_holm, "verdict": v.verdict}
                                      for m, v in e.items()}
    eligible = {k: v for k, v in choice["pooled"]["candidates"].items() if v["eligible"]}
    best = min(eligible, key=lambda k: eligible[k]["diff"]) if eligible else None
    print(f"choice: {choice['choice']} — {choice['why']}", flush=True)
    print(f"best challenger on validation: {best}", flush=True)

    # the test, read once
    test_rows, test = {}, {}
    tested = ["baseline", "incumbent"] + ([best] if best else [])
    if not args.no_test:
        t = time.time()
        clips = held_out_clips(world, args.test_prompts)
        prompts = [c.caption for c in clips]
        for name in tested:
            pname, lam, rho, k = CELLS[name]
            path = out / "cells" / f"test_{args.test_prompts}_{_slug(name)}.json"
            test_rows[name] = _cached(path, lambda: sample_cell(pipe, prompts, tuple(args.test_seeds), cfg, preset, world,
                                                                priors[pname], lam, rho, k, f"test: {name}",
                                                                second_readout=True)[0])
            print(f"[{(time.time() - t0) / 60:5.1f} min] test: {name} done", flush=True)
        add_ground_truth(test_rows, clips, world)
        comparisons = [("incumbent", "baseline")]
        if best:
            comparisons = [(best, "baseline"), ("incumbent", "baseline"), (best, "incumbent")]
        effects, secondary = analyse(test_rows, comparisons, args.n_resamples, cfg.seed)
        effects_b, robust_b = analyse_readout_b(test_rows, comparisons, args.n_resamples, cfg.seed)
        test = {"comparisons": [f"{a} vs {b}" for a, b in comparisons],
                "effects": {k: {m: e.to_dict() for m, e in v.items()} for k, v in effects.items()},
                "secondary": {k: {m: e.to_dict() for m, e in v.items()} for k, v in secondary.items()},
                "readout_b": {"effects": {k: {m: e.to_dict() for m, e in v.items()} for k, v in effects_b.items()},
                              "robust": robust_b},
                "headline_both": {k: headline_both(k, effects, robust_b) for k in effects},
                "medians": medians_of(test_rows),
                "prompts": prompts, "seeds": list(args.test_seeds), "n_clips": len(test_rows["baseline"])}
        timings["test_s"] = time.time() - t
    timings["total_s"] = time.time() - t0
    res = {
        "what": "levers on MPG's effect, chosen by the paired, stable validation rule (benchmarks/effect_levers.py)",
        **provenance(args.command), "backbone": meta, "steps": cfg.steps, "guidance_scale": cfg.guidance_scale,
        "cells": {k: {"prior": CELLS[k][0], "lambda": CELLS[k][1], "window": CELLS[k][2], "corrections": CELLS[k][3],
                      "describe": describe_cell(k)} for k in val_rows},
        "priors": {k: {"what": prior_what(k), "training": prior_stats[k], "quality": quality.get(k)} for k in priors},
        "val_prompts": args.val_prompts, "val_seeds": list(args.val_seeds),
        "seed_sets": {k: list(v) for k, v in seed_sets(args.val_seeds).items()},
        "validation": validation, "choice": choice, "best_on_validation": best, "tested": tested, "test": test,
        "dropped": dropped, "timings": timings, "cell_s": cell_s,
        "per_clip_validation": val_rows, "per_clip_test": test_rows,
    }
    return res


PHYSICS_CF = ("gravity_flipped", "ball_hidden", "teleported", "restitution")


def quality_summary(q: dict | None) -> dict:
    """A prior's quality in three numbers: validation cosine, mean win rate over the physics counterfactuals and
    over all of them."""
    if not q:
        return {}
    rates = {r["name"]: r["win_rate"] for r in q["rows"]}
    phys = [v for k, v in rates.items() if k in PHYSICS_CF and math.isfinite(v)]
    allr = [v for v in rates.values() if math.isfinite(v)]
    return {"cosine": q["cosine"], "physics_win_rate": sum(phys) / len(phys) if phys else math.nan,
            "win_rate": sum(allr) / len(allr) if allr else math.nan, "win_rates": rates}


def best_cell_of_prior(res: dict, prior: str) -> str | None:
    """The prior's cell with the lowest validation composite among those keeping detection (λ re-chosen per prior)."""
    cands = res["choice"]["pooled"]["candidates"]
    names = [k for k, c in res["cells"].items() if c["prior"] == prior and c["corrections"] == 1 and c["lambda"] > 0]
    ok = [k for k in names if k == "incumbent" or cands.get(k, {}).get("eligible")]
    return min(ok, key=lambda k: res["validation"][k]["all"]["physics_error"]["rel"]) if ok else None


def _pct(x: float) -> str:
    return f"{100 * x:+.1f} %" if isinstance(x, (int, float)) and math.isfinite(x) else "n/a"


def _ci(c) -> str:
    return f"[{100 * c[0]:+.1f}, {100 * c[1]:+.1f}]" if c and all(map(math.isfinite, c)) else "[n/a]"


def plot(res: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(18, 6), gridspec_kw={"width_ratios": [1.5, 1, 1.2]})
    ax = axes[0]
    names = [k for k in res["validation"]]
    y = range(len(names))
    parts = [("all", "all 256 clips", "k", 0.0), *((g, g, c, d) for (g, c, d) in
                                                    zip(res["seed_sets"], ("tab:blue", "tab:orange"), (0.2, -0.2)))]
    for part, label, colour, dy in parts:
        v = [100 * res["validation"][n][part]["physics_error"]["rel"] for n in names]
        lo = [100 * res["validation"][n][part]["physics_error"]["rel_ci"][0] for n in names]
        hi = [100 * res["validation"][n][part]["physics_error"]["rel_ci"][1] for n in names]
        ax.errorbar(v, [i + dy for i in y], xerr=[[a - b for a, b in zip(v, lo)], [b - a for a, b in zip(v, hi)]],
                    fmt="o", color=colour, ms=4, capsize=2, label=label)
    cands = res["choice"]["pooled"]["candidates"]
    ax.set_yticks(list(y), [n + ("  ← chosen" if n == res["choice"]["choice"] else "") +
                            ("  (detection!)" if n in cands and not cands[n]["eligible"] else "") for n in names], fontsize=8)
    ax.axvline(0, color="grey", lw=0.8)
    inc = 100 * res["validation"]["incumbent"]["all"]["physics_error"]["rel"]
    ax.axvline(inc, color="tab:green", ls=":", lw=1, label="incumbent (all clips)")
    ax.invert_yaxis()
    ax.set_xlim(-70, 40)  # a cell off this scale is marked by an arrow and its value
    for i, n in enumerate(names):
        v = 100 * res["validation"][n]["all"]["physics_error"]["rel"]
        if v > 40:
            ax.annotate(f"{v:+.0f} % →", (38, i), fontsize=8, ha="right", va="center", color="tab:red")
    ax.set_xlabel("validation composite physics error vs baseline, % (95 % CI)")
    ax.legend(fontsize=7)
    ax.set_title(f"validation: 64 prompts × 4 seeds; rule: {'adopt ' + res['choice']['choice'] if res['choice']['choice'] else 'keep the incumbent'}"
                 f" (stable: {res['choice']['stable']})", fontsize=9)
    ax = axes[1]
    for prior, p in res["priors"].items():
        qs = quality_summary(p.get("quality"))
        cell = best_cell_of_prior(res, prior)
        if not qs or cell is None:
            continue
        e = res["validation"][cell]["all"]["physics_error"]
        for key, marker, colour in (("cosine", "o", "tab:blue"), ("physics_win_rate", "s", "tab:red")):
            ax.errorbar(qs[key], 100 * e["rel"], yerr=[[100 * (e["rel"] - e["rel_ci"][0])], [100 * (e["rel_ci"][1] - e["rel"])]],
                        fmt=marker, color=colour, capsize=2)
            ax.annotate(f"{prior}\n({cell.split(' ', 1)[-1] if cell != 'incumbent' else 'λ=3'})", (qs[key], 100 * e["rel"]),
                        fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.plot([], [], "o", color="tab:blue", label="validation cosine (world seed 5)")
    ax.plot([], [], "s", color="tab:red", label="mean win rate, physics counterfactuals")
    ax.set_xlabel("prior quality (`lamo eval prior --world`, 256 clips)")
    ax.set_ylabel("validation composite vs baseline at the prior's best λ, %")
    ax.legend(fontsize=7)
    ax.set_title("effect against the prior's quality", fontsize=9)
    ax = axes[2]
    test = res.get("test") or {}
    if test:
        metrics = [("A", "physics_error"), ("A", "ballistic_residual"), ("A", "gravity_error"), ("A", "jump_rate"),
                   ("B", "b_ballistic_residual"), ("B", "b_gravity_error"), ("B", "b_unexplained_dv"), ("A", "detection_rate"),
                   ("B", "b_size_error")]
        comps = [c for c in test["comparisons"] if c.endswith("vs baseline")] + [c for c in test["comparisons"] if not c.endswith("vs baseline")]
        for j, comp in enumerate(comps):
            for i, (ro, m) in enumerate(metrics):
                src = test["effects"][comp] if ro == "A" else test["readout_b"]["effects"].get(comp, {})
                if m not in src:
                    continue
                e = src[m]
                dy = (j - (len(comps) - 1) / 2) * 0.25
                ax.errorbar(100 * e["rel"], i + dy, xerr=[[100 * (e["rel"] - e["rel_ci"][0])], [100 * (e["rel_ci"][1] - e["rel"])]],
                            fmt="o", ms=4, capsize=2, color=f"C{j}", label=comp if i == 0 else None)
        ax.set_yticks(range(len(metrics)), [f"{ro}: {m}" for ro, m in metrics], fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="grey", lw=0.8)
        ax.axvline(-50, color="tab:green", ls=":", lw=0.8, label="−50 % (the aim)")
        ax.set_xlim(-90, 60)  # intervals running past it are cut at the edge
        ax.set_xlabel("held-out test: relative change (mean), % (95 % CI)")
        ax.legend(fontsize=7)
        ax.set_title(f"test, read once: {test['n_clips']} held-out clips, both readouts", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tables(res: dict) -> str:
    out = [f"Run: `{res['command']}` at commit {res['commit']}, {res['date']}, {res['machine']}, torch {res['torch']}; "
           f"{res['timings']['total_s'] / 60:.1f} min. Dropped: {'; '.join(res['dropped']) or 'nothing'}.", "",
           "Priors:", "", "| prior | what | clips, steps | training s | val. cosine (own 10 %) | cosine (world seed 5) | "
           "win rate, physics cf. | win rate, all cf. |", "|---|---|---|---|---|---|---|---|"]
    for k, p in res["priors"].items():
        t, q = p["training"], quality_summary(p.get("quality"))
        out.append(f"| {k} | {p['what']} | {t.get('clips')}, {t.get('steps')} | {t.get('seconds', math.nan):.0f} | "
                   f"{t.get('val_cosine', math.nan):.3f} | {q.get('cosine', math.nan):.3f} | "
                   f"{100 * q.get('physics_win_rate', math.nan):.1f} % | {100 * q.get('win_rate', math.nan):.1f} % |")
    cands = res["choice"]["pooled"]["candidates"]
    out += ["", f"Validation ({res['val_prompts']} prompts × seeds {res['val_seeds']}): composite physics error vs the "
            "baseline (all clips and each seed set), and paired against the incumbent (all clips; Holm over the eligible "
            "challengers; difference in points of the baseline's composite).", "",
            f"| cell | composite vs baseline, all | {' | '.join(res['seed_sets'])} | detection (diff) | vs incumbent, paired | "
            "Holm p | beats |",
            "|---|---|---|---|---|---|---|---|"]
    for k, v in res["validation"].items():
        c = cands.get(k, {})
        g = list(res["seed_sets"])
        out.append(f"| {k} | {_pct(v['all']['physics_error']['rel'])} {_ci(v['all']['physics_error']['rel_ci'])} | "
                   f"{_pct(v[g[0]]['physics_error']['rel'])} | {_pct(v[g[1]]['physics_error']['rel'])} | "
                   f"{v['all']['detection_rate']['diff']:+.4f} | "
                   + (f"{100 * c['diff']:+.1f} pts {_ci(c['diff_ci'])} | {c['p_holm']:.2g} | {'yes' if c['beats'] else 'no'}"
                      + ("" if c["eligible"] else " (detection)") if c else "— | — | —") + " |")
    ch = res["choice"]
    out += ["", f"Choice: **{ch['choice'] or 'the incumbent stays'}** (stable across seed sets: {ch['stable']}). {ch['why']}",
            *[f"* {g}: {r['choice'] or 'the incumbent'} — {r['why']}" for g, r in ch["groups"].items()],
            f"Best challenger on validation (tested, whatever the rule said): {res['best_on_validation']}."]
    test = res.get("test") or {}
    if test:
        out += ["", f"Test ({test['n_clips']} held-out clips per variant, read once):", "",
                "| comparison | composite | ballistic | gravity | jump rate | detection | B: ballistic (mean) | "
                "B: ballistic median/clip, share lower | B: gravity | B: unexplained Δv | B: size error |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        mark = {"improved": " ✓", "worsened": " ✗"}
        for comp in test["comparisons"]:
            a, b = test["effects"][comp], test["readout_b"]["effects"].get(comp, {})
            rb = test["readout_b"]["robust"].get(comp, {}).get("b_ballistic_residual", {})
            cell = lambda e: f"{_pct(e['rel'])} {_ci(e['rel_ci'])}{mark.get(e['verdict'], '')}"  # noqa: E731
            out.append(f"| {comp} | {cell(a['physics_error'])} | {cell(a['ballistic_residual'])} | {cell(a['gravity_error'])} | "
                       f"{cell(a['jump_rate'])} | {cell(a['detection_rate'])} | "
                       + (f"{cell(b['b_ballistic_residual'])} | {_pct(rb.get('median_change', math.nan))} "
                          f"{_ci(rb.get('median_change_ci'))}, {100 * rb.get('share_improved', math.nan):.0f} % | "
                          f"{cell(b['b_gravity_error'])} | {cell(b['b_unexplained_dv'])} | {cell(b['b_size_error'])} |" if b else "— | — | — | — | — |"))
        out += ["", *[f"* {v}" for v in test["headline_both"].values()]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--backbone", default="", help="the backbone pipeline folder (default: the shipped demo backbone)")
    ap.add_argument("--prior", default="", help="the incumbent's prior folder (default: the shipped demo prior)")
    ap.add_argument("--world-overrides", default="{}", help="JSON world settings, e.g. '{\"size\": 16, \"frames\": 8}' (tests)")
    ap.add_argument("--steps", type=int, default=25, help="denoising steps (the shipped selection's)")
    ap.add_argument("--prior-scale", type=float, default=1.0, help="multiply every trained prior's clips and steps (tests)")
    ap.add_argument("--out", default="runs/effect-levers", help="cache of priors, cells and quality")
    ap.add_argument("--results", default="benchmarks/results/effect_levers_cpu.json")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=64, help="clips per pipeline call")
    ap.add_argument("--cells", nargs="*", default=[], help="validation cells to run (default: all of CELLS)")
    ap.add_argument("--budget-min", type=float, default=0.0, help="skip cells that would not fit (0: never)")
    ap.add_argument("--test-reserve-min", type=float, default=12.0, help="minutes kept for the test")
    ap.add_argument("--val-prompts", type=int, default=VAL_PROMPTS, help="validation prompts (× --val-seeds)")
    ap.add_argument("--val-seeds", type=int, nargs="+", default=list(VAL_SEEDS),
                    help="validation seeds, an even count: the first half and the second are the two disjoint seed "
                         "sets (another --out for other seeds: cells are cached by name)")
    ap.add_argument("--test-prompts", type=int, default=128)
    ap.add_argument("--test-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--wait-priors-min", type=float, default=0.0,
                    help="wait up to this long for a prior another process is training into --out before training it here")
    ap.add_argument("--quality-clips", type=int, default=256)
    ap.add_argument("--n-resamples", type=int, default=4999)
    ap.add_argument("--no-test", action="store_true", help="validation and the choice only")
    ap.add_argument("--table", metavar="FILE", help="print the tables of a finished results file, redraw its PNG and exit")
    args = ap.parse_args(argv)
    if args.table:
        res = json.loads(Path(args.table).read_text())
        plot(res, Path(args.table).with_suffix(".png"))
        print(tables(res))
        return 0
    if len(args.val_seeds) < 2 or len(args.val_seeds) % 2 or len(set(args.val_seeds)) < len(args.val_seeds):
        ap.error(f"--val-seeds must be an even count of distinct seeds (two disjoint sets), got {args.val_seeds}")
    unknown = [c for c in args.cells if c not in CELLS]
    if unknown:
        ap.error(f"unknown cells {unknown}; choose from {list(CELLS)}")
    args.command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/effect_levers.py", *(sys.argv[1:] if argv is None else argv)])
    res = run(args)
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1, default=float) + "\n")
    plot(res, path.with_suffix(".png"))
    print(tables(res))
    print(f"wrote {path} and {path.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
