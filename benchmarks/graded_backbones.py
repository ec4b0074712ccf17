"""How much Motion Prior Guidance helps as a function of how good the backbone already is.

Runs the effect benchmark (``lamo.demo.run``, the engine of ``lamo bench effect``) on each checkpoint of
one backbone training run with one motion prior: λ chosen per checkpoint on the validation prompts
(the benchmark's sweep and rule), then baseline vs MPG on the held-out test prompts × seeds with the
same initial noise. A finished ``lamo bench effect`` run on one of the checkpoints can stand in for it
(``LABEL=path/to/results.json``) when it used the same prior. Writes ``OUT/graded.json`` (one row per
checkpoint: appearance and physics of the baseline, the ground truth, λ, MPG's paired effects) and
``OUT/graded.png``, and prints the markdown table of ``benchmarks/README.md``. A prior is conditioned on the
backbone's prompt embedding, and the text encoder trains with the backbone, so one prior fits the
checkpoint whose encoder it was trained with best; ``--own-prior TAU`` trains one per checkpoint instead::

    python benchmarks/graded_backbones.py --prior runs/effect-world/prior-tau1 --out runs/graded \\
        --backbone 1000=runs/world-gpu/pipeline-step-1000 4000=runs/world-gpu/pipeline-step-4000 \\
                   6000=runs/effect-world/results.json --threads 1

``--table OUT/graded.json`` prints the table of a finished run again.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

APPEARANCE = ["detection_rate", "permanence_error", "ghost_rate", "radius_cv", "background_noise"]
PHYSICS = ["ballistic_residual", "gravity_error", "jump_rate"]
EFFECTS = ["physics_error", "ballistic_residual", "jump_rate", "detection_rate", "permanence_error"]


def run_one(label: str, source: str, prior: str, out: Path, **config) -> dict:
    """Results of the effect benchmark for one checkpoint (run here unless ``source`` is a results file;
    a finished run in ``OUT/LABEL`` is reused). ``config``: more :class:`lamo.demo.run.DemoConfig` fields."""
    src = Path(source)
    if src.suffix == ".json":
        return json.loads(src.read_text())
    from lamo.demo.run import DemoConfig, run_demo

    cfg = DemoConfig(**{"gifs": 4, **config, "out": str(out / label), "preset": "graded", "backbone": str(src),
                        "prior": prior, "selection": "", "finetunes": {}, "flowmo_sweep": (), "ablations": False})
    if not (out / label / "results.json").is_file():
        run_demo(cfg=cfg)
    return json.loads((out / label / "results.json").read_text())


def graded(backbones: list[tuple[str, str]], prior: str, out: str | Path, **config) -> list[dict]:
    """Run (or read) every checkpoint, write ``OUT/graded.json`` and ``OUT/graded.png``; return the rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [row_of(label, run_one(label, source, prior, out, **config)) for label, source in backbones]
    own = f"own τ={config['prior_taus'][0]} prior per checkpoint" if not prior and "prior_taus" in config else None
    (out / "graded.json").write_text(json.dumps({"prior": own or str(prior), "rows": rows}, indent=2, default=float))
    plot(rows, out / "graded.png")
    return rows


def steps_in_all(backbone: dict, _depth: int = 0) -> int | None:
    """A backbone's training steps, counting those of the pipelines it was continued from (``init_from``, followed
    back as far as their ``lamo_demo.json`` files are found). A shipped backbone whose record lists its earlier
    stages (``continued``, ``step`` = all of them) has no ``init_from`` at the top and counts as it is."""
    step, init = backbone.get("step"), backbone.get("train", {}).get("init_from")
    meta = Path(init) / "lamo_demo.json" if init else None
    if step is not None and meta is not None and meta.is_file() and _depth < 16:
        step += steps_in_all(json.loads(meta.read_text()), _depth + 1) or 0
    return step


def row_of(label: str, res: dict) -> dict:
    s, lam = res["summary"], res["lambda"]
    key = next(k for k in res["effects"] if k.startswith("MPG λ=") and k.endswith("vs baseline"))
    mpg, eff = key.split(" vs ")[0], res["effects"][key]
    return {
        "checkpoint": label, "step": steps_in_all(res["backbone"]), "lambda": lam, "window": res.get("window", 0.8),
        "cfg_scale": res["config"].get("guidance_scale", res["config"].get("cfg_scale")), "n": res["n_test_clips"],
        "prior": res["selection"].get("prior"), "commit": res.get("commit"), "command": res.get("command"),
        "baseline": {m: s["baseline"][m] for m in APPEARANCE + PHYSICS if m in s["baseline"]},
        "ground_truth": {m: s["ground truth"][m] for m in APPEARANCE + PHYSICS if m in s["ground truth"]},
        "mpg": {m: s[mpg][m] for m in APPEARANCE + PHYSICS if m in s[mpg]},
        "effect": {m: eff[m] for m in EFFECTS},
    }


