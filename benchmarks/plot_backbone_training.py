"""The shipped demo backbone's training curves, from the logs kept beside its weights.

    python benchmarks/plot_backbone_training.py            # -> benchmarks/results/world_backbone_training.png

Left: the autoencoder's reconstruction loss (object pixels up-weighted, clean and noised latents).
Right: the backbone's denoising (v-prediction) loss per logged interval, one colour per training stage (the
16 000-step schedule stopped at 6000, then the two continuations with fresh optimisers), with the checkpoints
of the graded-quality table marked.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default=str(ROOT / "src/lamo/assets/demo-backbone"))
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/world_backbone_training.png"))
    p.add_argument("--marks", type=int, nargs="*", default=[1000, 4000, 6000, 10000, 12000, 16000], help="steps to mark")
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(args.backbone)
    ae, bb = read(folder / "autoencoder_loss.jsonl"), read(folder / "train_loss.jsonl")
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot([r["step"] for r in ae], [r["loss"] for r in ae], "o-", ms=3)
    ax[0].set(xlabel="autoencoder step", ylabel="reconstruction loss", yscale="log", title="autoencoder")
    stages = list(dict.fromkeys(r.get("stage", "schedule") for r in bb))
    for stage in stages:
        part = [r for r in bb if r.get("stage", "schedule") == stage]
        ax[1].plot([r["step"] for r in part], [r["denoise"] for r in part], "o-", ms=3, label=stage)
    if len(stages) > 1:
        ax[1].legend(fontsize=7)
    for m in args.marks:
        ax[1].axvline(m, color="grey", lw=0.8, ls=":")
    ax[1].set(xlabel="backbone step (batch 256)", ylabel="v-prediction MSE (mean per interval)", yscale="log",
              title="transformer + text encoder")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(args.out)


if __name__ == "__main__":
    main()
