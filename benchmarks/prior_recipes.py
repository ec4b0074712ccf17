"""Which motion-prior recipe makes Motion Prior Guidance work: lag τ, input noise, second-order input.

An ablation on the physics world, judged by the effect benchmark's machinery (:mod:`lamo.demo.run`,
:func:`lamo.effect.compare`). Every recipe is a ``small`` prior trained the same way (the benchmark's
512 clips of world seed 2 encoded by the backbone's own VAE and text encoder, 500 steps, batch 32,
lr 1e-3, seed 0); only the named choice changes:

* **A** τ = 1, fixed input noise σ = 0.1 (p = 0.5): the benchmark's τ = 1 prior;
* **B** τ = 1, fixed σ = 0.3;
* **C** τ = 1, diffusion-aligned noise σ = 0.3·√(1 − ᾱ_t), ``t`` uniform over the backbone scheduler's
  training timesteps (the authors' release);
* **D** τ = 2 with the noise of the winner among A–C (separates the lag from the augmentation);
* **E** the release architecture (small sizes: width 64, 4 blocks) with the winner's noise, with and
  without the ``Δz_{i−1}`` second-order input (``--no-second-order`` or ``--budget-min`` drop it).

Validation (32 prompts of world seed 4 × seeds 100, 101): each recipe's λ from the sweep by the
benchmark's rule (:func:`lamo.demo.run.choose`: lowest composite physics error with the detection rate
within the tolerance of the baseline's), then the best recipe by its composite at that λ. Test (128
held-out prompts of world seed 3 × seeds 0, 1), read once after that: the best recipe at its λ against
recipe A at its λ, and each against the baseline, paired on the same initial noise, with intervals
(:func:`lamo.demo.run.analyse`). Writes a results file with every clip's row, a PNG of the validation
sweep per recipe, and prints the markdown tables of ``benchmarks/README.md``::

    OMP_NUM_THREADS=1 python benchmarks/prior_recipes.py --backbone runs/world-gpu/pipeline-latest \\
        --out runs/prior-recipes --results benchmarks/results/prior_recipes_cpu.json --threads 1

``--table FILE`` prints the tables of a finished results file again.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # effect_table.py, beside this file

from effect_table import (add_size_args, contrast_lines, pct, plot_lambda_sweeps, size_config,  # noqa: E402
                          sweep_table, test_lines)

VAL_METRICS = ["physics_error", "detection_rate"]


@dataclass(frozen=True)
class Recipe:
    """One prior's training recipe: :class:`lamo.prior.MotionPrior` options over the ``small`` preset."""

    name: str
    what: str
    options: dict = field(default_factory=dict)

    def describe(self) -> str:
        o = self.options
        noise = (f"σ = {o['noise_aug_std']:g}·√(1 − ᾱ_t)" if o.get("noise_aug") == "diffusion"
                 else f"fixed σ = {o.get('noise_aug_std', 0.1):g}")
        arch = o.get("arch", "lamo") + (" + Δz_{i−1}" if o.get("second_order") else "")
        return f"τ = {o.get('tau', 2)}, {noise}, {arch}"


FIRST = [
    Recipe("A", "τ=1, fixed σ 0.1 (the benchmark's τ=1 prior)", dict(tau=1, noise_aug_std=0.1)),
    Recipe("B", "τ=1, fixed σ 0.3", dict(tau=1, noise_aug_std=0.3)),
    Recipe("C", "τ=1, diffusion-aligned σ 0.3·√(1−ᾱ_t)", dict(tau=1, noise_aug="diffusion", noise_aug_std=0.3)),
]
NOISE_KEYS = ("noise_aug", "noise_aug_std", "noise_aug_prob")


def later_recipes(winner: Recipe, second_order: bool) -> list[Recipe]:
    """D (τ = 2 with the winner's input noise) and E (the release architecture, small sizes, with the
    winner's noise, with and without the second-order input)."""
    noise = {k: v for k, v in winner.options.items() if k in NOISE_KEYS}
    out = [Recipe("D", f"τ=2 with {winner.name}'s input noise", dict(noise, tau=2))]
    if second_order:
        release = dict(noise, tau=1, arch="release", hidden_channels=64, num_blocks=4)
        out += [Recipe("E0", f"release arch (small), {winner.name}'s noise, no Δz_{{i−1}}", dict(release)),
                Recipe("E1", f"release arch (small), {winner.name}'s noise, + Δz_{{i−1}}", dict(release, second_order=True))]
    return out


