"""Which Motion Drift Loss makes a fine-tune move better than the same fine-tune without it.

An ablation of the drift loss on the physics world (issue "beat the paper", part 3), judged by the effect
benchmark's machinery (:mod:`lamo.demo.run`, :func:`lamo.effect.compare`) like ``guidance_ablations.py``.
Every variant is one fine-tune of the backbone, made exactly as the shipped fine-tunes are (benchmarks/README.md's
``FT`` options: 8000 clips of world seed 1, 800 steps, batch 16, lr 1e-4, seed 5, text encoder frozen, stored
in bfloat16) with only the drift loss changed:

* **plain**: no drift loss (λ_drift = 0), the control;
* **batch**: macro drift normalised by the batch's drift energy, λ_drift = 0.4 (the MDL shipped before this ablation);
* **paper**: macro drift normalised per pair (the paper's form, docs/design.md §1.3), λ_drift = 0.4;
* **dense**: the per-location lag delta ``Δ_τ z`` instead of the macro drift, normalised per pair (the paper's
  "dense motion loss" ablation), λ_drift = 0.4;
* **dense-batch**: the dense loss normalised by the batch's mean ``‖Δ_τ z*‖²`` (``dense_batch_normalized``),
  τ = 2, λ_drift = 20; **dense-batch-τ1**: the same at τ = 1 (adjacent latent frames, the lag that makes
  guidance work here), λ_drift = 15. Both λ put the drift term's gradient at about batch's share of the
  denoising gradient (measured by ``--diagnose`` at the backbone: median ≈ 1×). Then each lag's λ ×3
  (dense-batch-λ60, dense-batch-τ1-λ45) and one point past the edge validation chose in each lag's sweep
  (dense-batch-λ6.7, dense-batch-τ1-λ135), as the guidance ablation extends its λ sweeps.

Why the dense forms: on these latents the macro drift (the spatial mean of ``Δ_τ z``) is a tiny fraction of
the motion energy — the balls are small and the mean cancels — so matching it barely touches the motion (see
``benchmarks/README.md``, "Effect on the physics world"). Why normalised by the batch: per pair, the dense
loss explodes on near-static clips exactly as the paper's macro form does. The paper's two per-pair forms are
reachable with ``--variants`` but not run by default.

Before any sampling, the gradient share of each variant's drift term at the backbone (``--diagnose K``, on
K batches of the fine-tuning data): ``‖∇(λ·w(t)·L_drift)‖ / ‖∇L_denoise‖`` and the cosine between the two
gradients, which says how hard each λ pulls and whether it pulls along the denoiser or across it.

Validation (32 prompts of world seed 4 × seeds 100, 101): every fine-tune against plain, paired on the same
initial noise; the rule of the benchmark (:func:`lamo.demo.run.choose`: lowest composite physics error with
the detection rate within 0.01 of plain's) picks the best drift variant. Test (128 held-out prompts of world
seed 3 × seeds 0, 1), read once after that: the chosen variant and the earlier MDL (batch) against plain, and
those and plain against the backbone itself. The chosen variant replaces the earlier MDL only if it won
validation *and* the test shows a detectable improvement over plain with no detectable loss of detection.

Fine-tunes are trained here when missing (resumable: ``lamo demo train-backbone`` checkpoints) into
``--out/ft-<name>``; ``--shipped`` uses the shipped plain and MDL fine-tunes for plain and dense-batch-τ1-λ45 (the
MDL this ablation chose) after checking their recorded training options are these; batch, the MDL shipped before,
is then trained here (its weights are in the repository's history). Cells are cached in ``--out/cells`` as in the guidance ablation::

    OMP_NUM_THREADS=1 python benchmarks/drift_ablations.py --shipped --diagnose 8 --out runs/drift-ablations \\
        --results benchmarks/results/drift_ablations_cpu.json --threads 1

``--train-only NAME`` trains one fine-tune and exits (run two at once on two cores); ``--table FILE`` prints
the tables of a finished results file again.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # effect_table.py, beside this file

from effect_table import (MARK, _digest, add_size_args, begin, effect_table, pct,  # noqa: E402
                          size_config)

VAL_METRICS = ["physics_error", "detection_rate"]
PLAIN, EARLIER, ADOPTED = "plain", "batch", "dense-batch-τ1-λ45"


@dataclass(frozen=True)
class Variant:
    """One fine-tune: the shared recipe with this drift loss."""

    name: str
    what: str
    weight: float = 0.0
    mode: str = "normalized"
    tau: int = 2

    def describe(self) -> str:
        return "no drift loss" if self.weight == 0 else f"{self.mode}, τ = {self.tau}, λ_drift = {self.weight:g}"


VARIANTS = [
    Variant(PLAIN, "no drift loss (the control)"),
    Variant(EARLIER, "macro drift ÷ the batch's drift energy (the earlier shipped MDL)", 0.4, "batch_normalized"),
    Variant("paper", "macro drift ÷ each pair's drift energy (the paper's form)", 0.4, "normalized"),
    Variant("dense", "per-location Δ_τ z ÷ each pair's energy (the paper's dense ablation)", 0.4, "dense"),
    Variant("dense-batch", "per-location Δ_τ z ÷ the batch's energy, gradient share ≈ batch's", 20.0,
            "dense_batch_normalized"),
    Variant("dense-batch-τ1", "the same at τ = 1, gradient share ≈ batch's", 15.0, "dense_batch_normalized", 1),
    Variant("dense-batch-λ60", "dense-batch at 3× λ_drift", 60.0, "dense_batch_normalized"),
    Variant("dense-batch-τ1-λ45", "dense-batch-τ1 at 3× λ_drift", 45.0, "dense_batch_normalized", 1),
    # one more point past each sweep's edge, as the guidance ablation does (λ ×3 or ÷3)
    Variant("dense-batch-λ6.7", "dense-batch at ⅓ λ_drift", 6.7, "dense_batch_normalized"),
    Variant("dense-batch-τ1-λ135", "dense-batch-τ1 at 9× λ_drift", 135.0, "dense_batch_normalized", 1),
]
#: What runs without ``--variants``: the paper's two per-pair forms are known to explode on near-static pairs
#: (gradient share up to 10⁴× the denoising term's, see the module docstring) and are not trained again.
DEFAULT_RUN = [v.name for v in VARIANTS if v.name not in ("paper", "dense")]
#: The shipped fine-tunes, and the variant each one is (the MDL: what this ablation chose on 2026-11-28).
SHIPPED = {PLAIN: "demo-finetune-plain", ADOPTED: "demo-finetune-mdl"}
#: The fine-tuning options every variant shares (benchmarks/README.md's FT; ``init_from`` is the backbone).
FT = dict(preset="world", data="world:tiny:8000:1", steps=800, batch_size=16, lr=1e-4, warmup=80, save_every=400,
          seed=5, train_text_encoder=False)
#: Training options that do not change the weights (where and how fast it ran).
NOT_RECIPE = ("out", "threads", "workers", "device", "export_steps", "stop_at")


def recipe(cfg: dict) -> dict:
    # anchor_weight 0 (off) is the recipe of the fine-tunes recorded before the option existed
    return {k: v for k, v in cfg.items() if k not in NOT_RECIPE and not (k == "anchor_weight" and v == 0)}


def train_config(v: Variant, backbone: str, out: Path, ft: dict, threads: int):
    from lamo.demo.train_backbone import BackboneTrainConfig

    return BackboneTrainConfig(**ft, init_from=backbone, out=str(out / f"ft-{v.name}"), drift_weight=v.weight,
                               drift_mode=v.mode, drift_tau=v.tau, threads=threads, workers=1)


def fine_tune(v: Variant, backbone: str, out: Path, ft: dict, threads: int, shipped: bool) -> Path:
    """The bfloat16 transformer folder of ``v``'s fine-tune: shipped, already trained here, or trained now."""
    import torch
    from diffusers import CogVideoXTransformer3DModel

    from lamo.demo.run import ASSETS
    from lamo.demo.train_backbone import train_backbone

    cfg = train_config(v, backbone, out, ft, threads)
    want = recipe(asdict(cfg))
    if shipped and v.name in SHIPPED:
        folder = ASSETS / SHIPPED[v.name]
        have = recipe(json.loads((folder / "lamo_finetune.json").read_text())["train"])
        want_shipped = dict(want, init_from=have.get("init_from"))  # recorded as the path it was trained from
        if have != want_shipped or Path(have["init_from"]).resolve() != Path(backbone).resolve():
            diff = {k: (have.get(k), want_shipped.get(k)) for k in set(have) | set(want_shipped)
                    if have.get(k) != want_shipped.get(k)}
            raise ValueError(f"the shipped {folder.name} was not trained with {v.name}'s recipe on this backbone "
                             f"(recorded vs wanted: {diff}); drop --shipped to train it here")
        return folder
    bf16 = out / f"ft-{v.name}" / "transformer-bf16"
    meta_file = out / f"ft-{v.name}" / "pipeline" / "lamo_demo.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    done = bool(meta) and recipe(meta["train"]) == want and meta["step"] == cfg.steps
    if not done:
        train_backbone(cfg)  # resumes from out/ft-<name>/checkpoints
        if bf16.exists():
            import shutil

            shutil.rmtree(bf16)
    if not (bf16 / "config.json").is_file():
        m = CogVideoXTransformer3DModel.from_pretrained(out / f"ft-{v.name}" / "pipeline" / "transformer",
                                                        torch_dtype=torch.float32)
        m.to(torch.bfloat16).save_pretrained(bf16)  # stored as the shipped fine-tunes are
    return bf16


