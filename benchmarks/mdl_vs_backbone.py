"""MDL against the backbone itself: a fine-tune that keeps the backbone's motion, with and without the drift loss.

The shipped fine-tunes (``src/lamo/assets/demo-finetune-{plain,mdl}``) learn from world clips only, and the plain
one moves *worse* than the backbone it starts from — so "MDL beats the plain fine-tune" partly measures the
plain fine-tune's damage. The fairer control here keeps the backbone's motion by construction: half its data are
the backbone's **own samples** (self-distillation: the backbone's clips of world captions at its sampler setting,
25 steps, CFG 2), half world clips (world seed 1, the shipped fine-tunes' data). Both fine-tunes use that same
data, recipe and seed as the shipped ones (``lamo demo train-backbone --init-from … --train-text-encoder no
--steps 800 --lr 1e-4 --warmup 80 --seed 5 --batch-size 16``), one plain, one with the shipped MDL
(``--drift-weight 45 --drift-mode dense_batch_normalized --drift-tau 1``). Then the backbone and both fine-tunes
sample the demo's held-out test clips (48 prompts of world seed 3 × seeds 0, 1, the same initial noise), scored by
both readouts, compared by :func:`lamo.demo.stats.analyse` / :func:`~lamo.demo.stats.analyse_readout_b`::

    OMP_NUM_THREADS=1 python benchmarks/mdl_vs_backbone.py --out runs/mdl-vs-backbone \\
        --results benchmarks/results/mdl_vs_backbone_cpu.json --threads 1 --parallel

**With an anchor** (``--anchor-weight β``, passed to both fine-tunes: ``β·mean((v_θ − v_0)²)`` to the frozen backbone
on the same noisy latent, timestep and caption) the control keeps the backbone's motion by an explicit term instead
of by its data. ``--anchor-grid β₁ β₂ …`` chooses β on validation prompts (48 prompts of world seed 4 × seeds 0, 1
by default; never the test's): walking the grid upwards, the plain fine-tune at each β samples the validation clips
and is compared, paired, with the backbone; the first β whose composite physics error is not detectably worse
(readout A's verdict) is taken, and the MDL fine-tune is trained at it. The test then runs once. World-only data
(``--self-clips 0``): the anchor alone is what keeps the motion::

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/mdl_vs_backbone.py --out runs/mdl-anchor \
        --results benchmarks/results/mdl_anchor_cpu.json --threads 1 --world-clips 1024 --self-clips 0 \
        --anchor-grid 1 10

Each phase is cached in ``--out`` (data set, fine-tunes — they resume —, each variant's validation and test rows).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FT = ["--train-text-encoder", "no", "--lr", "1e-4", "--seed", "5", "--batch-size", "16"]
MDL_ARGS = ["--drift-weight", "45", "--drift-mode", "dense_batch_normalized", "--drift-tau", "1"]


def make_data(args, cfg, pipe, preset, world, folder: Path) -> dict:
    """``args.world_clips`` world clips and ``args.self_clips`` backbone samples of other world captions, written as
    a ``metadata.jsonl`` dataset (``lamo demo train-backbone --data FOLDER``)."""
    import numpy as np
    import torch

    from lamo.physics.dataset import clip_seed, make_clip
    from lamo.video_io import write_video

    if (folder / "metadata.jsonl").is_file():
        return json.loads((folder / "made.json").read_text())
    t = time.time()
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    n_w, n_s = args.world_clips, args.self_clips
    clips = [make_clip(world, clip_seed(1, i)) for i in range(n_w + n_s)]
    records = []
    for i, c in enumerate(clips[:n_w]):
        rel = f"videos/w{i:06d}.mp4"
        write_video(folder / rel, c.frames, pix_fmt="yuv444p")
        records.append({"video": rel, "caption": c.caption, "source": "world"})
    captions = [c.caption for c in clips[n_w:]]
    for s in range(0, n_s, args.chunk):
        part = captions[s:s + args.chunk]
        gens = [torch.Generator().manual_seed(50_000 + s + j) for j in range(len(part))]
        out = pipe(prompt=part, generator=gens, num_frames=preset["num_frames"], height=preset["size"],
                   width=preset["size"], num_inference_steps=cfg.steps, guidance_scale=cfg.guidance_scale,
                   max_sequence_length=preset["max_text_len"], output_type="np")
        frames = (np.clip(out.frames, 0, 1) * 255).round().astype(np.uint8)
        for j, f in enumerate(frames):
            rel = f"videos/s{s + j:06d}.mp4"
            write_video(folder / rel, f, pix_fmt="yuv444p")
            records.append({"video": rel, "caption": part[j], "source": "backbone sample"})
        print(f"self samples {s + len(part)}/{n_s}", flush=True)
    (folder / "world.json").write_text(json.dumps(world.to_dict(), indent=2))
    made = {"world_clips": n_w, "self_clips": n_s, "seconds": time.time() - t}
    (folder / "made.json").write_text(json.dumps(made))
    with open(folder / "metadata.jsonl.tmp", "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    os.replace(folder / "metadata.jsonl.tmp", folder / "metadata.jsonl")
    return made


def _tag(beta: float) -> str:
    """Folder / file suffix of an anchor weight: "" for 0 (the unanchored runs keep their names), else ``-a<β>``."""
    return "" if beta == 0 else f"-a{beta:g}"


def _launch(args, data: Path, folder: Path, extra: list[str], beta: float):
    """Start one fine-tune (resuming from its newest checkpoint); ``None`` when it is already done."""
    if (folder / "pipeline" / "transformer" / "config.json").is_file():
        return None
    cmd = [sys.executable, "-m", "lamo", "demo", "train-backbone", "--data", str(data), "--init-from", args.backbone,
           "--out", str(folder), "--threads", str(args.threads), "--workers", "1", "--preset", args.preset, *FT,
           "--steps", str(args.steps), "--warmup", str(max(1, args.steps // 10)),
           "--save-every", str(max(1, args.steps // 2)), "--drift-weight", "0.0", "--anchor-weight", f"{beta:g}", *extra]
    log = open(folder.parent / f"{folder.name}.log", "a")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})


def train(args, data: Path, out: Path, beta: float, which=("plain", "MDL")) -> dict[str, Path]:
    """The fine-tunes in ``which`` at anchor weight ``beta`` (in parallel with ``--parallel``), each resumed from its
    newest checkpoint; ``{label: transformer folder}``."""
    runs = {f"{w} ({args.label}{_anchor_label(beta)})": (out / f"ft-{w.lower()}{_tag(beta)}", MDL_ARGS if w == "MDL" else [])
            for w in which}
    procs = []
    t = time.time()
    for name, (folder, extra) in runs.items():
        p = _launch(args, data, folder, extra, beta)
        if p is not None:
            procs.append((name, p))
            if not args.parallel:
                p.wait()
    for name, p in procs:
        if p.wait() != 0:
            raise SystemExit(f"fine-tune {name} failed: see {out}")
    print(f"fine-tunes {list(runs)}: {time.time() - t:.0f} s", flush=True)
    return {name: folder / "pipeline" / "transformer" for name, (folder, _) in runs.items()}


def _anchor_label(beta: float) -> str:
    return "" if beta == 0 else f", anchor {beta:g}"


def _rows(pipe, base, path, prompts, seeds, cfg, preset, world, cache: Path, desc: str) -> list[dict]:
    """One variant's scored clips (both readouts), cached in ``cache``."""
    import torch
    from diffusers import CogVideoXTransformer3DModel

    from lamo.demo.variants import _sample, _score

    if cache.is_file():
        return json.loads(cache.read_text())
    pipe.transformer = base if path is None else CogVideoXTransformer3DModel.from_pretrained(path, torch_dtype=torch.float32)
    frames, _ = _sample(pipe, prompts, tuple(seeds), cfg, preset, None, 0.0, desc=desc)
    rows = _score(frames, world, prompts, tuple(seeds), second_readout=True)
    pipe.transformer = base
    cache.write_text(json.dumps(rows, default=float))
    return rows