# ------------------------------------------------------------------------------------- priors
def train_recipe(recipe: Recipe, cfg, latents, cond, noise_levels, folder: Path):
    """A ``cfg.prior_preset`` prior with the recipe's options, trained and saved by
    :func:`lamo.demo.run.train_prior` (its settings from ``cfg``) → ``(prior, stats)``."""
    from lamo.demo.run import train_prior

    return train_prior(cfg, latents, cond, folder, recipe.options, {"recipe": recipe.name, "options": recipe.options},
                       aug_noise_levels=noise_levels)


def run(cfg, out: Path, results: Path, second_order: bool = True, budget_min: float = 0.0, command: str = "") -> dict:
    """Train, validate, choose, test; write ``results`` (JSON) and its PNG; return the results."""
    import numpy as np
    import torch

    from lamo.demo.run import (_effect_summary, _load_pipeline, _sample, _score, add_ground_truth, analyse, choose,
                               encode_world_clips, provenance, held_out_clips, validation_prompts)
    from lamo.effect import COMPOSITE, compare
    from lamo.training.prior import scheduler_noise_stds

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.time()
    timings: dict[str, float] = {}
    out.mkdir(parents=True, exist_ok=True)
    pipe, meta, preset, world = _load_pipeline(cfg)
    t = time.time()
    latents, cond = encode_world_clips(pipe, preset, world, cfg.prior_clips)
    levels = scheduler_noise_stds(cfg.backbone)  # √(1 − ᾱ_t) of the backbone's training timesteps
    timings["encode_s"] = time.time() - t

    val_prompts = validation_prompts(world, cfg.val_prompts)
    sample_s: dict[str, float] = {}

    def sample(prompts, seeds, prior, lam, label):
        t = time.time()
        frames, guide = _sample(pipe, prompts, seeds, cfg, preset, prior, lam, desc=label)
        sample_s[label] = time.time() - t
        rows = _score(frames, world, prompts, seeds)
        if guide is not None:
            for r, g in zip(rows, guide):
                r["guide_loss"] = float(g)
        return rows

    t = time.time()
    val_rows = {"baseline": sample(val_prompts, cfg.val_seeds, None, 0.0, "validation: baseline")}
    timings["validation_baseline_s"] = time.time() - t
    recipes, priors, stats, validation, lam_of, at_lam = {}, {}, {}, {}, {}, {}

    def evaluate(batch: list[Recipe]) -> None:
        for r in batch:
            t = time.time()
            priors[r.name], stats[r.name] = train_recipe(r, cfg, latents, cond, levels, out / f"prior-{r.name}")
            recipes[r.name] = r
            effects = {}
            for lam in cfg.sweep:
                label = f"{r.name} λ={lam:g}"
                val_rows[label] = sample(val_prompts, cfg.val_seeds, priors[r.name], lam, f"validation: {label}")
                effects[lam] = compare(val_rows["baseline"], val_rows[label], VAL_METRICS, n_resamples=cfg.n_resamples,
                                       seed=cfg.seed)
            validation[r.name] = {str(lam): _effect_summary(e) for lam, e in effects.items()}
            lam, why = choose(effects, cfg.detection_tolerance)
            lam_of[r.name] = (min(cfg.sweep), why + "; the smallest λ is used") if lam is None else (lam, why)
            at_lam[r.name] = effects[lam_of[r.name][0]]
            timings[f"recipe_{r.name}_s"] = time.time() - t
            print(f"[{time.time() - t0:6.0f} s] {r.name} ({r.describe()}): validation cosine {stats[r.name]['val_cosine']:.3f}; "
                  f"λ = {lam_of[r.name][0]:g}, composite {100 * at_lam[r.name][COMPOSITE].rel:+.1f} %", flush=True)

    evaluate(FIRST)
    first_winner, first_why = choose({k: at_lam[k] for k in "ABC"}, math.inf)
    first_winner = first_winner or "A"
    later = later_recipes(recipes[first_winner], second_order)
    dropped = [] if second_order else ["E (release arch ± Δz_{i−1}): --no-second-order"]
    if budget_min and any(r.name.startswith("E") for r in later):
        # projected cost of E (2 priors + their sweeps, at this run's rates) and of the rest: drop E if over budget
        per_recipe = np.mean([timings[f"recipe_{k}_s"] for k in "ABC"])
        per_val_clip = sum(v for k, v in sample_s.items() if k.startswith("validation")) / (
            len(sample_s) * cfg.val_prompts * len(cfg.val_seeds))
        rest = per_recipe * len(later) + 3 * cfg.test_prompts * len(cfg.test_seeds) * per_val_clip
        if time.time() - t0 + rest > 60 * budget_min:
            later = [r for r in later if not r.name.startswith("E")]
            dropped.append(f"E (release arch ± Δz_{{i−1}}): projected {(time.time() - t0 + rest) / 60:.0f} min > "
                           f"the {budget_min:g} min budget")
    evaluate(later)
    best, best_why = choose(at_lam, math.inf)
    best = best or "A"

    # the test, read once: best recipe and recipe A at their λ, and the baseline, on the same initial noise
    t = time.time()
    test = held_out_clips(world, cfg.test_prompts)
    prompts = [c.caption for c in test]
    names = {"A": f"A λ={lam_of['A'][0]:g}", best: f"{best} λ={lam_of[best][0]:g}"}
    rows = {"baseline": sample(prompts, cfg.test_seeds, None, 0.0, "test: baseline")}
    for k, name in names.items():
        rows[name] = sample(prompts, cfg.test_seeds, priors[k], lam_of[k][0], f"test: {name}")
    add_ground_truth(rows, test, world)
    comparisons = [(names[best], "baseline")] + ([(names["A"], "baseline"), (names[best], names["A"])] if best != "A" else [])
    timings["test_s"] = time.time() - t
    t = time.time()
    effects, secondary = analyse(rows, comparisons, cfg.n_resamples, cfg.seed)
    timings["stats_s"] = time.time() - t
    timings["total_s"] = time.time() - t0

    res = {
        "what": "motion-prior recipe ablation on the physics world (benchmarks/prior_recipes.py)",
        **provenance(command), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "config": asdict(cfg), "backbone": meta, "dropped": dropped,
        "recipes": {k: {"what": r.what, "describe": r.describe(), "options": r.options} for k, r in recipes.items()},
        "prior": stats, "validation": validation,
        "lambda": {k: v[0] for k, v in lam_of.items()}, "lambda_why": {k: v[1] for k, v in lam_of.items()},
        "winner_a_to_c": first_winner, "winner_a_to_c_why": first_why, "best": best, "best_why": best_why,
        "val_prompts": cfg.val_prompts, "val_seeds": list(cfg.val_seeds), "n_test_clips": len(rows["baseline"]),
        "effects": {k: {m: e.to_dict() for m, e in v.items()} for k, v in effects.items()},
        "secondary": {k: {m: e.to_dict() for m, e in v.items()} for k, v in secondary.items()},
        "per_clip_validation": val_rows, "per_clip": rows, "prompts": prompts, "val_prompts_text": val_prompts,
        "sampling_s": sample_s, "timings": timings,
    }
    res["validation_contrasts"] = validation_contrasts(res)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(res, indent=2, default=float))
    plot(res, results.with_suffix(".png"))
    return res


