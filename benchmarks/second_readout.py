"""MPG's effect read by two independent readouts, and the balls' size against the world's.

Samples the baseline and MPG at the shipped prior's selection (``src/lamo/assets/demo-prior``: its
``selection.json`` gives λ and ρ; CFG and steps as it was chosen under) on held-out prompts of the effect
benchmark (:func:`lamo.demo.run.held_out_clips`, world seed 3) with the same initial noise per (seed,
prompt) pair as ``lamo demo`` (generator seed ``1000·s + i``), and scores every clip — and the
ground-truth render of its caption — with

* **readout A**, the project's: :func:`lamo.physics.metrics.evaluate_clip` (colour-blob tracker,
  thresholded contacts) and its composite (:func:`lamo.effect.compare`);
* **readout B**, :mod:`lamo.physics.readout`: template-matched centres, BIC-chosen piecewise
  constant-acceleration fits, no contact thresholds;
* **size fidelity** (:func:`lamo.physics.readout.size_fidelity`): generated / ground-truth ball area;
* today's **jump rate against its threshold** (:func:`lamo.physics.readout.jump_rate_curve`).

Both readouts are summarised the same robust way (:func:`lamo.physics.readout.paired_change`:
per-clip log-ratios, medians, share improved, Wilcoxon p, bootstrap intervals). Every clip's frames and
row are cached in ``--out/clips`` (a killed run resumes). Writes ``--results`` (rows, summaries,
provenance) and a PNG beside it::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/second_readout.py --out runs/second-readout \\
        --results benchmarks/results/second_readout_cpu.json --prompts 48 --seeds 0 1 --threads 1

``--table FILE`` prints the summary tables of a finished results file again.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np

#: Readout A's metrics compared the robust way, and readout B's.
A_METRICS = ["ballistic_residual", "gravity_error", "jump_rate"]
B_METRICS = ["ballistic_residual", "gravity_error", "unexplained_dv", "unexplained_dv_rms"]
THRESHOLDS = [0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0]  # px/frame²; today's is max(1, 2g) = 1.0


def _score_clip(frames: np.ndarray, world, truth_b: dict | None) -> dict:
    from lamo.physics.metrics import ClipError, evaluate_clip
    from lamo.physics.readout import jump_rate_curve, read_clip, size_fidelity

    row: dict = {}
    try:
        row["A"] = evaluate_clip(frames, world).to_dict()
    except ClipError as e:
        row["A"] = {"error": str(e)}
    row["B"] = read_clip(frames, world).to_dict()
    row["jump_rate_curve"] = jump_rate_curve(frames, world, THRESHOLDS)
    if truth_b is not None:
        row["size"] = size_fidelity(row["B"], truth_b, world)
    return row


def _col(rows: list[dict], readout: str, metric: str) -> np.ndarray:
    return np.array([float(r[readout].get(metric, math.nan)) if r[readout].get(metric) is not None else math.nan
                     for r in rows])


def run(args) -> dict:
    import torch
    from tqdm.auto import tqdm

    from lamo.demo.run import DemoConfig, _load_pipeline, held_out_clips, provenance
    from lamo.effect import COMPOSITE, compare
    from lamo.physics.readout import paired_change, read_clip, size_fidelity
    from lamo.prior import MotionPrior

    t0 = time.time()
    if args.threads:
        torch.set_num_threads(args.threads)
    sel = json.loads((Path(args.prior) / "selection.json").read_text())
    lam, rho = float(sel["lambda"]), float(sel["window"])
    steps, cfg_scale = int(sel.get("steps", 25)), float(sel.get("guidance_scale", sel.get("cfg_scale", 2.0)))
    cfg = DemoConfig(backbone=args.backbone, prior=args.prior, steps=steps, cfg_scale=cfg_scale, window=rho)
    pipe, meta, preset, world = _load_pipeline(cfg)
    prior = MotionPrior.from_pretrained(args.prior).float().eval()
    clips = held_out_clips(world, args.prompts)
    prompts = [c.caption for c in clips]
    variants = {"baseline": 0.0, f"MPG λ={lam:g} ρ={rho:g}": lam}
    cache = Path(args.out) / "clips"

    truth = []
    for i, c in enumerate(clips):
        b = read_clip(c.frames, world).to_dict()
        row = _score_clip(c.frames, world, None)
        row["size"] = size_fidelity(b, b, world)
        truth.append({"prompt_index": i, "caption": c.caption, **row})

    pairs = [(s, i) for s in args.seeds for i in range(len(prompts))]
    rows: dict[str, list[dict]] = {}
    sample_s = {}
    for name, lam_v in variants.items():
        folder = cache / ("baseline" if lam_v == 0 else f"mpg_lam{lam_v:g}_rho{rho:g}_cfg{cfg_scale:g}_steps{steps}")
        folder.mkdir(parents=True, exist_ok=True)
        todo = [(s, i) for s, i in pairs if not (folder / f"s{s}_p{i}.json").is_file()]
        t_v = time.time()
        bar = tqdm(total=len(pairs), initial=len(pairs) - len(todo), desc=name, unit="clip", dynamic_ncols=True)
        for c0 in range(0, len(todo), args.chunk):
            chunk = todo[c0:c0 + args.chunk]
            t_c = time.time()
            gens = [torch.Generator().manual_seed(1000 * s + i) for s, i in chunk]  # as lamo.demo.run._sample
            out = pipe(prompt=[prompts[i] for _, i in chunk], generator=gens, num_frames=preset["num_frames"],
                       height=preset["size"], width=preset["size"], num_inference_steps=steps,
                       guidance_scale=cfg_scale, max_sequence_length=preset["max_text_len"], output_type="np",
                       motion_prior=prior, motion_guidance_scale=lam_v, motion_guidance_window=rho,
                       motion_guidance_mode="output")
            frames = (np.clip(out.frames, 0, 1) * 255).round().astype(np.uint8)
            per_clip = (time.time() - t_c) / len(chunk)
            for (s, i), f in zip(chunk, frames):
                np.savez_compressed(folder / f"s{s}_p{i}.npz", frames=f)
                row = {"seed": s, "prompt_index": i, "caption": prompts[i], "sample_s": per_clip,
                       **_score_clip(f, world, truth[i]["B"])}
                (folder / f"s{s}_p{i}.json").write_text(json.dumps(row))
            bar.update(len(chunk))
        bar.close()
        sample_s[name] = {"this_run_s": time.time() - t_v}
        if args.rescore:  # the readouts changed: score the cached frames again
            for s, i in tqdm(pairs, desc=f"rescoring {name}", unit="clip", dynamic_ncols=True):
                f = np.load(folder / f"s{s}_p{i}.npz")["frames"]
                old = json.loads((folder / f"s{s}_p{i}.json").read_text())
                row = {"seed": s, "prompt_index": i, "caption": prompts[i], "sample_s": old.get("sample_s"),
                       **_score_clip(f, world, truth[i]["B"])}
                (folder / f"s{s}_p{i}.json").write_text(json.dumps(row))
        rows[name] = [json.loads((folder / f"s{s}_p{i}.json").read_text()) for s, i in pairs]
        sample_s[name]["all_clips_s"] = sum(r.get("sample_s") or 0.0 for r in rows[name])  # cached clips included

    base, (mpg_name, mpg) = rows["baseline"], list(rows.items())[1]
    summary = {"A": {}, "B": {}, "size": {}, "jump_rate_vs_threshold": {}}
    for m in A_METRICS:
        summary["A"][m] = paired_change(_col(base, "A", m), _col(mpg, "A", m), args.n_resamples, args.seed)
    for m in B_METRICS:
        summary["B"][m] = paired_change(_col(base, "B", m), _col(mpg, "B", m), args.n_resamples, args.seed)
    flat = lambda rs: [{**r["A"]} for r in rs]  # noqa: E731
    eff = compare(flat(base), flat(mpg), [COMPOSITE, *A_METRICS], n_resamples=args.n_resamples, seed=args.seed)
    summary["A_compare"] = {m: {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(e).items()}
                            for m, e in eff.items()}
    for label, rs in (("ground truth", truth), ("baseline", base), (mpg_name, mpg)):
        ar = np.array([r["size"]["area_ratio"] for r in rs], dtype=float)
        aw = np.array([r["size"]["area_to_world"] for r in rs], dtype=float)
        ir = np.array([r["size"]["in_range"] for r in rs], dtype=float)
        summary["size"][label] = {
            "area_ratio_median": float(np.nanmedian(ar)), "area_ratio_mean": float(np.nanmean(ar)),
            "area_ratio_geomean": float(np.exp(np.nanmean(np.log(ar)))),
            "share_over_1.3": float(np.nanmean(ar > 1.3)), "area_to_world_median": float(np.nanmedian(aw)),
            "in_range": float(np.nanmean(ir)), "n": int(np.isfinite(ar).sum())}
        curve = np.array([r["jump_rate_curve"] for r in rs], dtype=float)  # (N, len(THRESHOLDS))
        summary["jump_rate_vs_threshold"][label] = [float(v) for v in np.nanmean(curve, axis=0)]
    summary["size"]["MPG vs baseline"] = paired_change(
        [abs(math.log(r["size"]["area_ratio"])) if r["size"]["area_ratio"] > 0 else math.nan for r in base],
        [abs(math.log(r["size"]["area_ratio"])) if r["size"]["area_ratio"] > 0 else math.nan for r in mpg],
        args.n_resamples, args.seed)
    jb, jm = (summary["jump_rate_vs_threshold"][k] for k in ("baseline", mpg_name))
    summary["jump_rate_vs_threshold"]["relative_change"] = [m / b - 1 if b > 0 else math.nan for b, m in zip(jb, jm)]
    summary["truth"] = {m: float(np.nanmedian(_col(truth, "B", m))) for m in B_METRICS + ["gravity_fit", "break_rate"]}
    summary["truth_A"] = {m: float(np.nanmedian(_col(truth, "A", m))) for m in A_METRICS}
    summary["medians"] = {k: {"A": {m: float(np.nanmedian(_col(rs, "A", m))) for m in A_METRICS},
                              "B": {m: float(np.nanmedian(_col(rs, "B", m))) for m in B_METRICS + ["break_rate"]}}
                          for k, rs in (("baseline", base), (mpg_name, mpg))}
    prov = provenance(args.command)
    res = {**prov, "backbone": args.backbone, "prior": args.prior, "lambda": lam, "window": rho, "steps": steps,
           "guidance_scale": cfg_scale, "prompts": args.prompts, "seeds": list(args.seeds), "n_clips": len(pairs),
           "thresholds": THRESHOLDS, "today_threshold": max(1.0, 2 * world.gravity), "sampling_s": sample_s,
           "total_s": time.time() - t0, "summary": summary,
           "rows": {"ground truth": truth, **rows}}
    return res


def _pct(x: float) -> str:
    return f"{100 * x:+.1f} %" if math.isfinite(x) else "n/a"


def _ci(c) -> str:
    return f"[{100 * c[0]:+.1f}, {100 * c[1]:+.1f}]"


def tables(res: dict) -> str:
    s = res["summary"]
    lines = [f"MPG λ={res['lambda']:g} ρ={res['window']:g} vs baseline, {res['n_clips']} held-out clips "
             f"(CFG {res['guidance_scale']:g}, {res['steps']} steps)", "",
             "| readout | metric | median change [95 % CI] | mean of log-ratios | ratio of means [95 % CI] "
             "| share improved | Wilcoxon p | n |", "|---|---|---|---|---|---|---|---|"]
    for ro, label in (("A", "A (tracker + metrics)"), ("B", "B (template + piecewise fits)")):
        for m, e in s[ro].items():
            lines.append(f"| {label} | {m} | {_pct(e['median_change'])} {_ci(e['median_change_ci'])} | "
                         f"{_pct(e['mean_log_change'])} {_ci(e['mean_log_change_ci'])} | "
                         f"{_pct(e['mean_change'])} {_ci(e['mean_change_ci'])} | {100 * e['share_improved']:.0f} % | "
                         f"{e['wilcoxon_p']:.2g} | {e['n']} |")
    c = s["A_compare"]["physics_error"]
    lines += ["", f"Readout A composite (lamo.effect.compare): {_pct(c['rel'])} {_ci(c['rel_ci'])}, "
              f"p_holm {c['p_holm']:.2g}, n {c['n']}", "",
              "| clips | area / ground truth: median | mean | geometric mean | share > 1.3× | area / world mean | "
              "radius in world range |", "|---|---|---|---|---|---|---|"]
    for k, v in s["size"].items():
        if k == "MPG vs baseline":
            continue
        lines.append(f"| {k} | {v['area_ratio_median']:.2f} | {v.get('area_ratio_mean', math.nan):.2f} | "
                     f"{v['area_ratio_geomean']:.2f} | "
                     f"{100 * v['share_over_1.3']:.0f} % | {v['area_to_world_median']:.2f} | {100 * v['in_range']:.0f} % |")
    e = s["size"]["MPG vs baseline"]
    lines += ["", f"|ln size ratio| MPG vs baseline: median {_pct(e['median_change'])} {_ci(e['median_change_ci'])}, "
              f"Wilcoxon p {e['wilcoxon_p']:.2g}", "", "| jump threshold (px/frame²) | " +
              " | ".join(f"{t:g}" for t in res["thresholds"]) + " |", "|---" * (len(res["thresholds"]) + 1) + "|"]
    for k, v in s["jump_rate_vs_threshold"].items():
        fmt = _pct if k == "relative_change" else (lambda x: f"{x:.3f}")
        lines.append(f"| {k} | " + " | ".join(fmt(x) for x in v) + " |")
    return "\n".join(lines)


def plot(res: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res["rows"]
    names = list(rows)
    base, mpg = rows[names[1]], rows[names[2]]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), gridspec_kw={"width_ratios": [2.2, 1, 1]})
    ax = axes[0]
    series = [("A", m) for m in A_METRICS[:2]] + [("B", m) for m in B_METRICS[:3]]
    data, labels = [], []
    for ro, m in series:
        b = _col(base, ro, m)
        v = _col(mpg, ro, m)
        ok = np.isfinite(b) & np.isfinite(v) & (b > 0) & (v > 0)
        data.append(np.log(v[ok] / b[ok]))
        labels.append(f"{ro}: {m}\n(n={ok.sum()})")
    pos = np.arange(len(data))
    ax.violinplot(data, positions=pos, showmedians=True)
    rng = np.random.default_rng(0)
    for p_, d in zip(pos, data):
        ax.scatter(p_ + rng.uniform(-0.12, 0.12, len(d)), d, s=6, alpha=0.5, color="k")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(pos, labels, fontsize=8)
    ax.set_ylabel("per-clip ln(MPG / baseline)  (< 0: MPG lower)")
    ax.set_title(f"{names[2]} vs baseline, {res['n_clips']} held-out clips: A = tracker, B = second readout",
                 fontsize=9)
    ax = axes[1]
    for k, v in res["summary"]["jump_rate_vs_threshold"].items():
        if k != "relative_change":
            ax.plot(res["thresholds"], v, marker="o", label=k)
    ax.axvline(res["today_threshold"], color="grey", ls=":", label="today's threshold")
    ax.set_xscale("log")
    ax.set_xticks(res["thresholds"], [f"{t:g}" for t in res["thresholds"]], fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel("jump threshold (px/frame²)")
    ax.set_ylabel("readout A jump rate (mean)")
    ax2 = ax.twinx()
    ax2.plot(res["thresholds"], [100 * x for x in res["summary"]["jump_rate_vs_threshold"]["relative_change"]],
             color="k", ls="--", label="MPG change (%)")
    ax2.set_ylabel("MPG vs baseline (%)")
    ax.legend(fontsize=7, loc="upper right")
    ax2.legend(fontsize=7, loc="center right")
    ax.set_title("today's jump rate against its threshold", fontsize=9)
    ax = axes[2]
    bins = np.linspace(-1.0, 1.5, 26)
    for k in names[1:]:
        ar = np.array([r["size"]["area_ratio"] for r in rows[k]], dtype=float)
        ax.hist(np.log(ar[np.isfinite(ar) & (ar > 0)]), bins=bins, histtype="step", label=k, lw=1.5)
    ax.axvline(0, color="k", lw=1, label="ground truth")
    ax.axvline(math.log(1.3), color="grey", ls=":", lw=1, label="1.3×")
    ax.set_xlabel("ln(ball area / ground truth's)")
    ax.set_ylabel("clips")
    ax.legend(fontsize=7)
    ax.set_title("size fidelity (readout B)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--backbone", default=str(root / "src/lamo/assets/demo-backbone"))
    ap.add_argument("--prior", default=str(root / "src/lamo/assets/demo-prior"),
                    help="a prior folder with its selection.json (λ, ρ, CFG, steps)")
    ap.add_argument("--out", default="runs/second-readout", help="cache of sampled clips and their rows")
    ap.add_argument("--results", default="benchmarks/results/second_readout_cpu.json")
    ap.add_argument("--prompts", type=int, default=48, help="held-out prompts (world seed 3)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--chunk", type=int, default=8, help="clips per pipeline call")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--n-resamples", type=int, default=4999)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rescore", action="store_true", help="score the cached clips again (after a readout change)")
    ap.add_argument("--table", metavar="FILE", help="print the tables of a finished results file and exit")
    args = ap.parse_args(argv)
    if args.table:
        print(tables(json.loads(Path(args.table).read_text())))
        return 0
    if args.prompts < 1 or not args.seeds or args.chunk < 1:
        ap.error("--prompts and --chunk must be ≥ 1 and --seeds non-empty")
    args.command = "python " + " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    res = run(args)
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=float) + "\n")
    plot(res, out.with_suffix(".png"))
    print(tables(res))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
