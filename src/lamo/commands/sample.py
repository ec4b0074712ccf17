"""``lamo sample``: sample videos with a LaMo pipeline, sweeping the Motion Prior Guidance scale λ.

Every (prompt, seed, λ) makes ``OUT/<prompt_idx>_<seed>_<λ>.mp4``; the videos of one prompt and seed
share their initial noise, so λ is the only difference between them. ``OUT/run.json`` records the
arguments, library versions, the prior's config, each video's file, seconds and per-step ``L_guide``
(measured at every step whenever a prior is given, λ = 0 included, unless ``--no-guide-loss``); it is
rewritten after each video so an interrupted run keeps what it made.

Under ``torchrun`` / ``accelerate launch`` (``RANK`` / ``WORLD_SIZE`` set) the (prompt, seed) pairs are shared out:
pair ``k`` (prompts in order, seeds in order within a prompt) is made, with all its λ, by process ``k mod N``, and
each process records its videos in ``OUT/run.rank-<r>-of-<N>.json`` as it goes. Rank 0 waits for every process's
record, merges them into ``run.json`` — the rows one process would write, in the same order — and deletes them.
Every video is seeded by its own seed, so the videos do not depend on ``N``. An interrupted run, sharded or not,
is finished by the same command with ``--skip-existing`` and any number of processes.

Prompts come as text (``--prompt`` repeated, or ``--prompts-file``: one per line, or a CSV / JSON / JSONL table with
a ``caption``, ``prompt``, ``text`` or ``prompt_en`` column — :mod:`lamo.data.tables`) or, for models saved without a text encoder, as precomputed embeddings
(``--prompt-embeds FILE.safetensors`` holding ``prompt_embeds`` ``(N, L, D)``, optionally
``negative_prompt_embeds`` ``(N or 1, L, D)`` — needed when ``--guidance-scale > 1`` — and the prompt
texts as JSON under the metadata key ``prompts``; :func:`save_prompt_embeds` writes one).
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from ..errors import InputError, MissingInputError
from ..sharding import Shards

FAMILIES = ("cogvideox", "wan")
DEFAULT_FPS = {"cogvideox": 8, "wan": 16}
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_VIDEO_NAME = re.compile(r"\d+_-?\d+_[^_/]+\.mp4")  # <prompt_idx>_<seed>_<λ>.mp4
_SHARD_GLOB = "run.rank-*-of-*.json"  # what each process of a sharded run records while it runs
_POLL_SECONDS = 1.0

__all__ = ["register", "save_prompt_embeds", "load_prompt_embeds", "read_prompts_file", "model_sizes", "check_sizes",
           "folder_fingerprint", "recipe_differences"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="sample videos with Motion Prior Guidance (sweep λ over prompts and seeds)",
        description="Sample videos with a LaMo pipeline (CogVideoX or Wan), sweeping the Motion Prior Guidance "
                    "scale λ over prompts and seeds. Writes OUT/<prompt_idx>_<seed>_<λ>.mp4 and OUT/run.json.",
        epilog="Models saved without a text encoder take --prompt-embeds FILE.safetensors (tensors 'prompt_embeds' "
               "(N, L, D) and, for CFG, 'negative_prompt_embeds' (N or 1, L, D); write it with "
               "lamo.commands.sample.save_prompt_embeds).",
    )
    p.add_argument("--model", required=True, help="diffusers pipeline folder or hub id (CogVideoX or Wan)")
    p.add_argument("--family", choices=FAMILIES, default=None,
                   help="backbone family (default: read from the model's model_index.json)")
    p.add_argument("--prior", default=None, help="motion prior folder (MotionPrior.save_pretrained)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", action="append", help="a text prompt (repeat for several)")
    src.add_argument("--prompts-file", help="text file, one prompt per line, or a CSV / JSON / JSONL table with a "
                                            "'caption', 'prompt', 'text' or 'prompt_en' column")
    src.add_argument("--prompt-embeds", help="safetensors file of precomputed prompt embeddings "
                                             "(for models saved without a text encoder; see below)")
    p.add_argument("--negative-prompt", default=None, help="negative prompt text (CFG)")
    p.add_argument("--image", default=None, metavar="PATH",
                   help="image-to-video: the first frame (PNG/JPEG) every video starts from; needs an image-to-video "
                        "model (CogVideoXImageToVideoPipeline, WanImageToVideoPipeline) or Wan 2.2 TI2V-5B")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="random seeds (default: 0)")
    p.add_argument("--steps", type=int, default=50, help="denoising steps (default: 50)")
    p.add_argument("--guidance-scale", type=float, default=None,
                   help="classifier-free guidance scale (default: the pipeline's)")
    p.add_argument("--motion-guidance-scale", type=float, nargs="+", action="extend", default=None, metavar="LAMBDA",
                   help="MPG scale λ ≥ 0; repeat or list several to sweep (default: 1.0 with --prior, else 0)")
    p.add_argument("--window", type=float, default=0.8, help="MPG window ρ: guide steps s ≥ (1 − ρ)·S (default: 0.8)")
    p.add_argument("--mode", choices=("output", "latent"), default="output",
                   help="correct the model output (the method) or x_t (ablation)")
    p.add_argument("--frames", type=int, default=None, help="video frames (default: the pipeline's)")
    p.add_argument("--height", type=int, default=None, help="video height in pixels (default: the pipeline's)")
    p.add_argument("--width", type=int, default=None, help="video width in pixels (default: the pipeline's)")
    p.add_argument("--max-sequence-length", type=int, default=None, help="prompt tokens (default: the pipeline's)")
    p.add_argument("--fps", type=float, default=None, help="frames per second of the mp4s (CogVideoX 8, Wan 16)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                   help="model dtype (default: bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--prior-dtype", choices=("float32", "bfloat16"), default=None,
                   help="dtype the prior runs in (default: bfloat16 when the model runs in bf16, else float32; "
                        "bf16 was 1.4× faster than fp32 on an H200 — see benchmarks/README.md)")
    p.add_argument("--activation-gib", type=float, default=2.0,
                   help="most GiB of prior activations held at once during a guided step (default: 2; "
                        "lower it on a small GPU, raise it to put more frame pairs through the prior per call)")
    p.add_argument("--no-guide-loss", action="store_true",
                   help="measure L_guide only at guided steps (saves one prior forward per unguided step)")
    p.add_argument("--out", default="samples", help="output folder (default: samples)")
    p.add_argument("--skip-existing", action="store_true",
                   help="resume: keep the videos in OUT that were made exactly as asked now (same model, prior, "
                        "λ, ρ, mode, steps, CFG, size, prompt, seed, scheduler, dtype; see run.json) and make "
                        "the others")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run in OUT (its videos are deleted first); without it, or "
                        "--skip-existing, an OUT holding a run.json is refused")
    p.set_defaults(func=run_sample)


# ---------------------------------------------------------------------------------------- prompt I/O
def save_prompt_embeds(path: str | os.PathLike, prompt_embeds: Any, negative_prompt_embeds: Any = None,
                       prompts: list[str] | None = None) -> Path:
    """Write the ``--prompt-embeds`` file: ``prompt_embeds`` ``(N, L, D)``, optional negatives, prompt texts."""
    from safetensors.torch import save_file

    tensors = {"prompt_embeds": prompt_embeds.detach().cpu().contiguous()}
    if negative_prompt_embeds is not None:
        tensors["negative_prompt_embeds"] = negative_prompt_embeds.detach().cpu().contiguous()
    metadata = {"prompts": json.dumps(list(prompts))} if prompts is not None else None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def load_prompt_embeds(path: str | os.PathLike) -> tuple[Any, Any, list[str] | None]:
    """Read a ``--prompt-embeds`` file → ``(prompt_embeds, negative_prompt_embeds or None, prompts or None)``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"prompt embeddings file {path} not found")
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        if "prompt_embeds" not in keys:
            raise InputError(f"{path} holds no 'prompt_embeds' tensor (found {sorted(keys)})")
        embeds = f.get_tensor("prompt_embeds")
        negative = f.get_tensor("negative_prompt_embeds") if "negative_prompt_embeds" in keys else None
        meta = f.metadata() or {}
    if embeds.ndim != 3:
        raise InputError(f"{path}: prompt_embeds must be (N, L, D), got shape {tuple(embeds.shape)}")
    if negative is not None and (negative.ndim != 3 or negative.shape[0] not in (1, embeds.shape[0])
                                 or negative.shape[1:] != embeds.shape[1:]):
        raise InputError(f"{path}: negative_prompt_embeds must be (N or 1, L, D) like prompt_embeds "
                         f"{tuple(embeds.shape)}, got {tuple(negative.shape)}")
    prompts = json.loads(meta["prompts"]) if "prompts" in meta else None
    return embeds, negative, prompts