# ------------------------------------------------------------------------------------- gradient share
def gradient_share(pipe, preset: dict, variants: list[Variant], data: str, batches: int, batch_size: int,
                   seed: int = 0) -> dict:
    """Per drift variant, over ``batches`` batches of ``data`` at the backbone (random timesteps as in
    training): the median ratio ``‖∇(λ·w·L_drift)‖ / ‖∇L_denoise‖``, the median cosine of the two gradients,
    and the drift term's median value."""
    import numpy as np
    import torch

    from lamo.demo.train_backbone import encode_clips
    from lamo.losses import drift_loss_terms
    from lamo.parametrization import predict_x0

    videos, captions = _load(data, max(batches * batch_size, 64), preset)
    z = encode_clips(pipe.vae, videos).float()
    tok = pipe.tokenizer(captions, padding="max_length", max_length=preset["max_text_len"], truncation=True,
                         return_tensors="pt").input_ids
    tr, alphas = pipe.transformer, pipe.scheduler.alphas_cumprod.float()
    params = list(tr.parameters())
    was_training = tr.training
    tr.train()
    gen = torch.Generator().manual_seed(seed)
    drift = [v for v in variants if v.weight > 0]
    rows = {v.name: [] for v in drift}

    def flat(loss):
        g = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        return torch.cat([(x if x is not None else torch.zeros_like(p)).flatten() for x, p in zip(g, params)])

    for _ in range(batches):
        idx = torch.randint(0, len(z), (batch_size,), generator=gen)
        x0 = z[idx]
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, pipe.scheduler.config.num_train_timesteps, (batch_size,), generator=gen)
        a = alphas[t].view(-1, 1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        with torch.no_grad():
            emb = pipe.text_encoder(tok[idx])[0]
        pred = tr(hidden_states=x_t, encoder_hidden_states=emb, timestep=t, return_dict=False)[0].float()
        g_den = flat(torch.nn.functional.mse_loss(pred, a.sqrt() * noise - (1 - a).sqrt() * x0))
        x0_hat = predict_x0(pred, x_t, "v_prediction", alpha_bar=alphas[t])
        for v in drift:
            term = v.weight * drift_loss_terms(x0_hat, x0, tau=v.tau, mode=v.mode, weight=a.flatten()).weighted.mean()
            g = flat(term)
            rows[v.name].append((float(g.norm() / g_den.norm()), float(torch.nn.functional.cosine_similarity(g, g_den, 0)),
                                 float(term.detach())))
    tr.train(was_training)
    tr.zero_grad(set_to_none=True)
    return {k: {"ratio_median": float(np.median([r[0] for r in v])), "ratio_p90": float(np.quantile([r[0] for r in v], 0.9)),
                "cos_median": float(np.median([r[1] for r in v])), "term_median": float(np.median([r[2] for r in v])),
                "batches": len(v), "batch_size": batch_size} for k, v in rows.items()}


def _load(data: str, n: int, preset: dict):
    """The first ``n`` clips of ``data`` (``world:PRESET:N:SEED`` simulates only those) at the backbone's size."""
    from lamo.demo.train_backbone import load_dataset_clips

    parts = data.split(":")
    if parts[0] == "world" and len(parts) >= 3:
        parts[2] = str(min(n, int(parts[2])))
        data = ":".join(parts)
    videos, captions = load_dataset_clips(data, frames=preset["frames"], size=preset["size"], workers=1)
    return videos[:n], list(captions)[:n]


# ------------------------------------------------------------------------------------- the run
def run(cfg, out: Path, results: Path, variants: list[Variant], ft: dict, shipped: bool, diagnose: int,
        command: str = "", validation_only: bool = False) -> dict:
    """Train what is missing, diagnose, validate, choose, test (unless ``validation_only``: the test clips are
    not sampled, so more variants can still be added); write ``results`` and its PNG."""
    import torch
    from diffusers import CogVideoXTransformer3DModel
    from tqdm.auto import tqdm

    from lamo.demo.run import (_effect_summary, _load_pipeline, _sample, _score, _sha256, add_ground_truth, analyse,
                               choose, held_out_clips, provenance, validation_prompts)
    from lamo.effect import compare

    t0, timings, cells = begin(cfg, out)
    folders = {v.name: fine_tune(v, cfg.backbone, out, ft, cfg.threads, shipped) for v in variants}
    timings["train_s"] = time.time() - t0
    pipe, meta, preset, world = _load_pipeline(cfg)
    base = pipe.transformer
    shares = {}
    if diagnose:
        t = time.time()
        shares = gradient_share(pipe, preset, variants, ft["data"], diagnose, ft["batch_size"], seed=cfg.seed)
        timings["diagnose_s"] = time.time() - t
    sha = {k: _sha256(Path(f) / "diffusion_pytorch_model.safetensors") for k, f in folders.items()}
    val_prompts = validation_prompts(world, cfg.val_prompts)
    test = held_out_clips(world, cfg.test_prompts)
    test_prompts = [c.caption for c in test]
    common = dict(backbone=str(Path(cfg.backbone).resolve()), steps=cfg.steps, guidance_scale=cfg.guidance_scale, chunk=cfg.chunk)
    bar = tqdm(total=len(variants), desc="cells", unit="cell", dynamic_ncols=True)

    def cell(label: str, name: str | None, prompts: list[str], seeds: tuple[int, ...]) -> list[dict]:
        """Rows of fine-tune ``name`` (``None``: the backbone itself) on ``prompts × seeds``, cached."""
        key = dict(common, prompts=_digest(prompts), seeds=list(seeds), transformer=None if name is None else sha[name])
        done = cells.get(label, key)
        if done is None:
            t = time.time()
            pipe.transformer = base if name is None else CogVideoXTransformer3DModel.from_pretrained(
                folders[name], torch_dtype=torch.float32)  # stored in bf16, run in fp32 like the backbone
            frames, _ = _sample(pipe, prompts, seeds, cfg, preset, None, 0.0, desc=label)
            pipe.transformer = base
            done = cells.put(label, key, _score(frames, world, prompts, seeds), time.time() - t)
        bar.update(1)
        bar.set_postfix_str(f"{label} ({done['seconds']:.0f} s{', cached' if label in cells.reused else ''})")
        return done["rows"]

    t = time.time()
    val_rows = {v.name: cell(f"validation: {v.name}", v.name, val_prompts, cfg.val_seeds) for v in variants}
    effects = {v.name: compare(val_rows[PLAIN], val_rows[v.name], VAL_METRICS, n_resamples=cfg.n_resamples, seed=cfg.seed)
               for v in variants if v.name != PLAIN}
    best, best_why = choose(effects, cfg.detection_tolerance)
    timings["validation_s"] = time.time() - t
    tqdm.write(f"[{time.time() - t0:6.0f} s] validation: best drift variant {best} ({best_why})")

    # the test, read once: plain, the chosen variant, the earlier MDL and the backbone, same initial noise
    t = time.time()
    names = [PLAIN] + [k for k in dict.fromkeys([best, EARLIER]) if k and k in folders]
    rows, test_effects, secondary = {}, {}, {}
    if not validation_only:
        bar.total += len(names) + 1
        rows = {"baseline": cell("test: baseline", None, test_prompts, cfg.test_seeds)}
        rows.update({k: cell(f"test: {k}", k, test_prompts, cfg.test_seeds) for k in names})
        add_ground_truth(rows, test, world)
        comparisons = [(k, PLAIN) for k in names if k != PLAIN] + [(k, "baseline") for k in names]
        test_effects, secondary = analyse(rows, comparisons, cfg.n_resamples, cfg.seed)
    bar.close()
    timings["test_s"] = time.time() - t
    timings["total_s"] = time.time() - t0

    res = {
        "what": "drift-loss ablation on the physics world (benchmarks/drift_ablations.py)",
        **provenance(command), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "config": asdict(cfg), "fine_tune": ft, "backbone": meta,
        "variants": {v.name: {**asdict(v), "describe": v.describe(), "folder": str(folders[v.name]),
                              "sha256": sha[v.name], "train_loss": _train_loss(folders[v.name])} for v in variants},
        "gradient_share": shares,
        "validation": {k: _effect_summary(e) for k, e in effects.items()},
        "validation_full": {k: {m: x.to_dict() for m, x in e.items()} for k, e in effects.items()},
        "best": best, "best_why": best_why, "val_prompts": cfg.val_prompts, "val_seeds": list(cfg.val_seeds),
        "n_test_clips": len(rows.get("baseline", [])), "validation_only": validation_only,
        "effects": {k: {m: e.to_dict() for m, e in v.items()} for k, v in test_effects.items()},
        "secondary": {k: {m: e.to_dict() for m, e in v.items()} for k, v in secondary.items()},
        "per_clip_validation": val_rows, "per_clip": rows, "prompts": test_prompts, "val_prompts_text": val_prompts,
        "cells_reused": cells.reused, "timings": timings,
    }
    res["decision"] = decide(res)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(res, indent=2, default=float))
    plot(res, results.with_suffix(".png"))
    return res


