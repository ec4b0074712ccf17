"""Which guidance choices make Motion Prior Guidance work: stop-gradient, λ schedule, window, prior size.

An ablation on the physics world, judged by the effect benchmark's machinery (:mod:`lamo.demo.run`,
:func:`lamo.effect.compare`), like ``benchmarks/prior_recipes.py``. Every variant changes one choice of
today's default — the shipped ``small`` τ = 1 prior (``assets/demo-prior``), constant λ, window ρ = 0.8,
both sides of the residual moving:

* **one-sided**: ``r_i = sg(x̂0_i + f_φ(x̂0_i, c)) − x̂0_{i+τ}`` (``motion_guidance_stop_gradient=True``);
* **λ ∝ noise**: ``λ_t = λ·√(1 − ᾱ_t)`` over the window (``motion_guidance_schedule="noise"``);
* **ρ = 0.5**, **ρ = 1**: the window (``motion_guidance_window``);
* **tiny**, **medium**: the prior's size preset, trained exactly as the shipped ``small`` one (the
  benchmark's 512 clips of world seed 2 encoded by the backbone's own VAE and text encoder, 500 steps,
  batch 32, lr 1e-3, seed 0: :func:`lamo.demo.run.train_prior`); ``--budget-min`` drops ``medium`` when
  its projected cost would overrun.

Validation (32 prompts of world seed 4 × seeds 100, 101): each variant's λ from its sweep by the
benchmark's rule (:func:`lamo.demo.run.choose`: lowest composite physics error with the detection rate
within the tolerance of the baseline's); a λ chosen at the edge of its sweep gets one more point past that
edge (λ ×3 or ÷3) before it is kept. The best variant by its composite at its λ; the best *challenger*
(best variant other than the default) too. Test (128 held-out prompts of world seed 3 × seeds 0, 1), read
once after that: the challenger at its λ against the default at its λ, and each against the baseline,
paired on the same initial noise, with intervals (:func:`lamo.demo.run.analyse`). A challenger becomes
the default only if it won validation *and* the test shows a detectable improvement over the default.

Each finished cell (one variant at one λ on one prompt set) is cached in ``--out/cells`` with what made
it, so a killed run resumes where it stopped; trained priors are kept in ``--out/prior-<preset>``. Writes
a results file with every clip's row, a PNG of the validation sweep per variant, and prints the markdown
tables of ``benchmarks/README.md``::

    OMP_NUM_THREADS=1 python benchmarks/guidance_ablations.py --backbone src/lamo/assets/demo-backbone \\
        --out runs/guidance-ablations --results benchmarks/results/guidance_ablations_cpu.json --threads 1 \\
        --budget-min 45

``--table FILE`` prints the tables of a finished results file again.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # effect_table.py, beside this file

from effect_table import (Cells, _digest, add_size_args, begin, contrast_lines, pct, plot_lambda_sweeps,  # noqa: E402
                          size_config, sweep_table, test_lines)

VAL_METRICS = ["physics_error", "detection_rate"]
LADDER = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)  # where an edge λ's next point comes from
DEFAULT = "default"


@dataclass(frozen=True)
class Variant:
    """One guidance setting: today's default with (at most) one choice changed, and its λ sweep."""

    name: str
    what: str
    sweep: tuple[float, ...]
    stop_gradient: bool = False
    schedule: str = "constant"
    window: float = 0.8
    prior: str = "small"  # the prior's size preset; "small" is the shipped prior
    more_lags: tuple[int, ...] = ()  # further priors of the same size at these lags guide too (several lags)

    def describe(self) -> str:
        lags = "".join(f" + τ = {t}" for t in self.more_lags)
        return (f"{'one-sided' if self.stop_gradient else 'two-sided'}, λ {self.schedule}, ρ = {self.window:g}, "
                f"{self.prior} prior{lags}")


