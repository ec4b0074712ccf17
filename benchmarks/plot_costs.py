"""One picture of what guidance costs on a GPU: MPG's step against the 2 % budget, whole-video time and
extra peak memory of MPG and the FlowMo-style peer, per architecture.

    python benchmarks/plot_costs.py                                   # the H200 runs of 2026-11-26
    python benchmarks/plot_costs.py --runs DIR --out costs.png

Reads the results files of ``bench_guidance_step.py`` and ``bench_sampling.py`` in ``--runs`` (and, for
rows whose results file was lost to a time limit, the lines those scripts printed to ``*.log``).
Within an architecture the newest run with the default MPG budget wins.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
ARCH_LABEL = {"cogvideox-2b": "CogVideoX-2B", "wan-1.3b": "Wan 2.1 1.3B", "cogvideox-5b": "CogVideoX-5B"}
LINE = re.compile(r"^\s*(?P<name>\S+): (?P<s>[\d.]+) s/video .*peak (?P<peak>[\d.]+) GiB")
CMD = re.compile(r"bench_sampling\.py .*--arch (?P<arch>\S+)")


def rows_from_log(path: Path) -> dict[str, dict[str, dict]]:
    """``{arch: {variant: {seconds, peak}}}`` from what bench_sampling printed (one block per arch).

    Where a log holds no ``--arch`` line, blocks are told apart by a repeated ``baseline``: the run2
    log lists CogVideoX-2B first, Wan second (its README says so), and Wan's block is also in a file.
    """
    blocks: list[dict[str, dict]] = []
    for line in path.read_text().splitlines():
        m = LINE.match(line)
        if m:
            if m["name"] == "baseline" or not blocks:
                blocks.append({})
            blocks[-1][m["name"]] = {"seconds": float(m["s"]), "peak": float(m["peak"])}
    archs = [m["arch"] for m in map(CMD.search, path.read_text().splitlines()) if m]
    if len(archs) != len(blocks):
        archs = ["cogvideox-2b", "wan-1.3b"][: len(blocks)]
    return dict(zip(archs, blocks))


def mpg_rows(rec: dict) -> dict[str, dict]:
    """``{budget in GiB: MPG result}`` of one bench_sampling file. A single budget is stored as ``mpg``
    under ``mpg_activation_gib``; files older than that field were made at the default then, 0.5 GiB."""
    res = rec["results"]
    budgets = {f"{float(rec.get('mpg_activation_gib', ['0.5'])[0]):g}": res["mpg"]} if "mpg" in res else {}
    budgets.update({k[4:-3]: v for k, v in res.items() if k.startswith("mpg@") and k.endswith("GiB")})
    return budgets


def sampling_rows(runs: Path) -> dict[str, dict]:
    """Per architecture: baseline, MPG (at the default 2 GiB budget where measured) and FlowMo.

    Files are read in name order (run1 before run2); a later 2 GiB row replaces an earlier one. Rows
    whose results file was lost come from the lines bench_sampling printed to a ``*.log``.
    """
    best: dict[str, dict] = {}

    def take(arch: str, budgets: dict[str, dict], baseline: dict, steps: int | None) -> None:
        row = best.setdefault(arch, {})
        budget = "2" if "2" in budgets else next(iter(budgets), None)
        if budget is not None and (budget == "2" or "mpg" not in row):
            row.update(baseline=baseline, mpg=budgets[budget], mpg_budget=f"{budget} GiB")
            if steps is not None:
                row["steps"] = steps

    for f in sorted(runs.glob("*sampling_*.json")):
        rec = json.loads(f.read_text())
        if "flowmo" in rec["results"]:
            best.setdefault(rec["arch"], {})["flowmo"] = rec["results"]["flowmo"]
        take(rec["arch"], mpg_rows(rec), rec["results"]["baseline"], rec["steps"])
    for log in sorted(runs.glob("*.log")):
        for arch, block in rows_from_log(log).items():
            base = block["baseline"]
            budgets = {name[4:-3]: {"seconds_per_video": r["seconds"], "peak_gib": r["peak"],
                                    "time_vs_baseline": r["seconds"] / base["seconds"],
                                    "extra_peak_gib": r["peak"] - base["peak"]}
                       for name, r in block.items() if name.startswith("mpg@") and name.endswith("GiB")}
            if budgets and best.get(arch, {}).get("mpg_budget") != "2 GiB":
                take(arch, budgets, {"seconds_per_video": base["seconds"], "peak_gib": base["peak"]}, None)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default=str(HERE / "results" / "h200_2026-11-26"))
    p.add_argument("--out", default=None, help="PNG path (default: RUNS/costs.png)")
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = Path(args.runs)
    step_file = next(iter(sorted(runs.glob("*guidance_step_*_cuda.json"))), None)
    rows = sampling_rows(runs)
    if step_file is None or not rows:
        raise SystemExit(f"{runs} holds no guidance-step or sampling results: run benchmarks/gpu_session.sh first")
    step = json.loads(step_file.read_text())
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))

    # (a) one guided step against the 2 % budget
    m = step["measured"]
    S, G = step["steps"], step["mpg_guided_steps"]
    backbone_ms = m["backbone_step"]["seconds"] * 1e3
    budget_ms = 0.02 * S * backbone_ms / G  # 2 % of a video spread over its guided steps
    names = [("mpg_bfloat16_one_call", "bf16, one call"), ("mpg_bfloat16_split", "bf16, 4 calls"),
             ("mpg_float32_one_call", "fp32, one call"), ("mpg_float32_split", "fp32, 11 calls")]
    ms = [m[k]["seconds"] * 1e3 for k, _ in names]
    ax = axes[0]
    bars = ax.bar([label for _, label in names], ms, color=["#2a9d8f" if v <= budget_ms else "#9e9e9e" for v in ms])
    ax.axhline(budget_ms, color="k", ls="--", lw=1)
    ax.bar_label(bars, fmt="%.1f ms", fontsize=9)
    ax.set_ylabel("ms per guided step")
    ax.set_title(f"MPG step at {ARCH_LABEL.get(step['arch'], step['arch'])} size\n"
                 f"(CFG transformer step {backbone_ms:.0f} ms; dashed: 2 % budget, {budget_ms:.1f} ms)", fontsize=10)
    ax.tick_params(axis="x", labelsize=8)

    # (b) whole-video time and (c) extra peak memory, per architecture
    archs = [a for a in ARCH_LABEL if a in rows]
    x = range(len(archs))
    for ax, key, unit, target, title in (
            (axes[1], "time_vs_baseline", "×", 1.02, "time per video, × baseline"),
            (axes[2], "extra_peak_gib", "GiB", 1.0, "extra peak memory over baseline (GiB)")):
        for off, who, color in ((-0.2, "mpg", "#2a9d8f"), (0.2, "flowmo", "#e76f51")):
            for i, a in enumerate(archs):
                r = rows[a].get(who)
                if r is None:
                    continue
                if "error" in r:
                    ax.text(i + off, 2e-3 if key == "extra_peak_gib" else 1.0, "out of\nmemory\n(140 GiB)",
                            ha="center", va="bottom", fontsize=8, color=color)
                    continue
                v = r[key] if key == "time_vs_baseline" else max(r[key], 1e-3)
                ax.bar(i + off, v, width=0.38, color=color)
                ax.text(i + off, v, f"{r[key]:.3f}×" if unit == "×" else f"{r[key]:.2f}", ha="center",
                        va="bottom", fontsize=8)
        ax.axhline(target, color="k", ls="--", lw=1)
        ax.set_xlim(-0.6, len(archs) - 0.4)
        ax.set_xticks(list(x), [f"{ARCH_LABEL[a]}\n{rows[a]['steps']} steps, MPG {rows[a]['mpg_budget']}"
                                for a in archs], fontsize=8)
        ax.set_title(title + ("\n(dashed: MPG's target)"), fontsize=10)
        if key == "extra_peak_gib":
            ax.set_yscale("log")
            ax.set_ylim(1e-3, 300)
        else:
            ax.set_ylim(0.9, 2.5)
    from matplotlib.patches import Patch

    axes[1].legend(handles=[Patch(color="#2a9d8f", label="MPG"), Patch(color="#e76f51", label="FlowMo-style")],
                   loc="upper right", fontsize=8)
    fig.suptitle(f"{step['device']}, bf16, random weights — {runs.name}", fontsize=11)
    fig.tight_layout()
    out = Path(args.out) if args.out else runs / "costs.png"
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