def plot(res: dict, path: Path) -> Path:
    """The validation sweep per recipe (:func:`effect_table.plot_lambda_sweeps`)."""
    return plot_lambda_sweeps(res, path, {k: v["describe"] for k, v in res["recipes"].items()}, "recipe", figsize=(11, 3.8))


# ------------------------------------------------------------------------------------- contrasts
def contrast_pairs(res: dict) -> list[tuple[str, str, str]]:
    """``(recipe, control recipe, what changes)`` for the one-choice contrasts of a results file's recipes."""
    w, best = res["winner_a_to_c"], res["best"]
    pairs = [("B", "A", "input noise: fixed σ 0.3 vs 0.1"), ("C", "A", "input noise: diffusion-aligned vs fixed σ 0.1"),
             ("C", "B", "input noise: diffusion-aligned vs fixed σ 0.3"), ("D", w, "lag: τ = 2 vs 1"),
             ("E0", w, "architecture: release vs lamo"), ("E1", "E0", "release arch: + Δz_{i−1} input"),
             (best, "A", "the best recipe vs the benchmark's τ = 1 prior")]
    seen, out = set(), []
    for a, b, what in pairs:
        if a in res["recipes"] and b in res["recipes"] and a != b and (a, b) not in seen:
            seen.add((a, b))
            out.append((a, b, what))
    return out


def validation_contrasts(res: dict) -> dict:
    """Each recipe against another at their chosen λ, paired on the validation clips (the same initial
    noise): composite and detection with intervals (:func:`lamo.effect.compare`). Exploratory: these
    clips also chose each λ, so only the test confirms anything."""
    from lamo.effect import compare

    cfg, lam, rows = res["config"], res["lambda"], res["per_clip_validation"]
    out = {}
    for a, b, what in contrast_pairs(res):
        effects = compare(rows[f"{b} λ={lam[b]:g}"], rows[f"{a} λ={lam[a]:g}"], VAL_METRICS,
                          n_resamples=cfg["n_resamples"], seed=cfg["seed"])
        out[f"{a} λ={lam[a]:g} vs {b} λ={lam[b]:g}"] = {"what": what, **{m: e.to_dict() for m, e in effects.items()}}
    return out