# The one-sided residual pulls one frame of each pair instead of two (about half the gradient), and the
# noise schedule's √(1 − ᾱ_t) averages 0.72 over this backbone's window: both sweeps start at λ = 1.
# ρ = 1 also guides the noisiest steps, ρ = 0.5 only the cleanest half.
VARIANTS = [
    Variant(DEFAULT, "today: two-sided, constant λ, ρ = 0.8, small prior (shipped)", (0.3, 1.0, 3.0)),
    Variant("one-sided", "stop-gradient through the prior's input", (1.0, 3.0), stop_gradient=True),
    Variant("λ∝noise", "λ_t = λ·√(1 − ᾱ_t) over the window", (1.0, 3.0), schedule="noise"),
    Variant("ρ=0.5", "window: the cleanest 50 % of steps", (1.0, 3.0), window=0.5),
    Variant("ρ=1", "window: every step", (0.3, 1.0), window=1.0),
    Variant("tiny", "prior size: tiny preset (width 32, 2 blocks)", (0.3, 1.0, 3.0), prior="tiny"),
    Variant("medium", "prior size: medium preset (width 128, 6 blocks)", (0.3, 1.0, 3.0), prior="medium"),
    Variant("τ1+τ2", "several lags at once: the τ = 1 prior and a τ = 2 prior, losses summed", (0.3, 1.0, 3.0),
            more_lags=(2,)),
]


def next_lambda(lam: float, up: bool) -> float:
    """The next λ past ``lam`` on :data:`LADDER` (×3 / ÷3 off it)."""
    if lam in LADDER:
        i = LADDER.index(lam) + (1 if up else -1)
        if 0 <= i < len(LADDER):
            return LADDER[i]
    return lam * 3 if up else lam / 3


# ------------------------------------------------------------------------------------- the pipeline
class WithGuidance:
    """The pipeline with the variant's guidance kwargs added to every call (``lamo.demo.run._sample``
    passes λ, ρ and the mode itself); everything else is the pipeline's."""

    def __init__(self, pipe, **kwargs):
        self._pipe, self._kwargs = pipe, kwargs

    def __call__(self, *args, **kwargs):
        return self._pipe(*args, **kwargs, **self._kwargs)

    def __getattr__(self, name):
        return getattr(self._pipe, name)


