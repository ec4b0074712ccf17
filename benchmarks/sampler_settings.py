"""Which sampler settings make the demo backbone's clips look like the world: classifier-free guidance
scale and number of denoising steps, chosen on validation prompts only.

Samples the validation prompts of the effect benchmark (32 prompts of world seed 4 × seeds 100, 101 —
never the test's) with each ``STEPS×CFG`` setting on the same initial noise, scores every clip with the
world's tracker and reports, per setting, the appearance metrics (detection, permanence, ghosts, radius
CV, background noise) and the physics ones, and each setting's paired effect on the permanence error
against the reference setting (the first one given). The chosen setting is the one with the lowest
permanence error (the furthest-off appearance target) whose detection rate is not lower than the
reference's by more than 0.01; an exact tie goes to the lower radius CV, then the higher detection rate.
Writes a results file with every clip's row and a plot::

    OMP_NUM_THREADS=1 python benchmarks/sampler_settings.py --backbone src/lamo/assets/demo-backbone \\
        --settings 25x4 25x1 25x1.5 25x2 25x3 25x7 50x4 --threads 1 \\
        --results benchmarks/results/sampler_settings_cpu.json

``--table FILE`` prints the table of a finished results file again. About 40 s per setting of 25 steps
on one CPU core.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import re
import sys
import time
from pathlib import Path

APPEARANCE = ["detection_rate", "permanence_error", "ghost_rate", "radius_cv", "background_noise"]
PHYSICS = ["ballistic_residual", "jump_rate"]
DETECTION_TOLERANCE = 0.01


def parse_setting(text: str) -> tuple[int, float]:
    """``"25x2"`` → ``(25, 2.0)``: denoising steps × classifier-free guidance scale."""
    try:
        steps, scale = text.lower().split("x")
        steps, scale = int(steps), float(scale)
    except ValueError:
        raise SystemExit(f"a setting is STEPSxCFG, e.g. 25x2; got {text!r}") from None
    if steps < 1 or not (math.isfinite(scale) and scale >= 1):
        raise SystemExit(f"a setting needs ≥ 1 step and a guidance scale ≥ 1; got {text!r}")
    return steps, scale


def label(steps: int, scale: float) -> str:
    return f"{steps} steps, CFG {scale:g}"


def run(backbone: str, settings: list[tuple[int, float]], n_prompts: int = 32, seeds: tuple[int, ...] = (100, 101),
        threads: int = 0, **config) -> dict:
    """Sample and score the validation prompts under every setting; ``config``: more
    :class:`lamo.demo.run.DemoConfig` fields (e.g. ``world_overrides`` or ``chunk``)."""
    import torch

    from lamo.demo.run import VAL_WORLD_SEED, DemoConfig, _load_pipeline, _sample, _score, validation_prompts
    from lamo.effect import compare
    from lamo.physics.metrics import aggregate

    if threads:
        torch.set_num_threads(threads)
    pipe, meta, preset, world = _load_pipeline(DemoConfig(backbone=backbone, **config))
    prompts = validation_prompts(world, n_prompts)
    rows, seconds = {}, {}
    for steps, scale in settings:
        t = time.time()
        frames, _ = _sample(pipe, prompts, seeds, DemoConfig(backbone=backbone, steps=steps, guidance_scale=scale, **config), preset,
                            None, 0.0, desc=label(steps, scale))
        rows[label(steps, scale)] = _score(frames, world, prompts, seeds)
        seconds[label(steps, scale)] = time.time() - t
        print(f"{label(steps, scale)}: {seconds[label(steps, scale)]:.0f} s", file=sys.stderr, flush=True)
    ref = label(*settings[0])
    out = {"backbone": backbone, "backbone_step": meta.get("step"), "reference": ref, "val_world_seed": VAL_WORLD_SEED,
           "val_prompts": n_prompts, "val_seeds": list(seeds), "host": platform.node(), "threads": threads,
           "settings": []}
    for (steps, scale) in settings:
        name = label(steps, scale)
        eff = compare(rows[ref], rows[name], ["permanence_error", "detection_rate"], n_resamples=4999, seed=0)
        out["settings"].append({
            "name": name, "steps": steps, "cfg_scale": scale, "seconds": seconds[name],
            "summary": aggregate(rows[name], APPEARANCE + PHYSICS),
            "vs_reference": {m: e.to_dict() if hasattr(e, "to_dict") else vars(e) for m, e in eff.items()},
            "rows": rows[name],
        })
    out["chosen"] = choose(out)
    return out


def choose(res: dict) -> str:
    """Lowest permanence error among settings whose detection rate is within the tolerance of the reference's."""
    def mean(s, m):  # undefined (no clip scored) counts as the worst
        v = s["summary"][m]["mean"]
        return v if v is not None and math.isfinite(v) else (math.inf if m == "permanence_error" else -math.inf)

    ref = next(s for s in res["settings"] if s["name"] == res["reference"])
    floor = mean(ref, "detection_rate") - DETECTION_TOLERANCE
    ok = [s for s in res["settings"] if mean(s, "detection_rate") >= floor] or [ref]
    # an exact tie on permanence (it counts frames, so ties happen) goes to the lower radius CV, the other
    # appearance target, then to the higher detection rate — never to the order the settings were given in
    return min(ok, key=lambda s: (mean(s, "permanence_error"), mean(s, "radius_cv"), -mean(s, "detection_rate")))["name"]