def _train_loss(folder: Path) -> list[dict]:
    """The fine-tune's loss curve (``train_loss.jsonl`` beside a shipped one, ``loss.jsonl`` of a run here)."""
    for p in (Path(folder) / "train_loss.jsonl", Path(folder).parent / "loss.jsonl"):
        if p.is_file():
            return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
    return []


def decide(res: dict) -> str:
    """Whether the validated variant replaces the earlier MDL: it must beat plain detectably on the test with
    no detectable loss of detection."""
    best = res["best"]
    if res.get("validation_only"):
        return f"not decided: validation only (chosen there: {best}); the test clips were not sampled"
    if not best:
        return "the earlier MDL stays: no drift variant kept detection within the tolerance on validation"
    e = res["effects"][f"{best} vs {PLAIN}"]
    c, d = e["physics_error"], e["detection_rate"]
    test = (f"on the test {best} vs plain is {pct(c)} composite, {c['verdict']} (smallest detectable "
            f"{100 * c['mde_rel']:.1f} %), detection {pct(d, 'diff', 1.0, '', 3)} {d['verdict']}")
    if c["verdict"] != "improved" or d["verdict"] == "worsened":
        return f"no drift loss beats the plain fine-tune: {best} won validation but {test}"
    if best == EARLIER:
        return f"the earlier MDL stays and works: {test}"
    return f"adopt {best}: it won validation and {test}"