# ------------------------------------------------------------------------------------- the run
def run(cfg, out: Path, results: Path, prior_path: Path | None, variants: list[Variant], budget_min: float = 0.0,
        extend: bool = True, command: str = "") -> dict:
    """Validate, choose, test; write ``results`` (JSON) and its PNG; return the results."""
    from tqdm.auto import tqdm

    from lamo.demo.run import (_effect_summary, _load_pipeline, _prior_hash, _sample, _score, add_ground_truth,
                               analyse, choose, encode_world_clips, provenance, held_out_clips, train_prior,
                               validation_prompts)
    from lamo.effect import COMPOSITE, compare
    from lamo.prior import MotionPrior

    t0, timings, cells = begin(cfg, out)
    pipe, meta, preset, world = _load_pipeline(cfg)
    priors, prior_stats, prior_sha, clips = {}, {}, {}, {}
    if prior_path:  # the shipped small prior (else it is trained here like the others)
        shipped = MotionPrior.from_pretrained(prior_path).float().eval()
        shipped.check_compatible(preset["latent_channels"], preset["text_dim"], backbone="cogvideox-demo")
        if shipped.config.tau != 1 or shipped.config.hidden_channels != 64 or shipped.config.num_blocks != 4:
            raise ValueError(f"{prior_path} is not a τ = 1 small prior, the default these variants change")
        priors["small"], prior_sha["small"] = shipped, _prior_hash(prior_path)
        prior_stats["small"] = {**json.loads((prior_path / "training_stats.json").read_text()), "source": str(prior_path),
                                "parameters_m": shipped.num_parameters_m()}

    def prior_name(size: str, tau: int = 1) -> str:
        """The key of a prior in ``priors`` / ``prior_sha`` and its folder's suffix in ``OUT``."""
        return size if tau == 1 else f"{size}-tau{tau}"

    def get_prior(size: str, tau: int = 1):
        """The ``size`` preset prior at lag ``tau``, trained here like the shipped one (or reloaded from ``OUT``)."""
        name = prior_name(size, tau)
        if name in priors:
            return priors[name]
        folder = out / f"prior-{name}"
        want = dict(preset=size, clips=cfg.prior_clips, steps=cfg.prior_steps, batch=cfg.prior_batch, lr=cfg.prior_lr,
                    seed=cfg.seed, tau=tau)
        stats_file = folder / "training_stats.json"
        stats = json.loads(stats_file.read_text()) if stats_file.is_file() else {}
        if stats and all(stats.get(k) == v for k, v in want.items()):
            prior = MotionPrior.from_pretrained(folder).float().eval()
            stats["reloaded"] = True
        else:
            if not clips:
                t = time.time()
                clips["latents"], clips["cond"] = encode_world_clips(pipe, preset, world, cfg.prior_clips)
                timings["encode_s"] = time.time() - t
            prior, stats = train_prior(replace(cfg, prior_preset=size), clips["latents"], clips["cond"], folder,
                                       {"tau": tau}, {"tau": tau})
        priors[name], prior_stats[name], prior_sha[name] = prior, stats, _prior_hash(folder)
        return prior

    val_prompts = validation_prompts(world, cfg.val_prompts)
    test = held_out_clips(world, cfg.test_prompts)
    test_prompts = [c.caption for c in test]
    common = dict(backbone=str(Path(cfg.backbone).resolve()), steps=cfg.steps, guidance_scale=cfg.guidance_scale,
                  chunk=cfg.chunk)
    bar = tqdm(total=1 + sum(len(v.sweep) for v in variants), desc="cells", unit="cell", dynamic_ncols=True)

    def cell(label: str, v: Variant | None, lam: float, prompts: list[str], seeds: tuple[int, ...]) -> list[dict]:
        """Rows of ``v`` at ``lam`` on ``prompts × seeds`` (``v=None``: the baseline), from the cache or sampled."""
        prior = None if v is None else get_prior(v.prior)  # trained once, or reloaded from OUT
        more = [] if v is None else [get_prior(v.prior, t) for t in v.more_lags]
        key = dict(common, prompts=_digest(prompts), seeds=list(seeds), lam=lam,
                   variant=None if v is None else dict(stop_gradient=v.stop_gradient, schedule=v.schedule,
                                                       window=v.window, prior=prior_sha[v.prior]))
        if v is not None and v.more_lags:
            key["variant"]["more_priors"] = [prior_sha[prior_name(v.prior, t)] for t in v.more_lags]
        done = cells.get(label, key)
        if done is None:
            t = time.time()
            guided = pipe if v is None else WithGuidance(pipe, motion_guidance_stop_gradient=v.stop_gradient,
                                                         motion_guidance_schedule=v.schedule,
                                                         **({"motion_guidance_more_priors": more} if more else {}))
            frames, guide = _sample(guided, prompts, seeds, cfg if v is None else replace(cfg, window=v.window), preset,
                                    prior, lam, desc=label)
            rows = _score(frames, world, prompts, seeds)
            if guide is not None:
                for r, g in zip(rows, guide):
                    r["guide_loss"] = float(g)
            done = cells.put(label, key, rows, time.time() - t)
        bar.update(1)
        bar.set_postfix_str(f"{label} ({done['seconds']:.0f} s{', cached' if label in cells.reused else ''})")
        return done["rows"]

    # validation: each variant's λ sweep, then the choice
    val_rows = {"baseline": cell("validation: baseline", None, 0.0, val_prompts, cfg.val_seeds)}
    validation, lam_of, at_lam, dropped, extended, variant_s = {}, {}, {}, [], {}, {}
    for v in variants:
        t = time.time()
        if budget_min and v.prior not in priors and not (out / f"prior-{v.prior}" / "training_stats.json").is_file():
            projected = project(cfg, v, preset, cells, time.time() - t0)
            if projected > 60 * budget_min:
                dropped.append(f"{v.name} ({v.what}): projected {projected / 60:.1f} min > the {budget_min:g} min budget")
                bar.total -= len(v.sweep)
                bar.refresh()
                continue
        effects: dict[float, dict] = {}

        def point(lam: float) -> None:
            label = f"{v.name} λ={lam:g}"
            val_rows[label] = cell(f"validation: {label}", v, lam, val_prompts, cfg.val_seeds)
            effects[lam] = compare(val_rows["baseline"], val_rows[label], VAL_METRICS, n_resamples=cfg.n_resamples,
                                   seed=cfg.seed)

        for lam in v.sweep:
            point(lam)
        lam, why = choose(effects, cfg.detection_tolerance)
        sweep = sorted(effects)
        if extend and len(sweep) > 1 and lam in (None, sweep[0], sweep[-1]):
            up = lam == sweep[-1]
            extra = next_lambda(sweep[-1] if up else sweep[0], up)
            bar.total += 1
            point(extra)
            extended[v.name] = extra
            lam, why = choose(effects, cfg.detection_tolerance)
        lam_of[v.name] = (min(effects), why + "; the smallest λ is used") if lam is None else (lam, why)
        validation[v.name] = {str(k): _effect_summary(effects[k]) for k in sorted(effects)}
        at_lam[v.name] = effects[lam_of[v.name][0]]
        variant_s[v.name] = time.time() - t
        tqdm.write(f"[{time.time() - t0:6.0f} s] {v.name} ({v.describe()}): λ = {lam_of[v.name][0]:g}, "
                   f"composite {100 * at_lam[v.name][COMPOSITE].rel:+.1f} %")
    timings["validation_s"] = time.time() - t0
    names = [v.name for v in variants if v.name in at_lam]
    best, best_why = choose({k: at_lam[k] for k in names}, math.inf)
    best = best or DEFAULT
    challengers = {k: at_lam[k] for k in names if k != DEFAULT}
    challenger, challenger_why = choose(challengers, math.inf) if challengers else (None, "no challenger")
    if challengers and challenger is None:  # no finite composite anywhere (tiny test worlds): the first one
        challenger = next(iter(challengers))

    # the test, read once: the default and the best challenger at their λ, and the baseline, same initial noise
    t = time.time()
    by_name = {v.name: v for v in variants}
    label = {k: f"{k} λ={lam_of[k][0]:g}" for k in (DEFAULT, challenger) if k}
    rows = {"baseline": cell("test: baseline", None, 0.0, test_prompts, cfg.test_seeds)}
    bar.total += len(label) + 1
    for k, name in label.items():
        rows[name] = cell(f"test: {name}", by_name[k], lam_of[k][0], test_prompts, cfg.test_seeds)
    bar.close()
    add_ground_truth(rows, test, world)
    comparisons = [(label[DEFAULT], "baseline")]
    if challenger:
        comparisons = [(label[challenger], label[DEFAULT]), (label[challenger], "baseline"), *comparisons]
    timings["test_s"] = time.time() - t
    t = time.time()
    effects, secondary = analyse(rows, comparisons, cfg.n_resamples, cfg.seed)
    timings["stats_s"] = time.time() - t
    timings["total_s"] = time.time() - t0

    res = {
        "what": "guidance-choice ablation on the physics world (benchmarks/guidance_ablations.py)",
        **provenance(command), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "config": asdict(cfg), "backbone": meta, "shipped_prior": str(prior_path or ""), "dropped": dropped,
        "variants": {v.name: {"what": v.what, "describe": v.describe(), **asdict(v)} for v in variants
                     if v.name in at_lam},
        "prior": prior_stats, "validation": validation, "extended": extended,
        "lambda": {k: v[0] for k, v in lam_of.items()}, "lambda_why": {k: v[1] for k, v in lam_of.items()},
        "best": best, "best_why": best_why, "challenger": challenger, "challenger_why": challenger_why,
        "val_prompts": cfg.val_prompts, "val_seeds": list(cfg.val_seeds), "n_test_clips": len(rows["baseline"]),
        "effects": {k: {m: e.to_dict() for m, e in v.items()} for k, v in effects.items()},
        "secondary": {k: {m: e.to_dict() for m, e in v.items()} for k, v in secondary.items()},
        "per_clip_validation": val_rows, "per_clip": rows, "prompts": test_prompts, "val_prompts_text": val_prompts,
        "cell_seconds": {p.stem: json.loads(p.read_text())["seconds"] for p in sorted(cells.folder.glob("*.json"))},
        "cells_reused": cells.reused, "variant_s": variant_s, "timings": timings,
    }
    res["validation_contrasts"] = validation_contrasts(res)
    res["decision"] = decide(res)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(res, indent=2, default=float))
    plot(res, results.with_suffix(".png"))
    return res