def read_prompts_file(path: str | os.PathLike) -> list[str]:
    """Prompts from a text file (one per line), CSV, JSON or JSONL (:func:`lamo.data.tables.read_prompts`)."""
    from ..data.tables import read_prompts

    return read_prompts(path)


# ---------------------------------------------------------------------------------------- run
def _versions() -> dict[str, str]:
    import platform

    import diffusers
    import torch
    import transformers

    from .. import __version__

    return dict(lamo=__version__, torch=torch.__version__, diffusers=diffusers.__version__,
                transformers=transformers.__version__, python=platform.python_version())


def _write_json(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str))
    os.replace(tmp, path)


def _load_kwargs(model: str, dtype: Any) -> dict[str, Any]:
    """``from_pretrained`` kwargs: the dtype, and ``None`` for components the model was saved without
    (e.g. no tokenizer / text encoder), which diffusers otherwise reports as missing."""
    from diffusers import DiffusionPipeline

    try:  # diffusers ≥ 0.36 renamed `torch_dtype` to `dtype`
        from diffusers.utils.deprecation_utils import _TORCH_DTYPE_DEPRECATION_MESSAGE  # noqa: F401
        kwargs: dict[str, Any] = {"dtype": dtype}
    except ImportError:
        kwargs = {"torch_dtype": dtype}
    index = DiffusionPipeline.load_config(model)
    for name, value in index.items():
        if isinstance(value, (list, tuple)) and len(value) == 2 and value[0] is None and value[1] is None:
            kwargs[name] = None
    return kwargs