def add_contrasts(path: Path) -> dict:
    """Add :func:`validation_contrasts` to a finished results file from its per-clip rows (no sampling),
    recording when; returns the results."""
    from lamo.demo.run import _commit

    res = json.loads(path.read_text())
    res["validation_contrasts"] = validation_contrasts(res)
    res.setdefault("reanalysed", []).append({"added": "validation_contrasts", "commit": _commit(),
                                             "date": time.strftime("%Y-%m-%d")})
    path.write_text(json.dumps(res, indent=2, default=float))
    return res


# ------------------------------------------------------------------------------------- tables
def tables(res: dict) -> str:
    """The markdown tables of a results file: recipes on validation, the full sweep, the test."""
    out = [f"Run: `{res['command']}` at commit {res['commit']}, {res['date']}, {res['machine']}, torch {res['torch']}; "
           f"{res['timings']['total_s'] / 60:.1f} min end to end. Dropped: {'; '.join(res['dropped']) or 'nothing'}.", "",
           f"Validation ({res['val_prompts']} prompts × {len(res['val_seeds'])} seeds = "
           f"{res['val_prompts'] * len(res['val_seeds'])} clips): each recipe at the λ the benchmark's rule chose "
           f"(detection tolerance {res['config']['detection_tolerance']:g}).", "",
           "| recipe | τ, input noise, arch | validation cosine | λ | composite physics error | detection rate (difference) |",
           "|---|---|---|---|---|---|"]
    for k, r in res["recipes"].items():
        e = res["validation"][k][str(float(res["lambda"][k]))]
        out.append(f"| {k}{' (best)' if k == res['best'] else ''} | {r['describe']} | {res['prior'][k]['val_cosine']:.3f} | "
                   f"{res['lambda'][k]:g} | {pct(e['physics_error'])} | "
                   f"{pct(e['detection_rate'], 'diff', 1.0, '', 3)} |")
    out += ["", f"Best recipe (validation): {res['best']} — {res['best_why']}. Winner among A–C: "
            f"{res['winner_a_to_c']} — {res['winner_a_to_c_why']}.", "", "Validation sweep, every recipe and λ:", ""]
    out += [line.replace("| prior |", "| recipe |") for line in sweep_table(res["validation"])]
    if res.get("validation_contrasts"):
        out += contrast_lines(res["validation_contrasts"], "Validation, one choice at a time: recipe vs recipe at their chosen λ, paired on the same clips "
                "(exploratory: these clips chose λ).")
    out += test_lines(res)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from lamo.demo.run import DemoConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="", help="the backbone pipeline folder (default: the shipped demo backbone)")
    p.add_argument("--out", default="runs/prior-recipes", help="folder for the trained priors")
    p.add_argument("--results", default="benchmarks/results/prior_recipes_cpu.json")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sweep", type=float, nargs="+", default=[0.3, 1.0, 3.0])
    p.add_argument("--no-second-order", action="store_true", help="drop recipe E (release arch ± Δz_{i−1})")
    p.add_argument("--budget-min", type=float, default=0.0,
                   help="drop E when the projected run would exceed this many minutes (0: never)")
    p.add_argument("--table", default="", help="print the tables of a finished results file and exit")
    p.add_argument("--add-contrasts", default="", help="add the validation contrasts to a finished results file "
                   "(from its rows, no sampling), redraw its PNG, print its tables and exit")
    add_size_args(p)  # small settings, for tests
    args = p.parse_args(argv)
    if args.add_contrasts:
        res = add_contrasts(Path(args.add_contrasts))
        plot(res, Path(args.add_contrasts).with_suffix(".png"))
        print(tables(res))
        return 0
    if args.table:
        print(tables(json.loads(Path(args.table).read_text())))
        return 0
    cfg = DemoConfig(preset="prior-recipes", prior="", selection="", finetunes={}, flowmo_sweep=(), threads=args.threads,
                     sweep=tuple(args.sweep), **size_config(args))
    if args.backbone:
        cfg = replace(cfg, backbone=args.backbone)
    res = run(cfg, Path(args.out), Path(args.results), second_order=not args.no_second_order, budget_min=args.budget_min,
              command=" ".join(["python benchmarks/prior_recipes.py", *(sys.argv[1:] if argv is None else argv)]))
    print(tables(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