def project(cfg, v: Variant, preset: dict, cells: Cells, elapsed: float) -> float:
    """Projected seconds of the whole run if ``v`` (whose prior is not trained yet) is kept: ``elapsed`` +
    its prior's training (a few timed steps × the steps) + its sweep + the test (3 × 256 clips at the
    validation cells' rate per clip so far)."""
    import torch

    from lamo.prior import MotionPrior

    channels, side = preset["latent_channels"], preset["size"] // preset["patch_size"]
    probe = MotionPrior.from_preset(v.prior, latent_channels=channels, text_embed_dim=preset["text_dim"], tau=1)
    opt = torch.optim.AdamW(probe.parameters(), lr=cfg.prior_lr)
    latents = torch.randn(cfg.prior_batch, preset["frames"] // preset["temporal_compression"], channels, side, side)
    cond = torch.randn(cfg.prior_batch, preset["text_dim"])
    times = []
    for _ in range(3):
        t = time.time()
        loss = probe.training_loss(latents, cond).per_sample.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.time() - t)
    train = min(times) * cfg.prior_steps
    seconds = [json.loads(p.read_text())["seconds"] for p in cells.folder.glob("validation*.json")]
    per_clip = (sum(seconds) / len(seconds)) / (cfg.val_prompts * len(cfg.val_seeds)) if seconds else 0.6
    val_clips = (len(v.sweep) + 1) * cfg.val_prompts * len(cfg.val_seeds)
    return elapsed + train + per_clip * (val_clips + 3 * cfg.test_prompts * len(cfg.test_seeds))