def _fmt_lambda(lam: float) -> str:
    return f"{lam:g}"


# ---------------------------------------------------------------------------------------- the model's sizes
def model_sizes(pipe: Any, family: str) -> dict[str, int]:
    """Default ``frames``, ``height``, ``width`` and ``text_len`` of a pipeline, from the model's own config.

    CogVideoX: the transformer's ``sample_frames``, ``sample_height/width`` (latent) × the VAE's spatial
    factor, and ``max_text_seq_length``. Wan records no size: the pipeline's own call defaults.
    """
    if family == "cogvideox":
        cfg, s = pipe.transformer.config, pipe.vae_scale_factor_spatial
        return dict(frames=int(cfg.sample_frames), height=int(cfg.sample_height) * s,
                    width=int(cfg.sample_width) * s, text_len=int(cfg.max_text_seq_length))
    stock = {k: v.default for k, v in inspect.signature(_stock_call(pipe)).parameters.items()}
    return dict(frames=int(stock["num_frames"]), height=int(stock["height"]), width=int(stock["width"]),
                text_len=int(stock["max_sequence_length"]))


def _stock_call(pipe: Any) -> Any:
    """The diffusers pipeline's own ``__call__`` (LaMo's mixin forwards ``**kwargs`` to it)."""
    from diffusers import DiffusionPipeline

    for cls in type(pipe).__mro__:
        if cls.__module__.startswith("diffusers.") and cls is not DiffusionPipeline and "__call__" in vars(cls):
            return vars(cls)["__call__"]
    raise RuntimeError(f"{type(pipe).__name__} has no diffusers __call__")  # a bug: pipelines subclass diffusers'