def choose_anchor(args, cfg, pipe, preset, world, data: Path, out: Path) -> dict:
    """The anchor weight, chosen on validation prompts (world seed :data:`~lamo.demo.variants.VAL_WORLD_SEED`, never
    the test's): the smallest β of ``--anchor-grid`` whose plain fine-tune's composite physics error is not
    detectably worse than the backbone's (readout A's paired verdict, :func:`lamo.demo.stats.analyse`). The grid is
    walked upwards and stops at the first that passes; when none does, the largest is taken (and said so)."""
    from lamo.demo.stats import analyse, analyse_readout_b, headline_both
    from lamo.demo.variants import validation_prompts
    from lamo.effect import COMPOSITE

    prompts = validation_prompts(world, args.val_prompts)
    base = pipe.transformer
    rows = {"baseline": _rows(pipe, base, None, prompts, args.val_seeds, cfg, preset, world, out / "val_baseline.json",
                              "validation: baseline")}
    tried, chosen = [], None
    for beta in sorted(args.anchor_grid):
        (name, path), = train(args, data, out, beta, which=("plain",)).items()
        rows[name] = _rows(pipe, base, path, prompts, args.val_seeds, cfg, preset, world,
                           out / f"val_plain{_tag(beta)}.json", f"validation: {name}")
        key = (name, "baseline")
        effects, _ = analyse(rows, [key], args.n_resamples, cfg.seed)
        _, robust_b = analyse_readout_b(rows, [key], args.n_resamples, cfg.seed)
        e = effects[f"{name} vs baseline"][COMPOSITE]
        tried.append({"anchor_weight": beta, "composite": e.to_dict(), "verdict": e.verdict,
                      "headline_both": headline_both(f"{name} vs baseline", effects, robust_b)})
        print(f"validation, anchor {beta:g}: {tried[-1]['headline_both']}", flush=True)
        if e.verdict != "worsened":
            chosen = beta
            break
    rule = "the smallest anchor weight whose plain fine-tune is not detectably worse than the backbone (composite)"
    if chosen is None:
        chosen = max(args.anchor_grid)
        rule += "; none passed, so the largest of the grid"
    return {"chosen": chosen, "rule": rule, "grid": sorted(args.anchor_grid), "tried": tried,
            "prompts": len(prompts), "seeds": list(args.val_seeds), "per_clip": rows}