def plot(res: dict, path: Path) -> Path:
    """Validation (every drift variant vs plain: composite and detection, 95 % CI) and, when measured, each
    variant's gradient share at the backbone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(res["validation"])
    panels = 3 if res["gradient_share"] else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6))
    for ax, metric, k, label in ((axes[0], "physics_error", "rel", "composite physics error vs plain (%)"),
                                 (axes[1], "detection_rate", "diff", "detection rate vs plain (difference)")):
        scale = 100 if k == "rel" else 1
        for i, n in enumerate(names):
            e = res["validation"][n][metric]
            lo, hi = e[f"{k}_ci"]
            ax.errorbar(i, scale * e[k], yerr=[[scale * (e[k] - lo)], [scale * (hi - e[k])]], fmt="o",
                        color="C3" if n == res["best"] else "C0", capsize=3)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
    if res["gradient_share"]:
        gs = res["gradient_share"]
        ax = axes[2]
        ax.bar(range(len(gs)), [v["ratio_median"] for v in gs.values()], color="C0")
        for i, v in enumerate(gs.values()):
            ax.text(i, v["ratio_median"], f"cos {v['cos_median']:+.2f}", ha="center", va="bottom", fontsize=7)
        ax.set_yscale("log")
        ax.set_xticks(range(len(gs)), list(gs), rotation=30, ha="right", fontsize=8)
        ax.set_title("‖∇ drift term‖ / ‖∇ denoising‖ at the backbone (median)", fontsize=9)
    fig.suptitle(f"drift-loss fine-tunes on validation ({res['val_prompts']} prompts × {len(res['val_seeds'])} seeds), "
                 f"paired with plain; red = chosen ({res['best']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------- tables
def gradient_lines(res: dict) -> list[str]:
    """The gradient-share table of a results file."""
    out = ["Gradient share at the backbone (median over batches of the fine-tuning data, random timesteps):", "",
           "| variant | drift loss | ‖∇ λ·w·L_drift‖ / ‖∇ L_denoise‖ (median, 90th pct) | cosine to ∇ L_denoise |",
           "|---|---|---|---|"]
    for k, g in res["gradient_share"].items():
        out.append(f"| {k} | {res['variants'][k]['describe']} | {g['ratio_median']:.3g}, {g['ratio_p90']:.3g} | "
                   f"{g['cos_median']:+.3f} |")
    return out


def tables(res: dict) -> str:
    """The markdown tables of a results file: gradient share, validation, test, decision."""
    reused = f"; {len(res['cells_reused'])} cells reused" if res.get("cells_reused") else ""
    out = [f"Run: `{res['command']}` at commit {res['commit']}, {res['date']}, {res['machine']}, torch {res['torch']}; "
           f"{res['timings']['total_s'] / 60:.1f} min end to end (training {res['timings']['train_s'] / 60:.1f} min){reused}.", ""]
    if res["gradient_share"]:
        out += gradient_lines(res) + [""]
    out += [f"Validation ({res['val_prompts']} prompts × {len(res['val_seeds'])} seeds = "
            f"{res['val_prompts'] * len(res['val_seeds'])} clips): each fine-tune against plain, paired.", "",
            "| variant | drift loss | composite physics error | detection rate (difference) |", "|---|---|---|---|"]
    for k, e in res["validation_full"].items():
        c, d = e["physics_error"], e["detection_rate"]
        mark = " (chosen)" if k == res["best"] else ""
        out.append(f"| {k}{mark} | {res['variants'][k]['describe']} | {pct(c)} {MARK[c['verdict']]} | "
                   f"{pct(d, 'diff', 1.0, '', 3)} {MARK[d['verdict']]} |")
    out += ["", f"Chosen: {res['best']} ({res['best_why']}).", ""]
    if not res["effects"]:
        return "\n".join(out + [f"Decision: {res['decision']}."])
    out += [
            f"Test (held-out, {res['n_test_clips']} clips per variant): relative change vs control, 95 % BCa interval; "
            "✓ improved, ✗ worsened, · no detectable change (Holm-corrected).", ""]
    metrics = list(next(iter(res["effects"].values())))
    out += effect_table(res["effects"], metrics)
    out += ["", "Composite physics error per test comparison, with the smallest effect the run could have detected:"]
    for comp, per in res["effects"].items():
        e = per["physics_error"]
        out.append(f"* {comp}: {100 * e['rel']:+.1f} % {MARK[e['verdict']]} (smallest detectable {100 * e['mde_rel']:.1f} %)")
    out += ["", f"Decision: {res['decision']}."]
    return "\n".join(out)


def diagnose_only(cfg, variants: list[Variant], ft: dict, batches: int, path: Path) -> int:
    """The gradient-share table of ``variants`` at ``cfg.backbone`` alone, written to ``path`` (JSON) and printed."""
    import torch

    from lamo.demo.run import _load_pipeline, provenance

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    pipe, _, preset, _ = _load_pipeline(cfg)
    shares = gradient_share(pipe, preset, variants, ft["data"], batches, ft["batch_size"], seed=cfg.seed)
    res = {**provenance(), "backbone": cfg.backbone, "data": ft["data"], "gradient_share": shares,
           "variants": {v.name: {**asdict(v), "describe": v.describe()} for v in variants}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2))
    print("\n".join(gradient_lines(res)))
    return 0


def main(argv: list[str] | None = None) -> int:
    from lamo.demo.run import DEFAULT_BACKBONE, DemoConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default=str(DEFAULT_BACKBONE), help="the backbone pipeline folder to fine-tune")
    p.add_argument("--out", default="runs/drift-ablations", help="folder for the fine-tunes and cached cells")
    p.add_argument("--results", default="benchmarks/results/drift_ablations_cpu.json")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--variants", nargs="+", default=DEFAULT_RUN, choices=[v.name for v in VARIANTS],
                   help="which drift variants (plain, the control, is always run)")
    p.add_argument("--shipped", action="store_true",
                   help="use the shipped fine-tunes for plain and batch (their recorded recipe is checked)")
    p.add_argument("--diagnose", type=int, default=0, help="batches for the gradient-share diagnostic (0: skip)")
    p.add_argument("--ft-data", default=FT["data"], help="the fine-tuning clips (tests: a small world)")
    p.add_argument("--ft-steps", type=int, default=FT["steps"])
    p.add_argument("--ft-batch-size", type=int, default=FT["batch_size"])
    p.add_argument("--ft-seed", type=int, default=FT["seed"],
                   help="the fine-tunes' seed (another seed: a replication; use another --out)")
    p.add_argument("--train-only", default="", help="train this variant's fine-tune and exit")
    p.add_argument("--diagnose-only", default="", metavar="FILE",
                   help="measure the gradient shares of --variants at the backbone (--diagnose batches), write them to "
                        "FILE and exit: no training, no sampling")
    p.add_argument("--validation-only", action="store_true",
                   help="stop after validation (the test clips are not sampled: variants can still be added)")
    p.add_argument("--table", default="", help="print the tables of a finished results file and exit")
    add_size_args(p)  # small settings, for tests
    args = p.parse_args(argv)
    if args.table:
        print(tables(json.loads(Path(args.table).read_text())))
        return 0
    preset = json.loads((Path(args.backbone) / "lamo_demo.json").read_text())["train"]["preset"]
    ft = dict(FT, preset=preset, data=args.ft_data, steps=args.ft_steps, batch_size=args.ft_batch_size, seed=args.ft_seed,
              warmup=min(FT["warmup"], max(1, args.ft_steps // 10)), save_every=min(FT["save_every"], args.ft_steps))
    by_name = {v.name: v for v in VARIANTS}
    if args.train_only:
        if args.train_only not in by_name:
            p.error(f"--train-only: unknown variant {args.train_only!r}; choose from {', '.join(by_name)}")
        print(fine_tune(by_name[args.train_only], args.backbone, Path(args.out), ft, args.threads, False))
        return 0
    chosen = [v for v in VARIANTS if v.name == PLAIN or v.name in args.variants]
    cfg = DemoConfig(preset="drift-ablations", backbone=args.backbone, prior="", selection="", finetunes={},
                     flowmo_sweep=(), threads=args.threads, **size_config(args))
    if args.diagnose_only:
        return diagnose_only(cfg, chosen, ft, max(1, args.diagnose), Path(args.diagnose_only))
    res = run(cfg, Path(args.out), Path(args.results), chosen, ft, args.shipped, args.diagnose,
              command=shlex.join(["python", "benchmarks/drift_ablations.py", *(sys.argv[1:] if argv is None else argv)]),
              validation_only=args.validation_only)
    print(tables(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
