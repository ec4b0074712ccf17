"""What the effect benchmark samples and how each clip is scored: the prompts (validation and held-out test),
the :class:`Variant` of each test row, sampling with the same initial noise per (prompt, seed) in every
variant, and the physics + motion metrics of every clip."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import InputError
from ..motion_metrics import MOTION_METRICS, motion_metrics
from ..peers import FlowMoGuidance
from ..physics.dataset import clip_seed, make_clip
from ..physics.metrics import ClipError, evaluate_clip
from ..physics.readout import read_clip, size_fidelity
from ..physics.world import get_world_config
from ..prior import MotionPrior
from .config import DemoConfig

__all__ = ["Variant", "VAL_WORLD_SEED", "TEST_WORLD_SEED", "validation_prompts", "held_out_clips", "add_ground_truth",
           "add_sharpness_error", "add_size_fidelity", "READOUT_B_STATS"]

#: Readout B's (:mod:`lamo.physics.readout`) per-clip statistics a scored row carries, each as ``b_`` + its name.
READOUT_B_STATS = ("ballistic_residual", "gravity_error", "unexplained_dv", "unexplained_dv_rms", "break_rate", "area")


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
    """Score ``clips``' ground-truth renders as ``rows["ground truth"]`` (both readouts) and give every row of
    ``rows`` its ``sharpness_error`` (:func:`add_sharpness_error`) and, where it carries readout B's statistics,
    its size fidelity (:func:`add_size_fidelity`) against them."""
    rows["ground truth"] = _score(np.stack([c.frames for c in clips])[None], world, [c.caption for c in clips], (0,),
                                  second_readout=True)
    for r in rows.values():
        add_sharpness_error(r, rows["ground truth"])
        add_size_fidelity(r, rows["ground truth"], world)


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
            desc: str = "", window: float | None = None, bar=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Every (seed, prompt) pair, in chunks of ``cfg.chunk`` → ``(len(seeds), len(prompts), T, H, W, 3)``
    uint8 frames, and the ``(S·P,)`` ``L_guide`` of ``x̂0`` at the last step (``None`` without a prior).

    The initial noise of pair ``(s, i)`` comes from its own generator (seed ``1000·s + i``), so it is
    the same in every variant and chunk. ``flowmo > 0`` samples under the FlowMo peer (step size
    ``flowmo``, ``cfg.flowmo_variant``). ``window``: the guidance window ρ (``None``: ``cfg.window``). ``bar``: a
    progress bar of the caller's that counts these clips too (one bar for a whole phase; default: a bar of its own)."""
    pairs = [(s, i) for s in seeds for i in range(len(prompts))]
    frames, guide = [], []
    own_bar = bar is None
    if own_bar:
        bar = tqdm(total=len(pairs), desc=desc or "sampling", unit="clip", dynamic_ncols=True, leave=False)
    for c in range(0, len(pairs), cfg.chunk):
        chunk = pairs[c:c + cfg.chunk]
        gens = [torch.Generator().manual_seed(1000 * s + i) for s, i in chunk]
        peer = FlowMoGuidance(pipe, scale=flowmo, steps=max(1, round(cfg.flowmo_fraction * cfg.steps)),
                              variant=cfg.flowmo_variant)
        with peer:
            out = pipe(prompt=[prompts[i] for _, i in chunk], generator=gens, num_frames=preset["num_frames"],
                       height=preset["size"], width=preset["size"], num_inference_steps=cfg.steps,
                       guidance_scale=cfg.guidance_scale, max_sequence_length=preset["max_text_len"], output_type="np",
                       motion_prior=prior, motion_guidance_scale=lam, motion_guidance_window=cfg.window if window is None else window,
                       motion_guidance_mode=mode, motion_guidance_record=prior is not None)
        history = pipe.motion_guidance_history if prior is not None else []
        if history:
            guide.append(history[-1].loss.detach().cpu().numpy())
        frames.append((np.clip(out.frames, 0, 1) * 255).round().astype(np.uint8))  # (n, T, H, W, 3)
        bar.update(len(chunk))
    if own_bar:
        bar.close()
    frames = np.concatenate(frames)
    return frames.reshape(len(seeds), len(prompts), *frames.shape[1:]), (np.concatenate(guide) if guide else None)


def _score(frames: np.ndarray, world, prompts: list[str], seeds: tuple[int, ...],
           second_readout: bool = False) -> list[dict]:
    """Physics + motion metrics of each clip of ``(S, P, T, H, W, 3)``, one row per (seed, prompt) with
    its keys; a clip that cannot be scored keeps its message in ``error``.

    ``second_readout``: also read every clip with readout B (:func:`lamo.physics.readout.read_clip`, ≈ 25 ms a
    clip) and keep its statistics as ``b_ballistic_residual``, ``b_gravity_error``, … (:data:`READOUT_B_STATS`;
    NaN where undefined) and each ball colour's median area as ``b_ball_area``, for :func:`add_size_fidelity`."""
    rows = []
    for si, s in enumerate(seeds):
        for i, clip in enumerate(frames[si]):
            row: dict = {"seed": s, "prompt_index": i, "caption": prompts[i]}
            try:
                row.update(evaluate_clip(clip, world).to_dict())
            except ClipError as e:
                row["error"] = str(e)
            row.update({k: v for k, v in motion_metrics(clip).to_dict().items() if k in MOTION_METRICS})
            if second_readout:
                b = read_clip(clip, world)
                row.update({f"b_{k}": float(getattr(b, k)) for k in READOUT_B_STATS})
                row["b_ball_area"] = {c: float(a) for c, a in b.ball_area.items()}
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


def add_size_fidelity(rows: list[dict], truth: list[dict], world) -> None:
    """Give each row that carries readout B's ``b_ball_area`` its size against the ground-truth render of the same
    prompt (:func:`lamo.physics.readout.size_fidelity`): ``b_area_ratio`` (generated / ground-truth ball area,
    geometric mean over the colours both show; 1 = the world's size) and ``b_size_error = |ln b_area_ratio|``
    (how far from the world's size either way, so lower is better). NaN where the two share no ball."""
    by_prompt = {r["prompt_index"]: r.get("b_ball_area") for r in truth}
    for r in rows:
        own, ref = r.get("b_ball_area"), by_prompt.get(r["prompt_index"])
        if own is None:
            continue
        ratio = size_fidelity({"ball_area": own}, {"ball_area": ref or {}}, world)["area_ratio"]
        r["b_area_ratio"] = ratio
        r["b_size_error"] = abs(math.log(ratio)) if math.isfinite(ratio) and ratio > 0 else math.nan


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