def run(args) -> dict:
    import numpy as np
    import torch

    from lamo.demo.run import DemoConfig, _load_pipeline, provenance
    from lamo.demo.stats import analyse, analyse_readout_b, headline_both
    from lamo.demo.variants import add_ground_truth, held_out_clips

    t0 = time.time()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = DemoConfig(backbone=args.backbone, threads=args.threads, chunk=args.chunk, n_resamples=args.n_resamples,
                     world_overrides=json.loads(args.world_overrides))
    pipe, meta, preset, world = _load_pipeline(cfg)
    made = make_data(args, cfg, pipe, preset, world, out / "data")
    t_data = time.time() - t0
    validation = None
    if args.anchor_grid:
        validation = choose_anchor(args, cfg, pipe, preset, world, out / "data", out)
        args.anchor_weight = validation["chosen"]
    t_val = time.time() - t0 - t_data
    tuned = train(args, out / "data", out, args.anchor_weight)
    t_train = time.time() - t0 - t_data - t_val
    clips = held_out_clips(world, args.test_prompts)
    prompts = [c.caption for c in clips]
    base = pipe.transformer
    rows = {}
    for name, path in {"baseline": None, **tuned}.items():
        tag = "" if path is None else _tag(args.anchor_weight)
        rows[name] = _rows(pipe, base, path, prompts, args.test_seeds, cfg, preset, world,
                           out / f"test_{name.split()[0].lower()}{tag}.json", f"test: {name}")
    add_ground_truth(rows, clips, world)
    names = list(tuned)
    comparisons = [(names[0], "baseline"), (names[1], "baseline"), (names[1], names[0])]
    effects, secondary = analyse(rows, comparisons, args.n_resamples, cfg.seed)
    effects_b, robust_b = analyse_readout_b(rows, comparisons, args.n_resamples, cfg.seed)
    with warnings.catch_warnings():  # a metric no clip defines has a NaN median, meant so
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = {n: {m: float(np.nanmedian([r.get(m, np.nan) for r in rs])) for m in
                       ("ballistic_residual", "gravity_error", "jump_rate", "b_ballistic_residual")}
                   for n, rs in rows.items()}
    stats = {}
    for f in ("plain", "mdl"):
        p = out / f"ft-{f}{_tag(args.anchor_weight)}" / "loss.jsonl"
        if p.is_file():
            lines = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
            stats[f] = {"steps": len(lines), "last": lines[-1] if lines else None}
    return {**provenance(args.command), "what": "MDL against the backbone, with a control that keeps its motion "
            "(benchmarks/mdl_vs_backbone.py)", "backbone": args.backbone, "data": made,
            "anchor_weight": args.anchor_weight, "validation": validation, "finetune_args": ["--preset", args.preset, *FT], "steps": args.steps,
            "mdl_args": MDL_ARGS, "training": stats, "comparisons": [f"{a} vs {b}" for a, b in comparisons],
            "effects": {k: {m: e.to_dict() for m, e in v.items()} for k, v in effects.items()},
            "secondary": {k: {m: e.to_dict() for m, e in v.items()} for k, v in secondary.items()},
            "readout_b": {"effects": {k: {m: e.to_dict() for m, e in v.items()} for k, v in effects_b.items()},
                          "robust": robust_b},
            "headline_both": {k: headline_both(k, effects, robust_b) for k in effects},
            "medians": medians,
            "n_clips": len(rows["baseline"]), "timings": {"data_s": t_data, "validation_s": t_val, "train_s": t_train, "total_s": time.time() - t0},
            "per_clip": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--backbone", default=str(ROOT / "src/lamo/assets/demo-backbone"))
    ap.add_argument("--out", default="runs/mdl-vs-backbone")
    ap.add_argument("--results", default="benchmarks/results/mdl_vs_backbone_cpu.json")
    ap.add_argument("--preset", default="world", help="the backbone's preset (lamo.demo.model.DEMO_PRESETS)")
    ap.add_argument("--world-overrides", default="{}", help="JSON world settings, e.g. '{\"size\": 16, \"frames\": 8}' (tests)")
    ap.add_argument("--world-clips", type=int, default=512)
    ap.add_argument("--self-clips", type=int, default=512)
    ap.add_argument("--steps", type=int, default=800, help="fine-tuning steps (the shipped fine-tunes' 800)")
    ap.add_argument("--test-prompts", type=int, default=48)
    ap.add_argument("--test-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--anchor-weight", type=float, default=0.0,
                    help="β of both fine-tunes' anchor to the backbone (lamo demo train-backbone --anchor-weight; 0: off)")
    ap.add_argument("--anchor-grid", type=float, nargs="*", default=[],
                    help="choose --anchor-weight on validation prompts from these (smallest whose plain fine-tune is not "
                         "detectably worse than the backbone); none: use --anchor-weight")
    ap.add_argument("--val-prompts", type=int, default=48, help="validation prompts (world seed 4) for --anchor-grid")
    ap.add_argument("--val-seeds", type=int, nargs="+", default=[0, 1], help="validation seeds for --anchor-grid")
    ap.add_argument("--parallel", action="store_true", help="train the two fine-tunes at once (one process each)")
    ap.add_argument("--n-resamples", type=int, default=4999)
    args = ap.parse_args(argv)
    args.label = "own + world" if args.self_clips else "world"
    args.command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/mdl_vs_backbone.py", *(sys.argv[1:] if argv is None else argv)])
    res = run(args)
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1, default=float) + "\n")
    for v in res["headline_both"].values():
        print(v)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