def decide(res: dict) -> str:
    """Whether the challenger replaces today's default: it must win validation *and* improve detectably
    on the test against the default."""
    c = res["challenger"]
    if not c:
        return "no challenger was validated: today's defaults stay"
    key = f"{c} λ={res['lambda'][c]:g} vs {DEFAULT} λ={res['lambda'][DEFAULT]:g}"
    e = res["effects"][key]["physics_error"]
    test = (f"on the test {c} vs {DEFAULT} is {100 * e['rel']:+.1f} % [{100 * e['rel_ci'][0]:+.1f}, "
            f"{100 * e['rel_ci'][1]:+.1f}] composite, {e['verdict']} (smallest detectable {100 * e['mde_rel']:.1f} %)")
    if res["best"] != c:
        return f"today's defaults stay: {res['best']} won validation, not {c}; {test}"
    if e["verdict"] != "improved":
        return f"today's defaults stay: {c} won validation but {test}"
    return f"adopt {c}: it won validation and {test}"


def plot(res: dict, path: Path) -> Path:
    """The validation sweep per variant (:func:`effect_table.plot_lambda_sweeps`)."""
    return plot_lambda_sweeps(res, path, {k: v["describe"] for k, v in res["variants"].items()}, "variant", figsize=(12, 3.9))


# ------------------------------------------------------------------------------------- contrasts
def validation_contrasts(res: dict) -> dict:
    """Each variant against the default at their chosen λ, paired on the validation clips (the same
    initial noise): composite and detection with intervals. Exploratory: these clips also chose each λ."""
    from lamo.effect import compare

    cfg, lam, rows = res["config"], res["lambda"], res["per_clip_validation"]
    out = {}
    for k, v in res["variants"].items():
        if k == DEFAULT or DEFAULT not in lam:
            continue
        effects = compare(rows[f"{DEFAULT} λ={lam[DEFAULT]:g}"], rows[f"{k} λ={lam[k]:g}"], VAL_METRICS,
                          n_resamples=cfg["n_resamples"], seed=cfg["seed"])
        out[f"{k} λ={lam[k]:g} vs {DEFAULT} λ={lam[DEFAULT]:g}"] = {"what": v["what"],
                                                                 **{m: e.to_dict() for m, e in effects.items()}}
    return out