def check_sizes(pipe: Any, family: str, frames: int, height: int, width: int, text_len: int) -> None:
    """Refuse, with the sizes the model supports, a video size or prompt length the model cannot make."""
    d = model_sizes(pipe, family)
    trained = (f"it was made for {d['frames']} frames of {d['height']}×{d['width']} px and prompts of "
               f"{d['text_len']} tokens (the defaults)")
    asked = (("--frames", frames), ("--height", height), ("--width", width), ("--max-sequence-length", text_len))
    for flag, v in asked:
        if v < 1:
            raise InputError(f"{flag} must be ≥ 1, got {v}")
    cfg, s, t = pipe.transformer.config, pipe.vae_scale_factor_spatial, pipe.vae_scale_factor_temporal
    patch = cfg.patch_size if family == "cogvideox" else tuple(cfg.patch_size)[1]
    step = s * patch
    for flag, v in (("--height", height), ("--width", width)):
        if v % step:
            raise InputError(f"{flag} {v} is not a multiple of {step} (VAE {s}× · patch {patch}) for "
                             f"{pipe.name_or_path}; {trained}")
    if family == "cogvideox":
        if cfg.use_learned_positional_embeddings and (height, width) != (d["height"], d["width"]):
            raise InputError(f"this model's learned positional embeddings fix the size to "
                             f"{d['height']}×{d['width']} px, got --height {height} --width {width}")
        if not cfg.use_rotary_positional_embeddings and text_len != d["text_len"]:
            raise InputError(f"this model's positional embeddings hold exactly {d['text_len']} prompt tokens, got "
                             f"{text_len} (--max-sequence-length, or the L of --prompt-embeds (N, L, D)); {trained}")
    elif (frames - 1) % t:
        raise InputError(f"--frames {frames}: this model makes 1 + a multiple of {t} frames (e.g. {d['frames']}); "
                         f"{trained}")


# ---------------------------------------------------------------------------------------- what made a video
def _sha256_file(path: Path, h: Any, sample: int | None = None) -> None:
    """Feed ``path``'s bytes into ``h``; with ``sample``, only its size and first and last ``sample`` bytes."""
    size = path.stat().st_size
    h.update(f"{size}:".encode())
    with open(path, "rb") as f:
        if sample is None or size <= 2 * sample:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(f.read(sample))
            f.seek(size - sample)
            h.update(f.read(sample))