def fmt(x, digits=3) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def table(res: dict) -> str:
    cols = APPEARANCE + PHYSICS
    lines = ["| setting | " + " | ".join(cols) + " | permanence vs reference (95 % CI) | s / 64 clips |",
             "|---" * (len(cols) + 3) + "|"]
    for s in res["settings"]:
        e = s["vs_reference"]["permanence_error"]
        ci = e.get("diff_ci") or [math.nan, math.nan]
        diff = "reference" if s["name"] == res["reference"] else f"{e['diff']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"
        mark = " **(chosen)**" if s["name"] == res["chosen"] else ""
        lines.append(f"| {s['name']}{mark} | " + " | ".join(fmt(s["summary"][m]["mean"]) for m in cols)
                     + f" | {diff} | {s['seconds']:.0f} |")
    return "\n".join(lines)


def scene_kind(caption: str) -> str:
    """The kind of scene a world caption asks for: two balls, one ball dropped, one ball leaving the frame,
    or another one-ball scene."""
    if re.search(r" and an? \w+ ball", caption):
        return "two balls"
    if "dropped" in caption:
        return "one ball, dropped"
    if "leaves the scene" in caption:
        return "one ball, leaves the frame"
    return "one ball, other"


def by_scene(res: dict) -> str:
    """Per setting and kind of scene: clips, mean appearance metrics and the kind's share of the setting's
    total permanence error (where the ghosts are). ``res``: a results file of this script, or of the effect
    benchmark (``lamo bench effect``: one "setting" per variant, the ground truth left out)."""
    from lamo.physics.metrics import aggregate

    cols = ["permanence_error", "ghost_rate", "radius_cv", "detection_rate"]
    lines = ["| setting | scene | clips | " + " | ".join(cols) + " | share of permanence error |",
             "|---" * (len(cols) + 4) + "|"]
    settings = res["settings"] if "settings" in res else \
        [{"name": k, "rows": rows} for k, rows in res["per_clip"].items() if k != "ground truth"]
    for s in settings:
        groups: dict[str, list] = {}
        for r in s["rows"]:
            groups.setdefault(scene_kind(r["caption"]), []).append(r)
        total = sum(r.get("permanence_error") or 0.0 for r in s["rows"]) or math.nan
        for kind in sorted(groups):
            rows = groups[kind]
            means = aggregate(rows, cols)
            share = sum(r.get("permanence_error") or 0.0 for r in rows) / total
            lines.append(f"| {s['name']} | {kind} | {len(rows)} | " + " | ".join(fmt(means[m]["mean"]) for m in cols)
                         + f" | {fmt(share, 2)} |")
    return "\n".join(lines)


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_steps: dict[int, list] = {}
    for s in res["settings"]:
        by_steps.setdefault(s["steps"], []).append(s)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, m in zip(axes, ["permanence_error", "ghost_rate", "jump_rate"]):
        for steps, ss in sorted(by_steps.items()):
            ss = sorted(ss, key=lambda s: s["cfg_scale"])
            ax.plot([s["cfg_scale"] for s in ss], [s["summary"][m]["mean"] for s in ss], "o-", label=f"{steps} steps")
        ax.set_xlabel("classifier-free guidance scale")
        ax.set_title(m.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"sampler settings on {res['val_prompts']} validation prompts × {len(res['val_seeds'])} seeds "
                 f"(chosen: {res['chosen']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbone", default="src/lamo/assets/demo-backbone")
    ap.add_argument("--settings", nargs="+", default=["25x4", "25x1", "25x1.5", "25x2", "25x3", "25x7", "50x4"],
                    help="STEPSxCFG; the first is the reference")
    ap.add_argument("--val-prompts", type=int, default=32)
    ap.add_argument("--seeds", type=int, nargs="+", default=[100, 101])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--results", default="runs/sampler_settings.json")
    ap.add_argument("--table", help="print the table of a finished results file")
    ap.add_argument("--by-scene", help="print a finished results file's appearance per kind of scene (this "
                                       "script's, or an effect benchmark's results.json)")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return
    if args.by_scene:
        print(by_scene(json.loads(Path(args.by_scene).read_text())))
        return
    results = Path(args.results)
    if results.exists():
        raise SystemExit(f"{results} exists; pass another --results (or --table {results} to print it)")
    res = run(args.backbone, [parse_setting(s) for s in args.settings], args.val_prompts, tuple(args.seeds),
              args.threads)
    res["command"] = " ".join(sys.argv)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(res, indent=1, default=float))
    plot(res, results.with_suffix(".png"))
    print(table(res))


if __name__ == "__main__":
    main()
