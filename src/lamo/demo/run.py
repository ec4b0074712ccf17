"""``lamo demo`` and ``lamo bench effect``: the effect benchmark on the physics world.

Does Motion Prior Guidance (and the drift-loss fine-tune) make the shipped toy CogVideoX move more
physically, by how much, and is the change real? Steps (all on the CPU):

1. load the shipped demo backbone (:mod:`lamo.demo.model`, trained by ``lamo demo train-backbone``);
2. the motion prior: the shipped one (``assets/demo-prior``), or priors trained here — one per lag in
   ``prior_taus`` — on fresh clips of the world encoded by the backbone's own VAE and text encoder
   (videos and captions only, never the simulator's states);
3. the knobs (which prior, λ, the peer's step size η): read from a *selection* made on validation
   prompts by a full run (``assets/demo-prior/selection.json``), or chosen here on validation prompts ×
   seeds — the held-out test prompts never choose anything;
4. held-out test prompts × seeds under every variant, with the same initial noise per (prompt, seed);
5. every clip tracked and scored (:mod:`lamo.physics.metrics`, :mod:`lamo.motion_metrics`); the
   ground-truth renders of the same captions too;
6. paired statistics (:mod:`lamo.effect`): per metric the effect with a 95 % bootstrap interval, a
   paired permutation test, Holm-corrected, and a verdict — "improved", "worsened" or "no detectable
   change" with the smallest effect the run could have seen; the composite physics error as the
   headline; ``index.html`` (forest plot, λ sweep, tables, side-by-side GIFs) and ``results.json``
   (with every clip's row).

Presets (:data:`PRESETS`): ``demo`` (``make demo``: the shipped prior and selection, 48 test prompts ×
2 seeds, ≤ 5 minutes on 2 cores) and ``full`` (``lamo bench effect``: priors trained for τ = 2 and 1,
knobs chosen on 32 validation prompts × 2 seeds, 128 test prompts × 2 seeds, and the ablations).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__
from ..adapters import get_adapter
from ..effect import BETTER, COMPOSITE, FIDELITY, PHYSICS_PARTS, compare
from ..errors import InputError, MissingInputError
from ..motion_metrics import MOTION_METRICS, motion_metrics
from ..peers import FlowMoGuidance
from ..physics.dataset import clip_seed, make_clip
from ..physics.metrics import ClipError, aggregate, evaluate_clip
from ..physics.world import get_world_config
from ..prior import MotionPrior
from ..report import fmt_mean_std, plot_forest, plot_sweep_effects, side_by_side, write_html

__all__ = ["DemoConfig", "PRESETS", "run_demo", "fit_prior", "train_prior", "encode_world_clips", "DEFAULT_BACKBONE", "DEFAULT_PRIOR", "HEADLINE",
           "SECONDARY", "choose", "analyse", "reanalyse", "add_sharpness_error", "add_ground_truth", "provenance",
           "validation_prompts", "held_out_clips", "VAL_WORLD_SEED", "TEST_WORLD_SEED"]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_BACKBONE = ASSETS / "demo-backbone"
#: The motion prior the full benchmark chose on validation prompts, with its ``selection.json``.
DEFAULT_PRIOR = ASSETS / "demo-prior"
#: Transformers fine-tuned from the demo backbone for the same steps, without and with the Motion Drift
#: Loss (``lamo demo train-backbone --init-from … [--drift-weight 0.4]``); the demo uses those present.
PLAIN_FT, MDL = "fine-tuned (no drift loss)", "MDL (drift-loss fine-tune)"
DEFAULT_FINETUNES = {PLAIN_FT: ASSETS / "demo-finetune-plain", MDL: ASSETS / "demo-finetune-mdl"}

#: The headline family of each comparison (Holm-corrected together): the composite, its parts, fidelity.
HEADLINE = [COMPOSITE, *PHYSICS_PARTS, *FIDELITY]
#: Reported with intervals too, Holm-corrected as a family of their own.
SECONDARY = ["restitution_error", "motion_smoothness", "temporal_flickering", "guide_loss"]

#: What the paper reports, for context (DESIGN.md §6; VideoPhy SA/PC, judged by a 7B model).
PAPER_FIGURES = [
    ["CogVideoX-2B", "60.5 / 25.6"], ["LaMo-2B (MDL + MPG)", "67.2 / 31.4"], ["VideoREPA-2B", "64.2 / 29.7"],
    ["CogVideoX-5B", "70.0 / 32.3"], ["LaMo-5B (MDL + MPG)", "73.0 / 41.0"],
    ["ablation 5B: MPG only", "68.9 / 38.4 (baseline 64.8 / 35.2)"],
]


@dataclass
class DemoConfig:
    """What the effect benchmark runs; :data:`PRESETS` holds the two named set-ups."""

    out: str = "report"
    preset: str = "demo"
    backbone: str = str(DEFAULT_BACKBONE)
    finetunes: dict = field(default_factory=lambda: {k: str(v) for k, v in DEFAULT_FINETUNES.items()})
    world: str = "tiny"
    world_overrides: dict = field(default_factory=dict)  # e.g. {"size": 16, "frames": 8} for tests
    # the motion prior: a trained folder, or "" to train one per lag in prior_taus here
    prior: str = str(DEFAULT_PRIOR)
    prior_taus: tuple[int, ...] = (2, 1)
    prior_clips: int = 512
    prior_preset: str = "small"
    prior_steps: int = 500
    prior_batch: int = 32
    prior_lr: float = 1e-3
    # the knobs: a selection.json made on validation prompts, or "" to choose them here
    selection: str = str(DEFAULT_PRIOR / "selection.json")
    val_prompts: int = 32
    val_seeds: tuple[int, ...] = (100, 101)
    sweep: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0)
    flowmo_variant: str = "release"
    flowmo_sweep: tuple[float, ...] = (1e-3, 1e-2, 1e-1)  # the peer's step size, chosen like λ
    flowmo_fraction: float = 0.24  # the peer guides the first 24 % of the steps (12 of 50 in its release)
    detection_tolerance: float = 0.01  # a knob whose validation detection rate drops more is not chosen
    # the test
    test_prompts: int = 48
    test_seeds: tuple[int, ...] = (0, 1)
    ablations: bool = False  # direct latent edit; MPG with each other prior
    steps: int = 25
    cfg_scale: float = 2.0  # chosen on validation prompts: benchmarks/sampler_settings.py
    window: float = 0.8  # ρ when no selection says otherwise
    windows: tuple[float, ...] = ()  # the ρ values swept with λ on validation prompts; () sweeps `window` only
    seed: int = 0
    threads: int = 0
    chunk: int = 64  # clips per pipeline call
    gifs: int = 8  # side-by-side animations of the first test prompts
    n_resamples: int = 4999  # bootstrap resamples per interval


#: ``demo``: ``make demo`` (shipped prior and selection). ``full``: ``lamo bench effect`` (everything chosen here).
PRESETS: dict[str, dict] = {
    "demo": {},
    "full": dict(preset="full", prior="", selection="", test_prompts=128, test_seeds=(0, 1), ablations=True,
                 windows=(0.8, 0.5), sweep=(0.3, 1.0, 3.0, 10.0, 30.0)),
}


# ------------------------------------------------------------------------------------- prior
def fit_prior(prior: MotionPrior, latents: torch.Tensor, cond: torch.Tensor, steps: int, batch: int,
              lr: float, seed: int = 0, val_fraction: float = 0.1,
              aug_noise_levels: torch.Tensor | None = None) -> dict:
    """Train ``prior`` in memory on ``(N, F, C, H, W)`` latents with ``(N, D)`` pooled conditions.

    Adam with gradient clipping at 1 (DESIGN.md §7: without it a run stalled). ``aug_noise_levels``: the
    backbone's √(1 − ᾱ_t) table, needed by a prior with ``noise_aug="diffusion"``. Returns the validation
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
            out = prior.training_loss(latents[val], cond[val], aug_noise_levels=aug_noise_levels)
        prior.train()
        return float(out.per_sample.mean()), float(out.cosine.mean())

    before = validate()
    bar = tqdm(range(steps), desc="motion prior", unit="step", dynamic_ncols=True)
    for step in bar:
        idx = train[torch.randint(0, len(train), (batch,), generator=g)]
        loss = prior.training_loss(latents[idx], cond[idx], generator=g, aug_noise_levels=aug_noise_levels).per_sample.mean()
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