def folder_fingerprint(path: str | os.PathLike, sample: int | None = None) -> str:
    """sha256 over a folder's file names and contents (``sample``: only sizes, heads and tails of big files,
    so a 10 GB model is fingerprinted in milliseconds); a hub id is its own fingerprint."""
    path = Path(path)
    if not path.exists():
        return str(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(f.relative_to(path).as_posix().encode() if f != path else b"")
        _sha256_file(f, h, sample)
    return h.hexdigest()


def _tensor_sha256(*tensors: Any) -> str:
    import torch

    h = hashlib.sha256()
    for x in tensors:
        if x is not None:
            x = x.detach().cpu().contiguous()
            h.update(f"{x.dtype}{tuple(x.shape)}".encode())
            h.update(x.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


_NO_RECORD = "(no record)"


def recipe_differences(old: dict | None, new: dict) -> list[str]:
    """The keys of what made a video that differ between an earlier ``recipe`` and the one asked for now."""
    if not old:
        return [_NO_RECORD]
    return [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


# ---------------------------------------------------------------------------------------- run
def _model_index(model: str) -> dict | None:
    """The model's ``model_index.json`` (local folder or hub), or ``None`` when it cannot be read here."""
    from diffusers import DiffusionPipeline

    try:
        return dict(DiffusionPipeline.load_config(model))
    except (OSError, ValueError):
        return None


def _check_args(args: argparse.Namespace) -> None:
    """Refuse bad numbers before anything is loaded or written, naming the flag."""
    if not args.seeds:
        raise InputError("--seeds needs at least one seed")
    if args.steps < 1:
        raise InputError(f"--steps must be ≥ 1 (denoising steps), got {args.steps}")
    if not 0.0 <= args.window <= 1.0:  # also NaN
        raise InputError(f"--window (ρ) must lie in [0, 1], got {args.window}")
    if args.guidance_scale is not None and not math.isfinite(args.guidance_scale):
        raise InputError(f"--guidance-scale must be a finite number, got {args.guidance_scale}")
    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):
        raise InputError(f"--fps must be > 0, got {args.fps}")
    for flag in ("frames", "height", "width", "max_sequence_length"):
        v = getattr(args, flag)
        if v is not None and v < 1:
            raise InputError(f"--{flag.replace('_', '-')} must be ≥ 1, got {v}")
    lambdas = args.motion_guidance_scale or []
    if any(not (math.isfinite(lam) and lam >= 0) for lam in lambdas):
        raise InputError(f"--motion-guidance-scale values must be finite and ≥ 0, got {lambdas}")
    if any(lam > 0 for lam in lambdas) and not args.prior:
        raise InputError("--motion-guidance-scale > 0 needs a motion prior: pass --prior PATH")
    if not args.activation_gib > 0:  # also NaN
        raise InputError(f"--activation-gib must be > 0 (GiB of prior activations per call), got {args.activation_gib}")
    if args.skip_existing and getattr(args, "overwrite", False):
        raise InputError("--skip-existing keeps earlier videos and --overwrite deletes them: pass one")
    if args.prior and not os.path.isdir(args.prior):
        raise MissingInputError(f"motion prior folder {args.prior} not found (--prior)")
    if getattr(args, "image", None) and not os.path.isfile(args.image):
        raise MissingInputError(f"image {args.image} not found (--image)")
    if not os.path.exists(args.model) and not _HUB_ID.fullmatch(args.model):
        raise MissingInputError(f"model {args.model!r} is neither a local folder nor a hub id (owner/name)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder")


def _shard_file(out: Path, shards: Shards) -> Path:
    """Where a process records its videos while it runs: ``run.json`` itself when it is the only one."""
    return out / ("run.json" if shards.world_size == 1 else f"run.rank-{shards.rank}-of-{shards.world_size}.json")


def _earlier_videos(out: Path, args: argparse.Namespace) -> dict[str, dict] | None:
    """The videos an earlier run left in ``out``: file name → its row of ``run.json`` or of the per-process files
    of an interrupted sharded run (the newest record of a file wins); ``{}`` for videos nobody recorded; ``None``
    when ``out`` holds no run. Refused unless --skip-existing or --overwrite says what to do with them."""
    records = [out / "run.json"] if (out / "run.json").is_file() else []
    records += sorted(out.glob(_SHARD_GLOB), key=lambda p: p.stat().st_mtime_ns)
    videos_there = out.is_dir() and any(out.glob("*.mp4"))
    told = args.skip_existing or getattr(args, "overwrite", False)
    if not records:
        if videos_there and not told:
            raise InputError(f"{out} already holds videos (but no run.json saying how they were made): pass "
                             "--overwrite to replace them, or another --out")
        return {} if videos_there else None
    if not told:
        raise InputError(f"{out} already holds a run ({', '.join(p.name for p in records)}): pass --skip-existing to "
                         "reuse the videos made exactly as asked now, --overwrite to replace the run, or another --out")
    videos: dict[str, dict] = {}
    for path in records:
        try:
            rows = json.loads(path.read_text()).get("videos", [])
        except (json.JSONDecodeError, AttributeError) as e:
            if args.skip_existing:
                raise InputError(f"{path} is not a run record ({e}), so its videos cannot be checked for reuse; "
                                 "pass --overwrite to make them again") from e
            continue
        videos.update({v["file"]: v for v in rows if isinstance(v, dict) and "file" in v})
    return videos


def _start(out: Path, earlier: dict[str, dict] | None, overwrite: bool) -> str:
    """Rank 0, once every process has read the earlier run: delete it when asked to; the new run's id."""
    import uuid

    if earlier is not None and overwrite:  # the earlier run's videos go with it
        for p in out.glob("*.mp4"):
            if p.name in earlier or _VIDEO_NAME.fullmatch(p.name):
                p.unlink()
        for p in [out / "run.json", *out.glob(_SHARD_GLOB)]:
            p.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return uuid.uuid4().hex


def _gather(out: Path, shards: Shards, run_id: str) -> list[dict]:
    """Rank 0: every process's record of this run, once each says it is done (polled: no process is kept waiting
    in a collective call while the slowest one works)."""
    paths = [_shard_file(out, Shards(r, shards.world_size)) for r in range(shards.world_size)]
    told = False
    while True:
        records = []
        for path in paths:
            try:
                rec = json.loads(path.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                rec = {}
            records.append(rec if rec.get("shard", {}).get("run_id") == run_id and rec.get("status") == "done" else None)
        if all(records):
            return records
        if not told:
            waiting = [r for r, rec in enumerate(records) if rec is None]
            print(f"rank 0 is done; waiting for rank(s) {waiting} of {shards.world_size}", flush=True)
            told = True
        time.sleep(_POLL_SECONDS)


def _merge(records: list[dict], order: dict[str, int], t_start: float) -> dict:
    """One ``run.json`` of the processes' records: rank 0's header, every video in the order one process makes them."""
    merged = {k: v for k, v in records[0].items() if k != "shard"}
    videos = [v for rec in records for v in rec["videos"]]
    if sorted(v["file"] for v in videos) != sorted(order):  # each process records exactly its share
        raise RuntimeError(f"the processes' records hold {len(videos)} videos, not the {len(order)} asked for")
    merged["videos"] = sorted(videos, key=lambda v: order[v["file"]])
    merged["timings"] = dict(load_seconds=records[0]["timings"]["load_seconds"],
                             sample_seconds=round(sum(rec["timings"]["sample_seconds"] for rec in records), 3),
                             total_seconds=round(time.perf_counter() - t_start, 3))
    merged["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return merged


def run_sample(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from ..adapters.registry import detect_family
    from ..pipelines import is_image_to_video_model, pipeline_class, takes_image
    from ..video_io import write_video

    t_start = time.perf_counter()
    _check_args(args)
    # ---- what to sample
    embeds = negative = None
    if args.prompt_embeds:
        embeds, negative, texts = load_prompt_embeds(args.prompt_embeds)
        texts = texts or [None] * embeds.shape[0]
    else:
        texts = list(args.prompt) if args.prompt else read_prompts_file(args.prompts_file)
    lambdas = args.motion_guidance_scale or ([1.0] if args.prior else [0.0])
    out = Path(args.out)
    shards = Shards.from_env()
    earlier = _earlier_videos(out, args)  # read by every process before any of them writes (see shards.sync)

    # ---- the pipeline
    family = args.family or detect_family(args.model)
    device = shards.device(args.device)
    dtype_name = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    dtype = getattr(torch, dtype_name)
    image_path = getattr(args, "image", None)
    index = _model_index(args.model)
    if index is not None:
        if image_path and not takes_image(index):
            raise InputError(f"--image needs an image-to-video model; {args.model} is a {index.get('_class_name')} "
                             "(text-to-video only)")
        if is_image_to_video_model(index) and not image_path:
            raise InputError(f"{args.model} is an image-to-video model ({index.get('_class_name')}): pass --image PATH")
    pipe = pipeline_class(family, image_to_video=bool(image_path)).from_pretrained(
        args.model, **_load_kwargs(args.model, dtype)).to(device)
    pipe.set_progress_bar_config(disable=True)
    if embeds is None and (getattr(pipe, "tokenizer", None) is None or getattr(pipe, "text_encoder", None) is None):
        raise InputError(f"{args.model} has no tokenizer / text encoder (saved without them): pass --prompt-embeds "
                         "FILE.safetensors with precomputed prompt embeddings instead of text prompts")
    sizes = model_sizes(pipe, family)
    frames_n = args.frames or sizes["frames"]
    height, width = args.height or sizes["height"], args.width or sizes["width"]
    text_len = int(embeds.shape[1]) if embeds is not None else (args.max_sequence_length or sizes["text_len"])
    check_sizes(pipe, family, frames_n, height, width, text_len)
    # without --prior-dtype, load_motion_prior picks bf16 beside a bf16 transformer, fp32 otherwise
    prior_kwargs = {"torch_dtype": getattr(torch, args.prior_dtype)} if args.prior_dtype else {}
    try:
        prior = pipe.load_motion_prior(args.prior, **prior_kwargs) if args.prior else None
    except ValueError as e:  # a prior that does not fit this backbone: the user's choice of --prior
        raise InputError(f"--prior {args.prior}: {e}") from e
    cfg_on = args.guidance_scale is None or args.guidance_scale > 1.0  # both pipelines default to CFG
    if embeds is not None and cfg_on and negative is None:
        raise InputError(f"{args.prompt_embeds} has no 'negative_prompt_embeds', which classifier-free guidance needs "
                         "for a model without a text encoder; add them or pass --guidance-scale 1")
    load_seconds = time.perf_counter() - t_start

    # ---- the sweep
    run_id = shards.sync(lambda: _start(out, earlier, getattr(args, "overwrite", False)))
    fps = args.fps or DEFAULT_FPS[family]
    prior_dtype = None if prior is None else str(prior.dtype).removeprefix("torch.")
    record: dict[str, Any] = dict(
        command="lamo sample",
        args={k: v for k, v in vars(args).items() if k != "func"},
        versions=_versions(),
        family=family, pipeline=type(pipe).__name__, device=str(device), dtype=dtype_name, fps=fps,
        prior_dtype=prior_dtype,
        prior=None if prior is None else dict(path=args.prior, config=dict(prior.config)),
        prompts=texts, seeds=list(args.seeds), lambdas=lambdas,
        size=dict(frames=frames_n, height=height, width=width, text_len=text_len),
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), status="running",
        timings=dict(load_seconds=round(load_seconds, 3)), processes=shards.world_size, videos=[],
    )
    if shards.world_size > 1:
        record["shard"] = dict(rank=shards.rank, run_id=run_id)
    call_kwargs: dict[str, Any] = dict(num_inference_steps=args.steps, output_type="np",
                                       motion_guidance_window=args.window, motion_guidance_mode=args.mode,
                                       motion_guidance_activation_gib=args.activation_gib,
                                       motion_guidance_record=prior is not None and not args.no_guide_loss,
                                       num_frames=frames_n, height=height, width=width)
    if embeds is None:
        call_kwargs["max_sequence_length"] = text_len
    if args.guidance_scale is not None:
        call_kwargs["guidance_scale"] = args.guidance_scale
    if args.negative_prompt is not None and embeds is None:
        call_kwargs["negative_prompt"] = args.negative_prompt
    if image_path:
        from diffusers.utils import load_image

        try:
            call_kwargs["image"] = load_image(image_path)  # PIL RGB; the pipeline resizes it to height × width
        except Exception as e:  # noqa: BLE001 — PIL's many errors for a file that is not an image
            raise InputError(f"--image {image_path} could not be read as an image ({e})") from e

    # what makes a video: everything that changes its pixels (not the activation budget, which only splits calls)
    scheduler_config = json.dumps(dict(pipe.scheduler.config), sort_keys=True, default=str)
    common = dict(
        model=args.model, model_sha256=folder_fingerprint(args.model, sample=1 << 20), family=family,
        prior=args.prior, prior_sha256=folder_fingerprint(args.prior) if args.prior else None, prior_dtype=prior_dtype,
        window=args.window, mode=args.mode, steps=args.steps, guidance_scale=args.guidance_scale,
        negative_prompt=args.negative_prompt, frames=frames_n, height=height, width=width, text_len=text_len,
        scheduler=type(pipe.scheduler).__name__,
        scheduler_sha256=hashlib.sha256(scheduler_config.encode()).hexdigest(), dtype=dtype_name, fps=fps,
        image=image_path, image_sha256=hashlib.sha256(Path(image_path).read_bytes()).hexdigest() if image_path else None,
    )

    def recipe(i: int, seed: int, lam: float) -> dict[str, Any]:
        prompt = (dict(prompt_embeds_sha256=_tensor_sha256(embeds[i], None if negative is None else
                                                           negative[i if negative.shape[0] > 1 else 0]))
                  if embeds is not None else dict(prompt_sha256=hashlib.sha256(texts[i].encode()).hexdigest()))
        return dict(common, **prompt, prompt=texts[i], seed=seed, motion_guidance_scale=lam)

    # (prompt, seed) pair k is made by process k mod N, all its λ together; the rows keep this order
    pairs = [(i, seed) for i in range(len(texts)) for seed in args.seeds]
    name = {(i, seed, lam): f"{i}_{seed}_{_fmt_lambda(lam)}.mp4" for i, seed in pairs for lam in lambdas}
    order = {file: n for n, file in enumerate(name.values())}
    jobs = [(i, seed, lam) for k, (i, seed) in enumerate(pairs) if shards.owns(k) for lam in lambdas]
    rows: dict[str, dict] = {}  # this process's videos, reused or made
    if args.skip_existing and earlier:
        keep, remake = set(), {}
        for job in jobs:
            file = out / name[job]
            if not (file.is_file() and file.stat().st_size > 0):
                continue
            diff = recipe_differences(earlier.get(file.name, {}).get("recipe"), recipe(*job))
            if diff:
                remake[file.name] = diff
            else:
                keep.add(file.name)
        rows.update({file: earlier[file] for file in keep})
        jobs = [j for j in jobs if name[j] not in keep]
        if keep:
            print(f"reusing {len(keep)} video(s) in {out} made exactly as asked now")
        if remake:
            unknown = [n for n, diff in remake.items() if diff == [_NO_RECORD]]
            changed = sorted({k for diff in remake.values() for k in diff if k != _NO_RECORD})
            why = ([f"they were made with another {', '.join(changed)}"] if changed else []) + \
                  ([f"run.json does not say how {len(unknown)} of them were made"] if unknown else [])
            print(f"making {len(remake)} video(s) in {out} again: {'; '.join(why)}")
    shard_file = _shard_file(out, shards)

    def save() -> None:
        record["videos"] = sorted(rows.values(), key=lambda v: order[v["file"]])
        _write_json(shard_file, record)

    save()
    sample_seconds = 0.0
    desc = "lamo sample" + (f" [rank {shards.rank}/{shards.world_size}]" if shards.world_size > 1 else "")
    for i, seed, lam in tqdm(jobs, desc=desc, unit="video"):
        kwargs = dict(call_kwargs, motion_guidance_scale=lam, generator=torch.Generator("cpu").manual_seed(seed))
        if embeds is not None:
            kwargs["prompt_embeds"] = embeds[i:i + 1].to(device, dtype)
            if negative is not None:
                kwargs["negative_prompt_embeds"] = negative[i if negative.shape[0] > 1 else 0][None].to(device, dtype)
        else:
            kwargs["prompt"] = texts[i]
        t0 = time.perf_counter()
        frames = pipe(**kwargs).frames[0]  # (T, H, W, 3) float in [0, 1]
        seconds = time.perf_counter() - t0
        sample_seconds += seconds
        path = write_video(out / name[i, seed, lam], frames, fps=fps, reproducible=True)  # same frames, same bytes
        history = pipe.motion_guidance_history
        rows[path.name] = dict(
            file=path.name, prompt_index=i, prompt=texts[i], seed=seed, motion_guidance_scale=lam,
            frames=int(frames.shape[0]), height=int(frames.shape[1]), width=int(frames.shape[2]),
            seconds=round(seconds, 3),
            guided_steps=[r.step for r in history if r.guided],
            guide_loss=[dict(step=r.step, loss=float(r.loss.sum())) for r in history],
            recipe=recipe(i, seed, lam),
        )
        save()

    record["status"] = "done"
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    record["timings"].update(sample_seconds=round(sample_seconds, 3),
                             total_seconds=round(time.perf_counter() - t_start, 3))
    save()
    if not shards.main:
        print(f"rank {shards.rank}: wrote {len(jobs)} video(s) to {out}; rank 0 writes run.json")
        return 0
    if shards.world_size > 1:
        _write_json(out / "run.json", _merge(_gather(out, shards, run_id), order, t_start))
    for p in out.glob(_SHARD_GLOB):  # in run.json now (also those of an earlier, interrupted sharded run)
        p.unlink(missing_ok=True)
    print(f"wrote {len(jobs)} video(s) and run.json to {out}" +
          (f" ({shards.world_size} processes; this one's share)" if shards.world_size > 1 else ""))
    return 0
