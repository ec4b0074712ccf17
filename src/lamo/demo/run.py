"""``lamo demo``: learn a motion prior from unlabeled physics-world clips, sample with and without
Motion Prior Guidance on the shipped toy CogVideoX, score against the world's laws, and report.

Steps (all on the CPU, minutes):

1. load the shipped demo backbone (:mod:`lamo.demo.model`, trained by ``lamo demo train-backbone``);
2. render ``prior_clips`` fresh clips of the world and encode them with the backbone's own VAE and
   text encoder — the prior sees only videos and captions, never the simulator's states;
3. train a :class:`~lamo.MotionPrior` on them (validation cosine to the true τ-lag change is reported);
4. pick λ on *validation* prompts and seeds (a sweep, plotted), then sample held-out *test* prompts ×
   seeds under each variant with the same initial noise per (prompt, seed);
5. track the balls in every clip and score physics (:mod:`lamo.physics.metrics`) and motion
   (:mod:`lamo.motion_metrics`); the ground-truth renders of the same captions are scored too;
6. write ``report/index.html`` (table, plots, side-by-side animations), ``report/results.json``.

The report says, per metric, whether MPG beat the baseline — by the paired mean difference over
(prompt, seed) pairs and its spread over seeds — whatever the answer is.
"""
from __future__ import annotations

import json
import logging
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__
from ..adapters import get_adapter
from ..motion_metrics import MOTION_METRICS, motion_metrics
from ..peers import FlowMoGuidance
from ..physics.dataset import clip_seed, make_clip
from ..physics.metrics import PHYSICS_METRICS, ClipError, evaluate_clip
from ..physics.world import get_world_config
from ..prior import MotionPrior
from ..report import fmt_mean_std, plot_metric_bars, plot_sweep, side_by_side, write_html

__all__ = ["DemoConfig", "run_demo", "fit_prior", "DEFAULT_BACKBONE"]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_BACKBONE = ASSETS / "demo-backbone"
#: Transformers fine-tuned from the demo backbone for the same steps, without and with the Motion Drift
#: Loss (``lamo demo train-backbone --init-from … [--drift-weight 0.4]``); the demo uses those present.
DEFAULT_FINETUNES = {"fine-tuned (no drift loss)": ASSETS / "demo-finetune-plain",
                     "MDL (drift-loss fine-tune)": ASSETS / "demo-finetune-mdl"}

#: Metrics in the headline table, in order (name -> better).
HEADLINE = ["ballistic_residual", "gravity_error", "jump_rate", "permanence_error", "radius_cv",
            "detection_rate", "restitution_error", "motion_smoothness", "temporal_flickering", "guide_loss"]

#: What the paper reports, for context (DESIGN.md §6; VideoPhy SA/PC, judged by a 7B model).
PAPER_FIGURES = [
    ["CogVideoX-2B", "60.5 / 25.6"], ["LaMo-2B (MDL + MPG)", "67.2 / 31.4"], ["VideoREPA-2B", "64.2 / 29.7"],
    ["CogVideoX-5B", "70.0 / 32.3"], ["LaMo-5B (MDL + MPG)", "73.0 / 41.0"],
    ["ablation 5B: MPG only", "68.9 / 38.4 (baseline 64.8 / 35.2)"],
]


@dataclass
class DemoConfig:
    """What the demo runs. Defaults fit a 2-core CPU in a few minutes."""

    out: str = "report"
    backbone: str = str(DEFAULT_BACKBONE)
    finetunes: dict = field(default_factory=lambda: {k: str(v) for k, v in DEFAULT_FINETUNES.items()})
    world: str = "tiny"
    world_overrides: dict = field(default_factory=dict)  # e.g. {"size": 16, "frames": 8} for tests
    prior_clips: int = 512
    prior_preset: str = "small"
    prior_steps: int = 500
    prior_batch: int = 32
    prior_lr: float = 1e-3
    test_prompts: int = 8
    test_seeds: tuple[int, ...] = (0, 1, 2)
    val_prompts: int = 6
    val_seeds: tuple[int, ...] = (100,)
    sweep: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0)
    flowmo_sweep: tuple[float, ...] = (0.3, 1.0, 3.0)  # η of the FlowMo-style peer, chosen like λ
    flowmo_fraction: float = 0.3  # the peer guides the first 30 % of the steps
    steps: int = 25
    cfg_scale: float = 4.0
    window: float = 0.8
    seed: int = 0
    threads: int = 0