def fmt(x: float, digits: int = 3) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def table(rows: list[dict]) -> str:
    cols = APPEARANCE + ["ballistic_residual", "jump_rate"]
    lines = ["| checkpoint (step) | " + " | ".join(cols) + " | λ, ρ (validation) | MPG: composite physics error | "
             "MPG: detection | MPG: permanence |", "|---" * (len(cols) + 5) + "|"]
    gt = rows[-1]["ground_truth"]
    lines.append("| ground truth | " + " | ".join(fmt(gt[m]["mean"]) for m in cols) + " | | | | |")
    for r in rows:
        cells = [fmt(r["baseline"][m]["mean"]) for m in cols]
        eff = []
        for m in ("physics_error", "detection_rate", "permanence_error"):
            e = r["effect"][m]
            lo, hi = e["rel_ci"]
            mark = {"improved": "✓", "worsened": "✗"}.get(e["verdict"], "·")
            eff.append(f"{100 * e['rel']:+.1f} % [{100 * lo:+.1f}, {100 * hi:+.1f}] {mark}")
        lines.append(f"| {r['checkpoint']} ({r['step']}) | " + " | ".join(cells) + f" | {r['lambda']:g}, {r.get('window', 0.8):g} | "
                     + " | ".join(eff) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] if r["step"] is not None else i for i, r in enumerate(rows)]
    scale = "log" if all(x > 0 for x in steps) and len(set(steps)) > 1 else "linear"
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    for m, style in (("permanence_error", "o-"), ("ghost_rate", "s-"), ("radius_cv", "^-")):
        ax[0].plot(steps, [r["baseline"][m]["mean"] for r in rows], style, label=m)
    ax[0].plot(steps, [r["baseline"]["ballistic_residual"]["mean"] for r in rows], "d--", label="ballistic_residual (px)")
    ax[0].set(xlabel="backbone training step", ylabel="baseline (no guidance)", xscale=scale,
              title="the backbone: appearance and motion")
    ax[0].legend(fontsize=7)
    for m, style in (("physics_error", "o-"), ("permanence_error", "s--"), ("detection_rate", "^:")):
        e = [r["effect"][m] for r in rows]
        y = [100 * x["rel"] for x in e]
        err = [[100 * (x["rel"] - x["rel_ci"][0]) for x in e], [100 * (x["rel_ci"][1] - x["rel"]) for x in e]]
        ax[1].errorbar(steps, y, yerr=err, fmt=style, capsize=3, label=m)
    ax[1].axhline(0, color="grey", lw=0.8)
    ax[1].set(xlabel="backbone training step", ylabel="MPG vs baseline, % (95 % CI)", xscale=scale,
              title="what MPG changes, λ chosen on validation")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", nargs="+", default=[], metavar="LABEL=PATH",
                   help="checkpoint pipeline folders (or results.json of a finished run), in training order")
    p.add_argument("--prior", default="", help="the motion prior folder used for every checkpoint")
    p.add_argument("--own-prior", type=int, default=0, metavar="TAU",
                   help="instead of --prior: train a prior at lag TAU for each checkpoint on its own VAE and text "
                        "encoder (a prior is conditioned on the backbone's prompt embedding, which moves as the "
                        "text encoder trains; ~3 min more per checkpoint on one core)")
    p.add_argument("--out", default="runs/graded")
    p.add_argument("--test-prompts", type=int, default=128)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--val-prompts", type=int, default=32)
    p.add_argument("--sweep", type=float, nargs="+", default=[0.3, 1.0, 3.0, 10.0])
    p.add_argument("--windows", type=float, nargs="+", default=[0.8], help="guidance windows ρ swept with λ")
    p.add_argument("--guidance-scale", type=float, default=None, help="classifier-free guidance scale (default: the benchmark's)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--table", default="", help="print the table of a finished graded.json and exit")
    args = p.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())["rows"]))
        return
    if not args.backbone or bool(args.prior) == bool(args.own_prior):
        p.error("give --backbone LABEL=PATH ... and either --prior or --own-prior")
    backbones = [tuple(item.partition("=")[::2]) for item in args.backbone]
    if not all(label and source for label, source in backbones):
        p.error(f"--backbone takes LABEL=PATH, got {args.backbone}")
    rows = graded(backbones, args.prior, args.out, test_prompts=args.test_prompts, test_seeds=tuple(args.seeds),
                  val_prompts=args.val_prompts, sweep=tuple(args.sweep), windows=tuple(args.windows), threads=args.threads,
                  **({} if args.guidance_scale is None else {"guidance_scale": args.guidance_scale}),
                  **({"prior_taus": (args.own_prior,)} if args.own_prior else {}))
    print(table(rows))


if __name__ == "__main__":
    main()