# ------------------------------------------------------------------------------------- tables
def tables(res: dict) -> str:
    """The markdown tables of a results file: variants on validation, the full sweep, the contrasts, the test."""
    reused = f"; {len(res['cells_reused'])} cells reused from an interrupted run" if res.get("cells_reused") else ""
    out = [f"Run: `{res['command']}` at commit {res['commit']}, {res['date']}, {res['machine']}, torch {res['torch']}; "
           f"{res['timings']['total_s'] / 60:.1f} min end to end{reused}. "
           f"Dropped: {'; '.join(res['dropped']) or 'nothing'}.", "",
           f"Validation ({res['val_prompts']} prompts × {len(res['val_seeds'])} seeds = "
           f"{res['val_prompts'] * len(res['val_seeds'])} clips): each variant at the λ the benchmark's rule chose "
           f"(detection tolerance {res['config']['detection_tolerance']:g}).", "",
           "| variant | what changes | prior (parameters, validation cosine) | λ | composite physics error | "
           "detection rate (difference) |", "|---|---|---|---|---|---|"]
    for k, v in res["variants"].items():
        e = res["validation"][k][str(float(res["lambda"][k]))]
        p = res["prior"][v["prior"]]
        tag = " (best)" if k == res["best"] else (" (challenger)" if k == res["challenger"] else "")
        out.append(f"| {k}{tag} | {v['what']} | {v['prior']} ({p['parameters_m']:.3f} M, {p['val_cosine']:.3f}) | "
                   f"{res['lambda'][k]:g} | {pct(e['physics_error'])} | {pct(e['detection_rate'], 'diff', 1.0, '', 3)} |")
    ext = ", ".join(f"{k} λ={v:g}" for k, v in res["extended"].items()) or "none"
    out += ["", f"Best on validation: {res['best']} — {res['best_why']}. Best challenger: {res['challenger']} — "
            f"{res['challenger_why']}. Points added past a sweep's edge: {ext}.", "",
            "Validation sweep, every variant and λ:", ""]
    out += [line.replace("| prior |", "| variant |") for line in sweep_table(res["validation"])]
    if res.get("validation_contrasts"):
        out += contrast_lines(res["validation_contrasts"], "Validation, one choice at a time: each variant vs the default at their chosen λ, paired on the "
                "same clips (exploratory: these clips chose λ).")
    out += test_lines(res)
    out += ["", f"Decision: {res['decision']}."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from lamo.demo.run import DEFAULT_PRIOR, DemoConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="", help="the backbone pipeline folder (default: the shipped demo backbone)")
    p.add_argument("--prior", default=str(DEFAULT_PRIOR),
                   help="the default's τ = 1 small prior (default: the shipped one; '': train it here like the others)")
    p.add_argument("--out", default="runs/guidance-ablations", help="folder for the cached cells and trained priors")
    p.add_argument("--results", default="benchmarks/results/guidance_ablations_cpu.json")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--variants", nargs="+", default=[v.name for v in VARIANTS], choices=[v.name for v in VARIANTS],
                   help="which variants (the default is always run)")
    p.add_argument("--sweep", type=float, nargs="+", default=None, help="one λ sweep for every variant (tests)")
    p.add_argument("--no-extend", action="store_true", help="no extra λ past a sweep's edge")
    p.add_argument("--budget-min", type=float, default=0.0,
                   help="drop a variant whose prior must be trained when the projected run would exceed this many "
                        "minutes (0: never)")
    p.add_argument("--table", default="", help="print the tables of a finished results file and exit")
    add_size_args(p)  # small settings, for tests
    args = p.parse_args(argv)
    if args.table:
        print(tables(json.loads(Path(args.table).read_text())))
        return 0
    chosen = [v for v in VARIANTS if v.name == DEFAULT or v.name in args.variants]
    if args.sweep:
        chosen = [replace(v, sweep=tuple(args.sweep)) for v in chosen]
    cfg = DemoConfig(preset="guidance-ablations", prior="", selection="", finetunes={}, flowmo_sweep=(),
                     threads=args.threads, sweep=tuple(sorted({lam for v in chosen for lam in v.sweep})),
                     **size_config(args))
    if args.backbone:
        cfg = replace(cfg, backbone=args.backbone)
    res = run(cfg, Path(args.out), Path(args.results), Path(args.prior) if args.prior else None, chosen, budget_min=args.budget_min,
              extend=not args.no_extend,
              command=shlex.join(["python", "benchmarks/guidance_ablations.py", *(sys.argv[1:] if argv is None else argv)]))
    print(tables(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