# ------------------------------------------------------------------------------------- prior
def fit_prior(prior: MotionPrior, latents: torch.Tensor, cond: torch.Tensor, steps: int, batch: int,
              lr: float, seed: int = 0, val_fraction: float = 0.1) -> dict:
    """Train ``prior`` in memory on ``(N, F, C, H, W)`` latents with ``(N, D)`` pooled conditions.

    Adam with gradient clipping at 1 (DESIGN.md §7: without it a run stalled). Returns the validation
    loss and cosine (to the true τ-lag change) before and after.
    """
    g = torch.Generator().manual_seed(seed)
    n_val = max(1, int(len(latents) * val_fraction))
    perm = torch.randperm(len(latents), generator=g)
    val, train = perm[:n_val], perm[n_val:]
    opt = torch.optim.AdamW(prior.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)

    def validate() -> tuple[float, float]:
        prior.eval()
        with torch.no_grad():
            out = prior.training_loss(latents[val], cond[val])
        prior.train()
        return float(out.per_sample.mean()), float(out.cosine.mean())

    before = validate()
    bar = tqdm(range(steps), desc="motion prior", unit="step", dynamic_ncols=True)
    for step in bar:
        idx = train[torch.randint(0, len(train), (batch,), generator=g)]
        loss = prior.training_loss(latents[idx], cond[idx], generator=g).per_sample.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(prior.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    after = validate()
    prior.eval()
    return {"val_loss_before": before[0], "val_cosine_before": before[1], "val_loss": after[0], "val_cosine": after[1]}


# ------------------------------------------------------------------------------------- sampling
def _prompts(world, seed: int, n: int) -> list:
    """``n`` clips of the world (their captions are the prompts, their renders the ground truth)."""
    return [make_clip(world, clip_seed(seed, i)) for i in range(n)]


def _sample(pipe, prompts: list[str], seeds: tuple[int, ...], cfg: DemoConfig, preset: dict,
            prior: MotionPrior | None, lam: float, mode: str = "output",
            flowmo: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    """All (prompt, seed) pairs in one batch → ``(len(seeds), len(prompts), T, H, W, 3)`` uint8 frames, and
    ``(S·P,)`` ``L_guide`` of ``x̂0`` at the last step (before its correction; ``None`` without a prior).

    ``flowmo > 0`` samples under the FlowMo-style peer (η = ``flowmo``)."""
    batch = [p for _ in seeds for p in prompts]
    gens = [torch.Generator().manual_seed(1000 * s + i) for s in seeds for i in range(len(prompts))]
    peer = FlowMoGuidance(pipe, scale=flowmo, steps=round(cfg.flowmo_fraction * cfg.steps))
    with peer:
        out = pipe(prompt=batch, generator=gens, num_frames=preset["num_frames"], height=preset["size"],
                   width=preset["size"], num_inference_steps=cfg.steps, guidance_scale=cfg.cfg_scale,
                   max_sequence_length=preset["max_text_len"], output_type="np", motion_prior=prior,
                   motion_guidance_scale=lam, motion_guidance_window=cfg.window, motion_guidance_mode=mode,
                   motion_guidance_record=prior is not None)
    history = pipe.motion_guidance_history if prior is not None else []
    guide_loss = history[-1].loss.detach().cpu().numpy() if history else None
    frames = (np.clip(out.frames, 0, 1) * 255).round().astype(np.uint8)  # (S·P, T, H, W, 3)
    return frames.reshape(len(seeds), len(prompts), *frames.shape[1:]), guide_loss


def _score(frames: np.ndarray, world) -> list[dict]:
    """Physics + motion metrics of each clip of ``(..., T, H, W, 3)``; failures keep their message."""
    rows = []
    for clip in frames.reshape(-1, *frames.shape[-4:]):
        row: dict = {}
        try:
            row.update(evaluate_clip(clip, world).to_dict())
        except ClipError as e:
            row["error"] = str(e)
        row.update({k: v for k, v in motion_metrics(clip).to_dict().items() if k in MOTION_METRICS})
        rows.append(row)
    return rows


def _summary(rows: list[dict], n_seeds: int) -> dict:
    """Per metric: mean over clips, std over clips, and std over seeds of the per-seed means."""
    out = {}
    per_seed = np.array_split(np.arange(len(rows)), n_seeds)
    for m in HEADLINE:
        vals = np.array([float(r.get(m, math.nan)) for r in rows], dtype=float)
        seed_means = [np.nanmean(vals[idx]) if np.isfinite(vals[idx]).any() else math.nan for idx in per_seed]
        ok = vals[np.isfinite(vals)]
        out[m] = {"mean": float(ok.mean()) if ok.size else math.nan, "std": float(ok.std()) if ok.size else math.nan,
                  "seed_std": float(np.nanstd(seed_means)) if np.isfinite(seed_means).any() else math.nan,
                  "n": int(ok.size), "n_undefined": int(len(vals) - ok.size)}
    out["failed_clips"] = sum("error" in r for r in rows)
    return out


def select_lambda(sweep: dict, candidates) -> tuple[float, str]:
    """The λ with the lowest ballistic residual on the validation clips — or, when that is undefined on
    more than half of them for some λ (no free flight long enough to fit), the lowest jump rate.
    Ties go to the smaller λ."""
    metric = "ballistic_residual"
    for lam in (0.0, *candidates):
        s = sweep[lam][metric]
        if s["n"] < s["n_undefined"] or not math.isfinite(s["mean"]):
            metric = "jump_rate"
            break
    finite = [lam for lam in candidates if math.isfinite(sweep[lam][metric]["mean"])]
    if not finite:
        return min(candidates), metric
    return min(finite, key=lambda lam: (sweep[lam][metric]["mean"], lam)), metric


def verdict(p: dict, better: str) -> str:
    """"improved" / "worsened" when the paired difference points the same way for every seed (at least
    two seeds with the metric defined), else "no clear change"."""
    if not p["n"] or not math.isfinite(p["diff"]):
        return "undefined"
    diffs = [d for d in p["seed_diffs"] if math.isfinite(d)]
    if len(diffs) < 2:
        return "too few clips to tell"  # defined for one seed only: no spread to judge against
    signs = {np.sign(d) for d in diffs}
    if len(signs) != 1 or 0 in signs:
        return "no clear change"
    good = (p["diff"] < 0) if better == "lower" else (p["diff"] > 0)
    return "improved" if good else "worsened"


#: L_guide of the final x̂0 under the trained prior (DESIGN.md §1.5): what MPG lowers — not a law of physics.
EXTRA_METRICS = {"guide_loss": ("latent²", "lower", "L_guide of x̂0 at the last step, under the demo's prior")}


def _better(metric: str) -> str:
    return (PHYSICS_METRICS.get(metric) or MOTION_METRICS.get(metric) or EXTRA_METRICS.get(metric) or ("", "", ""))[1]


def _paired(base: list[dict], other: list[dict], metric: str, n_seeds: int) -> dict:
    """Paired difference other − base over (prompt, seed) pairs where both are defined."""
    a = np.array([float(r.get(metric, math.nan)) for r in base])
    b = np.array([float(r.get(metric, math.nan)) for r in other])
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.any():
        return {"diff": math.nan, "seed_std": math.nan, "seed_diffs": [], "improved": math.nan, "n": 0}
    d = b - a
    sign = -1.0 if _better(metric) == "lower" else 1.0
    seeds = np.array_split(np.arange(len(d)), n_seeds)
    seed_diffs = [float(d[idx][ok[idx]].mean()) for idx in seeds if ok[idx].any()]
    return {"diff": float(d[ok].mean()), "seed_std": float(np.std(seed_diffs)), "seed_diffs": seed_diffs,
            "improved": float(np.mean(sign * d[ok] > 0)), "n": int(ok.sum())}


# ------------------------------------------------------------------------------------- main
def run_demo(out: str | Path = "report", cfg: DemoConfig | None = None) -> int:
    """Run the demo end to end; return 0 on success."""
    from diffusers import CogVideoXTransformer3DModel

    from ..pipelines import LaMoCogVideoXPipeline

    cfg = cfg or DemoConfig(out=str(out))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t_start = time.time()
    outdir = Path(cfg.out)
    (outdir / "media").mkdir(parents=True, exist_ok=True)
    backbone = Path(cfg.backbone)
    if not (backbone / "model_index.json").is_file():
        raise FileNotFoundError(
            f"the demo backbone is missing at {backbone}. Reproduce it with `lamo demo train-backbone --data DIR` "
            "after `lamo data physics --out DIR -n 8000` (see README), then pass --backbone."
        )
    meta = json.loads((backbone / "lamo_demo.json").read_text())
    preset = dict(meta["preset"])
    preset["num_frames"] = (preset["frames"] // preset["temporal_compression"] - 1) * preset["temporal_compression"] + 1
    pipe = LaMoCogVideoXPipeline.from_pretrained(backbone)
    pipe.set_progress_bar_config(disable=True)
    adapter = get_adapter(pipe)
    world = get_world_config(cfg.world, **cfg.world_overrides)
    if (world.size, world.frames) != (preset["size"], preset["frames"]):
        raise ValueError(f"the backbone makes {preset['frames']} frames of {preset['size']} px but the world "
                         f"{cfg.world!r} has {world.frames} of {world.size} px; pick the world it was trained on")
    timings: dict[str, float] = {}

    # 1–3. the motion prior, from unlabeled clips (videos + captions only)
    t = time.time()
    clips = _prompts(world, seed=2, n=cfg.prior_clips)
    with torch.no_grad():
        latents = torch.cat([adapter.encode_video(pipe.vae, np.stack([c.frames for c in clips[i:i + 64]]), sample=False)
                             for i in range(0, len(clips), 64)])  # (N, F, C, h, w)
        embeds = adapter.encode_prompt(pipe, [c.caption for c in clips], max_sequence_length=preset["max_text_len"])
        cond = adapter.pool_prompt(embeds)  # (N, D)
    torch.manual_seed(cfg.seed)
    prior = MotionPrior.from_preset(cfg.prior_preset, latent_channels=latents.shape[2], text_embed_dim=cond.shape[1],
                                    backbone="cogvideox-demo")
    prior_stats = fit_prior(prior, latents, cond, cfg.prior_steps, cfg.prior_batch, cfg.prior_lr, cfg.seed)
    prior.save_pretrained(outdir / "prior")
    timings["prior_s"] = time.time() - t
    log.info("motion prior: validation cosine %.3f (before training %.3f)", prior_stats["val_cosine"],
             prior_stats["val_cosine_before"])

    # 4a. λ sweep on validation prompts and seeds
    t = time.time()
    val = _prompts(world, seed=4, n=cfg.val_prompts)
    val_prompts = [c.caption for c in val]
    sweep_rows = {}
    for lam in tqdm((0.0, *cfg.sweep), desc="λ sweep (validation)", unit="λ", dynamic_ncols=True):
        sweep_rows[lam] = _score(_sample(pipe, val_prompts, cfg.val_seeds, cfg, preset, prior, lam)[0], world)
    sweep = {lam: _summary(rows, len(cfg.val_seeds)) for lam, rows in sweep_rows.items()}
    lam_best, selection_metric = select_lambda(sweep, cfg.sweep)
    flowmo_sweep = {0.0: sweep[0.0]}
    for eta in tqdm(cfg.flowmo_sweep, desc="FlowMo η sweep (validation)", unit="η", dynamic_ncols=True):
        flowmo_sweep[eta] = _summary(_score(_sample(pipe, val_prompts, cfg.val_seeds, cfg, preset, None, 0.0,
                                                    flowmo=eta)[0], world), len(cfg.val_seeds))
    eta_best, _ = select_lambda(flowmo_sweep, cfg.flowmo_sweep) if cfg.flowmo_sweep else (0.0, "")
    timings["sweep_s"] = time.time() - t

    # 4b. test prompts × seeds under each variant (same initial noise per pair)
    t = time.time()
    test = _prompts(world, seed=3, n=cfg.test_prompts)
    prompts = [c.caption for c in test]
    mpg, plain_ft, mdl = f"MPG λ={lam_best:g}", *DEFAULT_FINETUNES
    flowmo = f"FlowMo-style peer η={eta_best:g}"
    variants = {"baseline": (None, 0.0, "output"), mpg: (None, lam_best, "output"),
                f"direct latent edit λ={lam_best:g}": (None, lam_best, "latent")}
    if cfg.flowmo_sweep:
        variants[flowmo] = (None, 0.0, "flowmo")
    tuned = {k: Path(v) for k, v in cfg.finetunes.items() if (Path(v) / "config.json").is_file()}
    if plain_ft in tuned and mdl in tuned:
        variants.update({plain_ft: (plain_ft, 0.0, "output"), mdl: (mdl, 0.0, "output"),
                         f"MDL + MPG λ={lam_best:g}": (mdl, lam_best, "output")})
    else:
        log.warning("fine-tuned transformers not found (%s): the MDL variants are skipped", ", ".join(cfg.finetunes.values()))
    frames, rows = {}, {}
    base_transformer = pipe.transformer
    sample_s = {}
    for name, (ft, lam, mode) in tqdm(variants.items(), desc="sampling test prompts", unit="variant", dynamic_ncols=True):
        pipe.transformer = (base_transformer if ft is None else  # shipped in bf16, run in fp32 like the base
                            CogVideoXTransformer3DModel.from_pretrained(tuned[ft], torch_dtype=torch.float32))
        t_v = time.time()
        if mode == "flowmo":
            frames[name], guide = _sample(pipe, prompts, cfg.test_seeds, cfg, preset, prior, 0.0, flowmo=eta_best)
        else:
            frames[name], guide = _sample(pipe, prompts, cfg.test_seeds, cfg, preset, prior, lam, mode)
        sample_s[name] = time.time() - t_v
        rows[name] = _score(frames[name], world)
        for r, v in zip(rows[name], guide if guide is not None else []):  # same (seed, prompt) order
            r["guide_loss"] = float(v)
    pipe.transformer = base_transformer
    gt = np.stack([c.frames for c in test])[None]  # (1, P, T, H, W, 3)
    rows["ground truth"] = _score(gt, world)
    timings["test_s"] = time.time() - t

    # 5–6. summary, report
    summary = {name: _summary(r, 1 if name == "ground truth" else len(cfg.test_seeds)) for name, r in rows.items()}
    comparisons = [(mpg, "baseline")] + ([(flowmo, "baseline")] if flowmo in variants else [])
    if mdl in variants:
        comparisons += [(mdl, plain_ft), (f"MDL + MPG λ={lam_best:g}", "baseline")]
    paired, verdicts = {}, {}
    for a, b in comparisons:
        key = f"{a} vs {b}"
        paired[key] = {m: _paired(rows[b], rows[a], m, len(cfg.test_seeds)) for m in HEADLINE}
        verdicts[key] = []
        for m in HEADLINE:
            p, better = paired[key][m], _better(m)
            word = verdict(p, better)
            if word == "undefined":
                verdicts[key].append(f"{m}: undefined on these clips")
                continue
            verdicts[key].append(
                f"{m} ({better} is better): {word} — difference {p['diff']:+.4g} (per-seed "
                f"{', '.join(f'{d:+.3g}' for d in p['seed_diffs'])}; better on {100 * p['improved']:.0f} % of {p['n']} pairs)")

    media = outdir / "media"
    images = []
    names = ["ground truth", *variants]
    for m in HEADLINE:
        images.append(plot_metric_bars(media / f"metric_{m}.png", m, names,
                                       [summary[n][m]["mean"] for n in names], [summary[n][m]["std"] for n in names],
                                       summary["ground truth"][m]["mean"], _better(m)).relative_to(outdir))
    lams = [0.0, *cfg.sweep]
    images.append(plot_sweep(media / "sweep.png", lams, {
        m: ([sweep[lam][m]["mean"] for lam in lams], [sweep[lam][m]["std"] for lam in lams])
        for m in ("ballistic_residual", "gravity_error", "jump_rate", "detection_rate")},
        title="validation prompts: metric vs guidance scale λ").relative_to(outdir))
    anims = []
    for i, c in enumerate(test):
        clips_i = [c.frames] + [frames[n][0, i] for n in variants]
        anims.append(side_by_side(media / f"prompt_{i}.gif", clips_i, names, fps=world.fps, scale=4).relative_to(outdir))

    def cell(n: str, m: str) -> str:
        s = summary[n][m]
        return f"{fmt_mean_std(s['mean'], s['std'])} (n={s['n']}/{s['n'] + s['n_undefined']})"

    table_rows = [[m, _better(m)] + [cell(n, m) for n in names] for m in HEADLINE]
    table_rows.append(["failed clips", ""] + [str(summary[n]["failed_clips"]) for n in names])
    timings["total_s"] = time.time() - t_start
    results = {
        "config": asdict(cfg), "lamo_version": __version__, "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads".strip(),
        "date": time.strftime("%Y-%m-%d"), "backbone": meta, "prior": prior_stats, "lambda": lam_best,
        "lambda_selected_by": selection_metric,
        "sweep": {str(k): v for k, v in sweep.items()}, "flowmo_eta": eta_best,
        "flowmo_sweep": {str(k): v for k, v in flowmo_sweep.items()}, "sampling_s": sample_s, "summary": summary, "paired": paired,
        "verdicts": verdicts, "per_clip": rows, "prompts": prompts, "timings": timings,
    }
    (outdir / "results.json").write_text(json.dumps(results, indent=2, default=float))
    page = write_html(outdir / "index.html", "LaMo demo — physics world", [
        {"title": "What ran", "text": [
            f"Backbone: the shipped toy CogVideoX ({meta.get('step', meta['train'].get('steps'))} training steps). "
            f"Motion prior ({cfg.prior_preset}, {prior.num_parameters_m():.2f} M parameters) trained here on "
            f"{cfg.prior_clips} unlabeled clips for {cfg.prior_steps} steps: validation cosine to the true "
            f"τ-lag change {prior_stats['val_cosine']:.3f}.",
            f"λ = {lam_best:g} was chosen on {cfg.val_prompts} validation prompts × {len(cfg.val_seeds)} seed(s) "
            f"(lowest {selection_metric}); results below are on {cfg.test_prompts} other prompts × "
            f"{len(cfg.test_seeds)} seeds, {cfg.steps} sampling steps, CFG {cfg.cfg_scale}, window ρ = {cfg.window}.",
            ("MDL: the backbone's transformer fine-tuned with the Motion Drift Loss, compared with the same "
             "fine-tune without it (same data, steps and seed), so extra training is not mistaken for MDL."
             if mdl in variants else "MDL variants skipped: no fine-tuned transformers were found."),
            f"Peer: FlowMo-style variance guidance through the backbone (lamo.peers.flowmo), η = {eta_best:g} chosen "
            f"on the same validation prompts, first {round(cfg.flowmo_fraction * cfg.steps)} steps guided."]},
        *({"title": f"Did it help? {key} (paired over the same prompts and seeds)", "text": [
            "A metric counts as improved or worsened only when the paired difference points the same way for "
            "every seed; otherwise: no clear change.", *v]} for key, v in verdicts.items()),
        {"title": "Metrics (mean ± std over clips; n = clips where the metric is defined)",
         "text": ["A metric is undefined on a clip when the clip lacks what it measures (no free flight long enough "
                  "to fit, no bounce): compare n as well as the mean."],
         "table": {"header": ["metric", "better", *names], "rows": table_rows}},
        {"title": "Plots", "images": images},
        {"title": "Side by side (seed 0): ground truth and every variant", "images": anims},
        {"title": "The paper's own figures, for context (VideoPhy SA / PC, not comparable with this world)",
         "table": {"header": ["model", "SA / PC"], "rows": PAPER_FIGURES}},
        {"title": "Sampling wall time per variant (s, all test videos, this machine)",
         "table": {"header": ["variant", "seconds", "× baseline"],
                   "rows": [[n, f"{v:.1f}", f"{v / sample_s['baseline']:.2f}"] for n, v in sample_s.items()]}},
        {"title": "Timings (s)", "json": timings},
    ])
    _print_table(names, summary, [f"[{k}] {v}" for k, vs in verdicts.items() for v in vs])
    print(f"\nreport: {page}  ({timings['total_s']:.0f} s)")
    return 0


def _print_table(names: list[str], summary: dict, verdicts: list[str]) -> None:
    cols = ["ballistic_residual", "gravity_error", "jump_rate", "permanence_error", "detection_rate"]
    width = max(len(n) for n in names) + 2
    print("\n" + "variant".ljust(width) + "".join(c[:18].rjust(20) for c in cols))
    for n in names:
        print(n.ljust(width) + "".join(fmt_mean_std(summary[n][c]["mean"], summary[n][c]["std"]).rjust(20) for c in cols))
    print()
    for v in verdicts:
        print("  " + v)