#: World seeds of the prompts that choose knobs (validation) and of the held-out ones that judge them (test).
VAL_WORLD_SEED, TEST_WORLD_SEED = 4, 3


def validation_prompts(world, n: int) -> list[str]:
    """The first ``n`` validation prompts: every knob is chosen on these, never on the test's."""
    return [c.caption for c in _prompts(world, seed=VAL_WORLD_SEED, n=n)]


def held_out_clips(world, n: int) -> list:
    """The first ``n`` held-out test clips (captions and ground-truth renders)."""
    return _prompts(world, seed=TEST_WORLD_SEED, n=n)


def add_ground_truth(rows: dict[str, list[dict]], clips: list, world) -> None:
    """Score ``clips``' ground-truth renders as ``rows["ground truth"]`` and give every row of ``rows`` its
    ``sharpness_error`` against them (:func:`add_sharpness_error`)."""
    rows["ground truth"] = _score(np.stack([c.frames for c in clips])[None], world, [c.caption for c in clips], (0,))
    for r in rows.values():
        add_sharpness_error(r, rows["ground truth"])


def provenance(command: str | None = None) -> dict:
    """Where a results file came from: command (default: this process's), commit, versions, date, machine."""
    return {"command": " ".join(sys.argv) if command is None else command, "commit": _commit(),
            "lamo_version": __version__, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads".strip()}


@dataclass(frozen=True)
class Variant:
    """How one test row is sampled: which transformer, prior and λ, guidance mode, peer step size."""

    transformer: str | None = None  # a fine-tune's name in cfg.finetunes; None: the backbone's own
    prior: str | None = None  # a prior's label; None: the chosen one (λ = 0 records L_guide only)
    lam: float = 0.0
    mode: str = "output"
    flowmo: float = 0.0
    window: float | None = None  # ρ; None: the run's


def _sample(pipe, prompts: list[str], seeds: tuple[int, ...], cfg: DemoConfig, preset: dict,
            prior: MotionPrior | None, lam: float, mode: str = "output", flowmo: float = 0.0,
            desc: str = "", window: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Every (seed, prompt) pair, in chunks of ``cfg.chunk`` → ``(len(seeds), len(prompts), T, H, W, 3)``
    uint8 frames, and the ``(S·P,)`` ``L_guide`` of ``x̂0`` at the last step (``None`` without a prior).

    The initial noise of pair ``(s, i)`` comes from its own generator (seed ``1000·s + i``), so it is
    the same in every variant and chunk. ``flowmo > 0`` samples under the FlowMo peer (step size
    ``flowmo``, ``cfg.flowmo_variant``). ``window``: the guidance window ρ (``None``: ``cfg.window``)."""
    pairs = [(s, i) for s in seeds for i in range(len(prompts))]
    frames, guide = [], []
    bar = tqdm(total=len(pairs), desc=desc or "sampling", unit="clip", dynamic_ncols=True, leave=False)
    for c in range(0, len(pairs), cfg.chunk):
        chunk = pairs[c:c + cfg.chunk]
        gens = [torch.Generator().manual_seed(1000 * s + i) for s, i in chunk]
        peer = FlowMoGuidance(pipe, scale=flowmo, steps=max(1, round(cfg.flowmo_fraction * cfg.steps)),
                              variant=cfg.flowmo_variant)
        with peer:
            out = pipe(prompt=[prompts[i] for _, i in chunk], generator=gens, num_frames=preset["num_frames"],
                       height=preset["size"], width=preset["size"], num_inference_steps=cfg.steps,
                       guidance_scale=cfg.cfg_scale, max_sequence_length=preset["max_text_len"], output_type="np",
                       motion_prior=prior, motion_guidance_scale=lam, motion_guidance_window=cfg.window if window is None else window,
                       motion_guidance_mode=mode, motion_guidance_record=prior is not None)
        history = pipe.motion_guidance_history if prior is not None else []
        if history:
            guide.append(history[-1].loss.detach().cpu().numpy())
        frames.append((np.clip(out.frames, 0, 1) * 255).round().astype(np.uint8))  # (n, T, H, W, 3)
        bar.update(len(chunk))
    bar.close()
    frames = np.concatenate(frames)
    return frames.reshape(len(seeds), len(prompts), *frames.shape[1:]), (np.concatenate(guide) if guide else None)


def _score(frames: np.ndarray, world, prompts: list[str], seeds: tuple[int, ...]) -> list[dict]:
    """Physics + motion metrics of each clip of ``(S, P, T, H, W, 3)``, one row per (seed, prompt) with
    its keys; a clip that cannot be scored keeps its message in ``error``."""
    rows = []
    for si, s in enumerate(seeds):
        for i, clip in enumerate(frames[si]):
            row: dict = {"seed": s, "prompt_index": i, "caption": prompts[i]}
            try:
                row.update(evaluate_clip(clip, world).to_dict())
            except ClipError as e:
                row["error"] = str(e)
            row.update({k: v for k, v in motion_metrics(clip).to_dict().items() if k in MOTION_METRICS})
            rows.append(row)
    return rows


def add_sharpness_error(rows: list[dict], truth: list[dict]) -> None:
    """Give each row ``sharpness_error = |ln(sharpness / sharpness of the ground-truth render of the same
    prompt)|``: how far the clip's sharpness is from the world's, either way (a speckled backbone reads as
    sharper than the world; a blurred one as less sharp). ``truth``: the ground truth's rows, one per prompt."""
    by_prompt = {r["prompt_index"]: r.get("sharpness", math.nan) for r in truth}
    for r in rows:
        ref, s = by_prompt.get(r["prompt_index"], math.nan), r.get("sharpness", math.nan)
        ok = all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in (ref, s))
        r["sharpness_error"] = abs(math.log(s / ref)) if ok else math.nan


#: The absolute-value table: every compared metric and raw sharpness.
TABLE = [*HEADLINE[1:], "ghost_rate", "background_noise", "sharpness", *SECONDARY]


def _summary(rows: list[dict]) -> dict:
    """Per metric of :data:`TABLE`: mean and std over the clips where it is defined, and how many those
    are (:func:`lamo.physics.metrics.aggregate`); and how many clips could not be scored."""
    return {**aggregate(rows, TABLE), "failed_clips": sum("error" in r for r in rows)}


# ------------------------------------------------------------------------------------- choosing knobs
def choose(effects: dict[str, dict], tolerance: float) -> tuple[str | None, str]:
    """The candidate with the lowest validation composite physics error among those whose detection
    rate fell by at most ``tolerance`` (absolute, point estimate); ties go to the earlier candidate.
    ``effects``: candidate → :func:`lamo.effect.compare` output against the baseline. Returns the
    winner (``None`` when no candidate keeps fidelity) and the reason, in words."""
    ok = {k: e for k, e in effects.items()
          if math.isfinite(e[COMPOSITE].rel) and not (e["detection_rate"].diff < -tolerance)}
    if not ok:
        return None, f"no candidate kept the detection rate within {tolerance:g} of the baseline's"
    best = min(ok, key=lambda k: ok[k][COMPOSITE].rel)
    return best, (f"lowest validation composite physics error ({100 * ok[best][COMPOSITE].rel:+.1f} %) among "
                  f"{len(ok)} of {len(effects)} candidates with detection within {tolerance:g}")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _prior_hash(folder: str | Path) -> str:
    return _sha256(Path(folder) / "diffusion_pytorch_model.safetensors")


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ------------------------------------------------------------------------------------- main
#: Written first into every report folder, so a later run knows the folder is a report of this command.
MARKER = ".lamo-report"


def _check_out(outdir: Path) -> None:
    """The report folder is new, empty, or an earlier (possibly interrupted) report of this command —
    replaced, and said so; anything else is refused so no one's files are overwritten."""
    if not outdir.exists() or not any(outdir.iterdir()):
        return
    if not (outdir / MARKER).is_file():
        raise InputError(f"{outdir} holds files that are not an earlier LaMo report; pass an empty or new --out")
    log.warning("replacing the earlier report in %s", outdir)


def _load_pipeline(cfg: DemoConfig):
    from ..pipelines import LaMoCogVideoXPipeline

    backbone = Path(cfg.backbone)
    meta = json.loads((backbone / "lamo_demo.json").read_text())
    preset = dict(meta["preset"])
    preset["num_frames"] = (preset["frames"] // preset["temporal_compression"] - 1) * preset["temporal_compression"] + 1
    world = get_world_config(cfg.world, **cfg.world_overrides)
    if (world.size, world.frames) != (preset["size"], preset["frames"]):
        raise InputError(f"the backbone makes {preset['frames']} frames of {preset['size']} px but the world "
                         f"{cfg.world!r} has {world.frames} of {world.size} px; pick the world it was trained on")
    pipe = LaMoCogVideoXPipeline.from_pretrained(backbone)
    pipe.set_progress_bar_config(disable=True)
    return pipe, meta, preset, world


def encode_world_clips(pipe, preset: dict, world, n: int, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` clips of world seed ``seed`` → ``(N, F, C, h, w)`` latents and ``(N, D)`` pooled prompts, by the
    backbone's own VAE and text encoder (videos and captions only: what a motion prior learns from)."""
    adapter = get_adapter(pipe)
    clips = _prompts(world, seed=seed, n=n)
    with torch.no_grad():
        latents = torch.cat([adapter.encode_video(pipe.vae, np.stack([c.frames for c in clips[i:i + 64]]), sample=False)
                             for i in range(0, len(clips), 64)])  # (N, F, C, h, w)
        cond = adapter.pool_prompt(adapter.encode_prompt(pipe, [c.caption for c in clips],
                                                         max_sequence_length=preset["max_text_len"]))  # (N, D)
    return latents, cond


def train_prior(cfg: DemoConfig, latents: torch.Tensor, cond: torch.Tensor, folder: Path, options: dict,
                extra: dict | None = None, aug_noise_levels: torch.Tensor | None = None) -> tuple[MotionPrior, dict]:
    """A ``cfg.prior_preset`` prior with ``options`` on top, trained by :func:`fit_prior` with ``cfg``'s
    steps, batch, learning rate and seed, saved in ``folder`` with ``training_stats.json`` (``extra`` added
    to the stats) → ``(prior, stats)``."""
    torch.manual_seed(cfg.seed)
    prior = MotionPrior.from_preset(cfg.prior_preset, latent_channels=latents.shape[2], text_embed_dim=cond.shape[1],
                                    backbone="cogvideox-demo", **options)
    t = time.time()
    st = fit_prior(prior, latents, cond, cfg.prior_steps, cfg.prior_batch, cfg.prior_lr, cfg.seed,
                   aug_noise_levels=aug_noise_levels)
    st.update(**(extra or {}), preset=cfg.prior_preset, clips=len(latents), steps=cfg.prior_steps, batch=cfg.prior_batch,
              lr=cfg.prior_lr, seed=cfg.seed, seconds=time.time() - t, parameters_m=prior.num_parameters_m())
    prior.save_pretrained(folder)
    (Path(folder) / "training_stats.json").write_text(json.dumps(st, indent=2))
    return prior, st


def _train_priors(cfg: DemoConfig, pipe, preset: dict, world, outdir: Path) -> tuple[dict, dict]:
    """One prior per lag in ``cfg.prior_taus`` on ``cfg.prior_clips`` fresh clips → ``{label: prior}``,
    ``{label: stats}``; each saved under ``OUT/prior-tau{τ}`` with its stats."""
    latents, cond = encode_world_clips(pipe, preset, world, cfg.prior_clips)
    priors, stats = {}, {}
    for tau in cfg.prior_taus:
        prior, st = train_prior(cfg, latents, cond, outdir / f"prior-tau{tau}", {"tau": tau}, {"tau": tau})
        log.info("motion prior τ=%d: validation cosine %.3f (before training %.3f)", tau, st["val_cosine"],
                 st["val_cosine_before"])
        priors[f"τ={tau}"], stats[f"τ={tau}"] = prior, st
    return priors, stats


def _effect_summary(effects: dict) -> dict:
    """What a selection keeps of a validation comparison: composite and detection with intervals."""
    return {m: {"rel": e.rel, "rel_ci": list(e.rel_ci), "diff": e.diff, "diff_ci": list(e.diff_ci), "n": e.n}
            for m, e in effects.items()}


def _select(cfg: DemoConfig, pipe, preset, world, priors: dict) -> dict:
    """Choose the prior, λ and the peer's step size on validation prompts × seeds (never the test's)."""
    val_prompts = validation_prompts(world, cfg.val_prompts)
    first = next(iter(priors.values()))

    def rows_of(prior, lam, flowmo=0.0, desc="", window=None):
        frames, _ = _sample(pipe, val_prompts, cfg.val_seeds, cfg, preset, prior, lam, flowmo=flowmo, desc=desc,
                            window=window)
        return _score(frames, world, val_prompts, cfg.val_seeds)

    metrics = [COMPOSITE, "detection_rate"]
    windows = tuple(cfg.windows) or (cfg.window,)
    base = rows_of(first, 0.0, desc="validation: baseline")
    per_prior, lam_of, win_of, validation = {}, {}, {}, {}
    for label, prior in priors.items():
        effects = {}  # (λ, ρ) → effects; λ and ρ are chosen together
        for w in windows:
            series = label if len(windows) == 1 else f"{label} ρ={w:g}"
            for lam in cfg.sweep:
                effects[lam, w] = compare(base, rows_of(prior, lam, desc=f"validation: {series} λ={lam:g}", window=w),
                                          metrics, n_resamples=cfg.n_resamples, seed=cfg.seed)
            validation[series] = {str(lam): _effect_summary(effects[lam, w]) for lam in cfg.sweep}
        knob, why = choose(effects, cfg.detection_tolerance)
        if knob is None:
            knob, why = (min(cfg.sweep), windows[0]), why + "; the smallest λ is used"
        lam_of[label], win_of[label] = (knob[0], why), knob[1]
        per_prior[label] = effects[knob]
    label, why = choose(per_prior, math.inf)
    label = label or next(iter(priors))
    eta_effects = {eta: compare(base, rows_of(None, 0.0, flowmo=eta, desc=f"validation: peer η={eta:g}"), metrics,
                                n_resamples=cfg.n_resamples, seed=cfg.seed) for eta in cfg.flowmo_sweep}
    eta, eta_why = choose(eta_effects, cfg.detection_tolerance) if eta_effects else (None, "no sweep")
    return {
        "prior": label, "prior_why": why, "lambda": lam_of[label][0], "lambda_why": lam_of[label][1],
        "lambda_per_prior": {k: v[0] for k, v in lam_of.items()},
        "window": win_of[label], "window_per_prior": win_of, "windows": list(windows),
        "flowmo_eta": eta if eta is not None else (min(cfg.flowmo_sweep) if cfg.flowmo_sweep else 0.0),
        "flowmo_why": eta_why, "flowmo_variant": cfg.flowmo_variant, "flowmo_fraction": cfg.flowmo_fraction,
        "validation": validation, "validation_flowmo": {str(k): _effect_summary(v) for k, v in eta_effects.items()},
        "val_prompts": cfg.val_prompts, "val_seeds": list(cfg.val_seeds), "steps": cfg.steps, "cfg_scale": cfg.cfg_scale,
        "detection_tolerance": cfg.detection_tolerance,
    }


def analyse(rows: dict[str, list[dict]], comparisons: list[tuple[str, str]], n_resamples: int = 4999,
            seed: int = 0) -> tuple[dict, dict]:
    """Paired effects of each ``(variant, control)`` in ``comparisons`` over the per-clip ``rows`` of each
    variant: the headline family and the secondary one, each Holm-corrected on its own."""
    effects, secondary = {}, {}
    for a, b in comparisons:
        key = f"{a} vs {b}"
        effects[key] = compare(rows[b], rows[a], HEADLINE, n_resamples=n_resamples, seed=seed)
        secondary[key] = compare(rows[b], rows[a], SECONDARY, n_resamples=n_resamples, seed=seed)
    return effects, secondary


def reanalyse(results: str | Path, out: str | Path) -> dict:
    """Recompute a results file's statistics from its per-clip rows with the current metric set
    (:data:`HEADLINE`, :data:`SECONDARY`, ``sharpness_error``) — no sampling; writes ``out`` (JSON) and a
    forest plot beside it, records that it was re-analysed, and returns the new results."""
    res = json.loads(Path(results).read_text())
    rows = res["per_clip"]
    for r in rows.values():
        add_sharpness_error(r, rows["ground truth"])
    comparisons = [tuple(k.split(" vs ")) for k in res["effects"]]
    effects, secondary = analyse(rows, comparisons, res["config"].get("n_resamples", 4999), res["config"].get("seed", 0))
    mpg = next(k for k in effects if k.startswith("MPG λ="))
    res.update(effects={k: {m: e.to_dict() for m, e in v.items()} for k, v in effects.items()},
               secondary={k: {m: e.to_dict() for m, e in v.items()} for k, v in secondary.items()},
               summary={n: _summary(r) for n, r in rows.items()}, headline=effects[mpg][COMPOSITE].sentence())
    res.setdefault("reanalysed", []).append({"from": str(results), "commit": _commit(), "date": time.strftime("%Y-%m-%d"),
                                             "metrics": HEADLINE + SECONDARY})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=float))
    plot_forest(out.with_suffix(".png"), {k: {m: e[m] for m in HEADLINE} for k, e in effects.items()},
                title=f"held-out test: relative change vs control, 95 % CI (n = {res['n_test_clips']} clips)")
    return res


def _cell(e) -> str:
    """``-12.3 % [-20.1 … -4.0] ✓`` for a table (✓ improved, ✗ worsened, · no detectable change)."""
    if e.verdict == "too few clips" or not math.isfinite(e.rel):
        return f"n = {e.n}: too few"
    mark = {"improved": " ✓", "worsened": " ✗"}.get(e.verdict, " ·")
    return f"{100 * e.rel:+.1f} % [{100 * e.rel_ci[0]:+.1f} … {100 * e.rel_ci[1]:+.1f}]{mark}"


def run_demo(out: str | Path = "report", cfg: DemoConfig | None = None) -> int:
    """Run the effect benchmark end to end and write its report; return 0 on success."""
    from diffusers import CogVideoXTransformer3DModel

    cfg = cfg or DemoConfig(out=str(out))
    if not (Path(cfg.backbone) / "model_index.json").is_file():
        raise MissingInputError(
            f"the demo backbone is missing at {cfg.backbone}. Reproduce it with `lamo demo train-backbone --data DIR` "
            "after `lamo data physics --out DIR -n 8000` (see README), then pass --backbone."
        )
    if cfg.prior and not (Path(cfg.prior) / "config.json").is_file():
        raise MissingInputError(f"no trained motion prior at {cfg.prior}; pass --prior '' --selection '' to train one "
                                "and choose λ here (slower), or reproduce the shipped one as README describes")
    if cfg.selection and not Path(cfg.selection).is_file():
        raise MissingInputError(f"no selection file at {cfg.selection}; pass --selection '' to choose λ on validation "
                                "prompts here")
    if cfg.selection and not cfg.prior:
        raise InputError("a selection belongs to the prior it was made with: pass --prior with --selection, "
                         "or neither (priors are then trained and the knobs chosen here)")
    if cfg.test_prompts < 1 or not cfg.test_seeds or cfg.chunk < 1:
        raise InputError("the test needs at least one prompt, one seed and a chunk ≥ 1")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t_start = time.time()
    outdir = Path(cfg.out)
    _check_out(outdir)
    pipe, meta, preset, world = _load_pipeline(cfg)
    (outdir / "media").mkdir(parents=True, exist_ok=True)
    (outdir / MARKER).write_text("a report of `lamo demo` / `lamo bench effect`\n")
    timings: dict[str, float] = {}

    # 1–2. the motion prior
    t = time.time()
    if cfg.prior:
        prior = MotionPrior.from_pretrained(cfg.prior).float().eval()
        prior.check_compatible(preset["latent_channels"], preset["text_dim"], backbone="cogvideox-demo")
        stats_file = Path(cfg.prior) / "training_stats.json"
        label = f"τ={prior.config.tau}"
        priors = {label: prior}
        prior_stats = {label: json.loads(stats_file.read_text()) if stats_file.is_file() else {}}
    else:
        priors, prior_stats = _train_priors(cfg, pipe, preset, world, outdir)
    timings["prior_s"] = time.time() - t

    # 3. the knobs, from validation prompts only
    t = time.time()
    if cfg.selection:
        sel = json.loads(Path(cfg.selection).read_text())
        if sel.get("prior_sha256") != _prior_hash(cfg.prior):
            raise InputError(f"{cfg.selection} was made for another prior than {cfg.prior} (its weights differ); "
                             "pass that prior, or --selection '' to choose λ on validation prompts here")
        made = {k: sel[k] for k in ("steps", "cfg_scale") if k in sel}
        here = {"steps": cfg.steps, "cfg_scale": cfg.cfg_scale}
        if any(float(v) != float(here[k]) for k, v in made.items()):
            raise InputError(f"{cfg.selection} chose λ under other sampler settings ({made}) than this run's "
                             f"({ {k: here[k] for k in made} }); pass the same --steps / --cfg-scale, or "
                             "--selection '' to choose λ on validation prompts under these")
        sel["source"] = str(cfg.selection)
        sel["prior"] = label
    else:
        sel = _select(cfg, pipe, preset, world, priors)
        sel["source"] = "chosen in this run"
        sel["prior_sha256"] = _prior_hash(cfg.prior or outdir / f"prior-tau{priors[sel['prior']].config.tau}")
        (outdir / "selection.json").write_text(json.dumps(sel, indent=2))
    timings["selection_s"] = time.time() - t
    chosen, lam, eta = priors[sel["prior"]], float(sel["lambda"]), float(sel["flowmo_eta"])
    rho = float(sel.get("window", cfg.window))  # a knob of the selection, like λ

    # 4. test prompts × seeds under each variant (same initial noise per pair)
    t = time.time()
    test = held_out_clips(world, cfg.test_prompts)
    prompts = [c.caption for c in test]
    knobs = f"λ={lam:g}" + (f" ρ={rho:g}" if rho != cfg.window else "")
    mpg, mdl_mpg = f"MPG {knobs}", f"MDL + MPG {knobs}"
    peer = f"FlowMo peer ({sel.get('flowmo_variant', cfg.flowmo_variant)}) η={eta:g}"
    variants: dict[str, Variant] = {"baseline": Variant(), mpg: Variant(lam=lam, window=rho)}
    comparisons = [(mpg, "baseline")]
    if cfg.ablations:
        for other, lam_o in sel.get("lambda_per_prior", {}).items():
            if other != sel["prior"] and other in priors:
                w_o = float(sel.get("window_per_prior", {}).get(other, rho))
                variants[f"MPG {other} prior λ={lam_o:g}" + (f" ρ={w_o:g}" if w_o != rho else "")] = Variant(
                    prior=other, lam=float(lam_o), window=w_o)
        variants[f"direct latent edit λ={lam:g}"] = Variant(lam=lam, mode="latent", window=rho)
        comparisons += [(n, "baseline") for n in list(variants)[2:]]
    if cfg.flowmo_sweep or cfg.selection:
        variants[peer] = Variant(flowmo=eta)
        comparisons.append((peer, "baseline"))
    tuned = {k: Path(v) for k, v in cfg.finetunes.items() if (Path(v) / "config.json").is_file()}
    if PLAIN_FT in tuned and MDL in tuned:
        variants.update({PLAIN_FT: Variant(transformer=PLAIN_FT), MDL: Variant(transformer=MDL),
                         mdl_mpg: Variant(transformer=MDL, lam=lam, window=rho)})
        comparisons += [(MDL, PLAIN_FT), (MDL, "baseline"), (mdl_mpg, "baseline"), (mdl_mpg, mpg)]
    else:
        log.warning("fine-tuned transformers not found (%s): the MDL variants are skipped", ", ".join(cfg.finetunes.values()))
    frames, rows, sample_s = {}, {}, {}
    base_transformer = pipe.transformer
    for name, v in tqdm(variants.items(), desc="test variants", unit="variant", dynamic_ncols=True):
        pipe.transformer = (base_transformer if v.transformer is None else  # shipped in bf16, run in fp32 like the base
                            CogVideoXTransformer3DModel.from_pretrained(tuned[v.transformer], torch_dtype=torch.float32))
        prior = chosen if v.prior is None else priors[v.prior]
        t_v = time.time()
        frames[name], guide = _sample(pipe, prompts, cfg.test_seeds, cfg, preset, prior, v.lam, v.mode, v.flowmo, desc=name,
                                      window=v.window)
        sample_s[name] = time.time() - t_v
        rows[name] = _score(frames[name], world, prompts, cfg.test_seeds)
        if v.prior is None:  # L_guide under the chosen prior, comparable across these variants
            for r, g in zip(rows[name], guide):
                r["guide_loss"] = float(g)
    pipe.transformer = base_transformer
    add_ground_truth(rows, test, world)
    timings["test_s"] = time.time() - t

    # 5. paired statistics
    t = time.time()
    effects, secondary = analyse(rows, comparisons, cfg.n_resamples, cfg.seed)
    timings["stats_s"] = time.time() - t
    summary = {name: _summary(r) for name, r in rows.items()}

    # 6. report
    names = ["ground truth", *variants]
    n_test = cfg.test_prompts * len(cfg.test_seeds)
    media = outdir / "media"
    images = [plot_forest(media / "forest.png", {k: {m: e[m] for m in HEADLINE} for k, e in effects.items()},
                          title=f"held-out test: relative change vs control, 95 % CI (n = {n_test} clips)").relative_to(outdir)]
    if sel.get("validation"):
        images.append(plot_sweep_effects(media / "sweep.png", sel["validation"],
                                         title=f"validation ({sel['val_prompts']} prompts × {len(sel['val_seeds'])} seeds): "
                                               "effect of λ, 95 % CI").relative_to(outdir))
    anims = []
    for i, c in enumerate(test[:cfg.gifs]):
        clips_i = [c.frames] + [frames[n][0, i] for n in variants]
        anims.append(side_by_side(media / f"prompt_{i}.gif", clips_i, names, fps=world.fps, scale=4).relative_to(outdir))
    effect_table = [[key] + [_cell(e[m]) for m in HEADLINE] for key, e in effects.items()]
    abs_rows = [[m, BETTER.get(m, "")] + [_abs_cell(summary[n][m]) for n in names] for m in TABLE]
    abs_rows.append(["failed clips", ""] + [str(summary[n]["failed_clips"]) for n in names])
    timings["total_s"] = time.time() - t_start
    head = effects[f"{mpg} vs baseline"][COMPOSITE]
    results = {
        "config": asdict(cfg), **provenance(), "backbone": meta, "prior": prior_stats, "selection": sel,
        "lambda": lam, "window": rho, "flowmo_eta": eta, "n_test_clips": n_test, "sampling_s": sample_s, "summary": summary,
        "effects": {k: {m: e.to_dict() for m, e in v.items()} for k, v in effects.items()},
        "secondary": {k: {m: e.to_dict() for m, e in v.items()} for k, v in secondary.items()},
        "headline": head.sentence(), "per_clip": rows, "prompts": prompts, "timings": timings,
    }
    (outdir / "results.json").write_text(json.dumps(results, indent=2, default=float))
    prior_line = "; ".join(f"{k}: validation cosine {s.get('val_cosine', math.nan):.3f}" for k, s in prior_stats.items())
    page = write_html(outdir / "index.html", "LaMo effect benchmark — physics world", [
        {"title": "Headline", "text": [
            f"MPG vs baseline, composite physics error (mean of ballistic residual, gravity error and jump rate, "
            f"each relative to the baseline's mean): {head.sentence()}"]},
        {"title": "What ran", "text": [
            f"Backbone: the shipped toy CogVideoX ({meta.get('step', meta['train'].get('steps'))} training steps). "
            f"Motion prior{'s' if len(priors) > 1 else ''} ({prior_line}); used: {sel['prior']}.",
            f"Knobs ({sel['source']}): λ = {lam:g}, window ρ = {rho:g} ({sel.get('lambda_why', '')}); peer step size η = {eta:g} "
            f"({sel.get('flowmo_why', '')}) — chosen on {sel.get('val_prompts')} validation prompts × "
            f"{len(sel.get('val_seeds', []))} seeds, never on the test prompts.",
            f"Test: {cfg.test_prompts} held-out prompts × {len(cfg.test_seeds)} seeds = {n_test} clips per variant, "
            f"the same initial noise per (prompt, seed) in every variant; {cfg.steps} sampling steps, CFG "
            f"{cfg.cfg_scale}.",
            "MDL: the backbone's transformer fine-tuned with the Motion Drift Loss"
            f"{_drift_recipe(tuned[MDL])}, compared with the same fine-tune without it (same data, steps and seed), "
            "so extra training is not mistaken for MDL."
            if MDL in variants else "MDL variants skipped: no fine-tuned transformers were found."]},
        {"title": "How to read the verdicts", "text": [
            "Each cell: relative change of the variant against its control (the same clips), 95 % bootstrap interval "
            "over clips; ✓ improved, ✗ worsened (Holm-corrected paired permutation test p < 0.05 and the interval "
            "excludes 0), · no detectable change. The composite physics error is the headline; fidelity "
            "(detection, permanence, radius stability, distance to the ground truth's sharpness) is shown beside "
            "it, never folded in."],
         "table": {"header": ["comparison", *HEADLINE], "rows": effect_table}},
        {"title": "Forest plot and λ sweep", "images": images},
        *({"title": key, "text": [e.sentence() for e in [*effects[key].values(), *secondary[key].values()]]}
          for key in effects),
        {"title": "Metrics (mean ± std over clips; n = clips where the metric is defined)",
         "table": {"header": ["metric", "better", *names], "rows": abs_rows}},
        {"title": f"Side by side (seed {cfg.test_seeds[0]}): ground truth and every variant", "images": anims},
        {"title": "The paper's own figures, for context (VideoPhy SA / PC, not comparable with this world)",
         "table": {"header": ["model", "SA / PC"], "rows": PAPER_FIGURES}},
        {"title": "Sampling wall time per variant (s, all test clips, this machine)",
         "table": {"header": ["variant", "seconds", "× baseline"],
                   "rows": [[n, f"{v:.1f}", f"{v / sample_s['baseline']:.2f}"] for n, v in sample_s.items()]}},
        {"title": "Timings (s)", "json": timings},
    ])
    _print_table(effects, n_test)
    print(f"\nreport: {page}  ({timings['total_s']:.0f} s)")
    return 0


def _drift_recipe(folder: Path) -> str:
    """`` (mode, τ, λ_drift)`` of a fine-tune whose folder records its training (``lamo_finetune.json``), else ``""``."""
    record = Path(folder) / "lamo_finetune.json"
    if not record.is_file():
        return ""
    train = json.loads(record.read_text()).get("train", {})
    if not {"drift_mode", "drift_tau", "drift_weight"} <= set(train):
        return ""
    return f" ({train['drift_mode']}, τ = {train['drift_tau']}, λ_drift = {train['drift_weight']:g})"


def _abs_cell(s: dict) -> str:
    return f"{fmt_mean_std(s['mean'], s['std'])} (n={s['n']})" if s["n"] else "–"


def _print_table(effects: dict, n: int) -> None:
    cols = [COMPOSITE, *PHYSICS_PARTS, "detection_rate", "permanence_error"]
    width = max(len(k) for k in effects) + 2
    print(f"\nrelative change vs control, 95 % CI over {n} clips (✓ improved, ✗ worsened, · no detectable change)")
    print("comparison".ljust(width) + "".join(c[:26].rjust(28) for c in cols))
    for key, e in effects.items():
        print(key.ljust(width) + "".join(_cell(e[c]).rjust(28) for c in cols))
    print()
    for key, e in effects.items():
        print(f"  [{key}] {e[COMPOSITE].sentence()}")
