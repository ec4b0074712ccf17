"""Sampling runs: many videos from one LaMo pipeline into a resumable, recorded output folder.

:class:`SampleConfig` says what to make (the fields are ``lamo sample``'s options, by the same names);
:class:`SampleRun` makes it::

    from lamo.sampling import SampleConfig, SampleRun

    record = SampleRun(SampleConfig(model="path/to/pipeline", prior="path/to/prior",
                                    prompt=["a red ball bounces"], seeds=[0, 1], out="samples")).run()

Every (prompt, seed, λ) makes ``OUT/<prompt_idx>_<seed>_<λ>.mp4`` (λ as ``1``, ``0.3``, ``3``; a λ that 6 significant
digits would confuse with another is written exactly, e.g. ``1.0000001``; the same λ twice is refused); the videos of
one prompt and seed share their initial noise, so λ is the only difference between them. ``OUT/run.json`` records the arguments, library versions,
the prior's config, the settings actually used and where each came from (``settings`` / ``settings_sources``:
the caller, the prior's ``sampling.json``, or a default — :func:`lamo.pipelines.resolve_sampling_settings`), and
each video's file, seconds and per-step ``L_guide`` (measured at every step whenever a prior is given, λ = 0
included, unless ``no_guide_loss``); it is rewritten after each video so an interrupted run keeps what it made.
Each video's ``recipe`` holds everything that changes its pixels; ``skip_existing`` keeps exactly the videos whose
recipe matches what is asked now (:func:`recipe_differences`) and that still decode to the frames recorded (a video
cut short or corrupt is made again). Each run has a ``run_id``, and each video row names the ``run`` that made it;
``videos`` lists this run's sweep (made now or reused), ``other_videos`` the videos earlier runs left in ``OUT`` that
this run did not ask for (still there and intact; ``run`` ``None`` for a video nobody recorded), so run.json accounts
for every video in the folder. While a run writes, ``OUT/.lamo-sample.lock`` (pid and host) refuses a second sampler
in the same folder; a lock whose process is gone (same host) is taken over.

Under ``torchrun`` / ``accelerate launch`` (``RANK`` / ``WORLD_SIZE`` set) the (prompt, seed) pairs are shared out:
pair ``k`` (prompts in order, seeds in order within a prompt) is made, with all its λ, by process ``k mod N``, and
each process records its videos in ``OUT/run.rank-<r>-of-<N>.json`` as it goes (so that an interrupted run can be
resumed); rank 0 alone holds the folder's lock. Rank 0 gathers every process's record (:meth:`lamo.sharding.Shards.gather`, torch.distributed's
``gather_object``), merges them into ``run.json`` — the rows one process would write, in the same order — and
deletes the per-process files.
Every video is seeded by its own seed, so the videos do not depend on ``N``. An interrupted run, sharded or not,
is finished by the same call with ``skip_existing`` and any number of processes.

Prompts come as text (``prompt``, or ``prompts_file``: one per line, or a CSV / JSON / JSONL table with a
``caption``, ``prompt``, ``text`` or ``prompt_en`` column — :mod:`lamo.data.tables`) or, for models saved without
a text encoder, as precomputed embeddings (``prompt_embeds``: a safetensors file holding ``prompt_embeds``
``(N, L, D)``, optionally ``negative_prompt_embeds`` ``(N or 1, L, D)`` — needed when CFG is on — and the prompt
texts as JSON under the metadata key ``prompts``; :func:`save_prompt_embeds` writes one).

Only the standard library is imported here at module level; torch and diffusers load when a run starts.
Mistakes in the config raise :class:`~lamo.errors.InputError` / :class:`~lamo.errors.MissingInputError` naming
the ``lamo sample`` option of the field (``motion_guidance_window`` is ``--motion-guidance-window``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._io import write_text_atomic
from .errors import HUB_ID, InputError, MissingInputError
from .sharding import Shards

__all__ = ["SampleConfig", "SampleRun", "run_sampling", "save_prompt_embeds", "load_prompt_embeds",
           "read_prompts_file", "folder_fingerprint", "recipe_differences", "FAMILIES", "DEFAULT_FPS"]

FAMILIES = ("cogvideox", "wan", "hunyuanvideo", "ltx")
DEFAULT_FPS = {"cogvideox": 8, "wan": 16, "hunyuanvideo": 24, "ltx": 24}
MAX_FPS = 1000  # most frames per second a video may be written at
_VIDEO_NAME = re.compile(r"\d+_-?\d+_[^_/]+\.mp4")  # <prompt_idx>_<seed>_<λ>.mp4
_SHARD_GLOB = "run.rank-*-of-*.json"  # what each process of a sharded run records while it runs
_NO_RECORD = "(no record)"
LOCK_FILE = ".lamo-sample.lock"  # in OUT while a run writes there


@dataclass
class SampleConfig:
    """What a sampling run makes; each field is the ``lamo sample`` option of the same name (``_`` for ``-``).

    ``None`` settings are resolved when the pipeline is loaded: λ, ρ, steps and CFG from the prior's
    ``sampling.json``, else defaults; sizes from the model's config.
    """

    model: str  # diffusers pipeline folder or hub id (CogVideoX, Wan, HunyuanVideo or LTX-Video)
    prompt: list[str] | None = None  # text prompts (one of prompt / prompts_file / prompt_embeds)
    prompts_file: str | None = None  # text file (one prompt per line) or a CSV / JSON / JSONL table
    prompt_embeds: str | None = None  # safetensors file of precomputed prompt embeddings
    family: str | None = None  # "cogvideox", "wan", "hunyuanvideo" or "ltx" (None: from the model's model_index.json)
    prior: str | None = None  # motion prior folder
    negative_prompt: str | None = None
    image: str | None = None  # image-to-video: the first frame
    seeds: list[int] = field(default_factory=lambda: [0])
    steps: int | None = None  # denoising steps
    guidance_scale: float | None = None  # classifier-free guidance scale
    motion_guidance_scale: list[float] | None = None  # λ values swept
    motion_guidance_window: float | None = None  # ρ
    motion_guidance_mode: str = "output"
    motion_guidance_reduction: str = "sum"
    motion_guidance_window_rounding: str = "ceil"
    motion_guidance_stop_gradient: bool = False
    motion_guidance_schedule: str = "constant"
    motion_guidance_more_priors: list[str] = field(default_factory=list)  # further prior folders
    frames: int | None = None
    height: int | None = None
    width: int | None = None
    max_sequence_length: int | None = None
    fps: float | None = None
    dtype: str | None = None  # "float32" / "bfloat16" / "float16" (None: bf16 on CUDA, fp32 on CPU)
    device: str | None = None
    prior_dtype: str | None = None  # "float32" / "bfloat16" (None: bf16 beside a bf16 model)
    activation_gib: float = 2.0  # most GiB of prior activations held at once during a guided step
    cpu_offload: str = "none"  # none | model | sequential (diffusers' CPU offload; needs a GPU)
    vae_slicing: bool = False  # decode one video of a batch at a time
    vae_tiling: bool = False  # decode in overlapping spatial tiles
    release_sampler: bool = False  # the release's sampler: DPM, trailing timesteps, first-order steps, dynamic CFG
    no_guide_loss: bool = False  # measure L_guide only at guided steps
    out: str = "samples"
    skip_existing: bool = False  # resume: keep the videos made exactly as asked now
    overwrite: bool = False  # replace an earlier run in `out`


# ---------------------------------------------------------------------------------------- prompt I/O
def save_prompt_embeds(path: str | os.PathLike, prompt_embeds: Any, negative_prompt_embeds: Any = None,
                       prompts: list[str] | None = None) -> Path:
    """Write a prompt-embeddings file: ``prompt_embeds`` ``(N, L, D)``, optional negatives, prompt texts."""
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
    """Read a prompt-embeddings file → ``(prompt_embeds, negative_prompt_embeds or None, prompts or None)``."""
    from safetensors import safe_open

    from .errors import check_safetensors

    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"prompt embeddings file {path} not found")
    check_safetensors(path, "--prompt-embeds")  # garbled or truncated: one line, not the reader's traceback
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
    prompts = None
    if "prompts" in meta:
        try:
            prompts = json.loads(meta["prompts"])
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: its metadata 'prompts' is not JSON ({e}); write the file with "
                             "lamo.sampling.save_prompt_embeds(..., prompts=[one text per embedding])") from e
        if not (isinstance(prompts, list) and all(isinstance(t, str) for t in prompts)):
            raise InputError(f"{path}: its metadata 'prompts' must be a JSON list of texts, got "
                             f"{type(prompts).__name__}; write the file with lamo.sampling.save_prompt_embeds")
        if len(prompts) != embeds.shape[0]:
            raise InputError(f"{path}: its metadata lists {len(prompts)} prompt text(s) for {embeds.shape[0]} "
                             "prompt embedding(s); give one text per embedding (save_prompt_embeds(..., prompts=…)) "
                             "or drop the 'prompts' metadata")
    return embeds, negative, prompts


def read_prompts_file(path: str | os.PathLike) -> list[str]:
    """Prompts from a text file (one per line), CSV, JSON or JSONL (:func:`lamo.data.tables.read_prompts`)."""
    from .data.tables import read_prompts

    return read_prompts(path)


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


def recipe_differences(old: dict | None, new: dict) -> list[str]:
    """The keys of what made a video that differ between an earlier ``recipe`` and the one asked for now."""
    if not old:
        return [_NO_RECORD]
    return [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


# ---------------------------------------------------------------------------------------- helpers
def _versions() -> dict[str, str]:
    import platform

    import diffusers
    import torch
    import transformers

    from . import __version__

    return dict(lamo=__version__, torch=torch.__version__, diffusers=diffusers.__version__,
                transformers=transformers.__version__, python=platform.python_version())


def _write_json(path: Path, record: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(record, indent=2, default=str))


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


def _model_index(model: str) -> dict | None:
    """The model's ``model_index.json`` (local folder or hub), or ``None`` when it cannot be read here."""
    from diffusers import DiffusionPipeline

    try:
        return dict(DiffusionPipeline.load_config(model))
    except (OSError, ValueError):
        return None


def check_config(cfg: SampleConfig) -> None:
    """Refuse bad numbers and missing inputs before anything is loaded or written, naming the option."""
    from .guidance import GUIDANCE_MODES, GUIDANCE_REDUCTIONS, GUIDANCE_SCHEDULES, WINDOW_ROUNDINGS

    if sum(x is not None for x in (cfg.prompt, cfg.prompts_file, cfg.prompt_embeds)) != 1:
        raise InputError("give the prompts one way: --prompt, --prompts-file or --prompt-embeds")
    if not cfg.seeds:
        raise InputError("--seeds needs at least one seed")
    if cfg.steps is not None and cfg.steps < 1:
        raise InputError(f"--steps must be ≥ 1 (denoising steps), got {cfg.steps}")
    if cfg.motion_guidance_window is not None and not 0.0 <= cfg.motion_guidance_window <= 1.0:  # also NaN
        raise InputError(f"--motion-guidance-window (ρ) must lie in [0, 1], got {cfg.motion_guidance_window}")
    if cfg.guidance_scale is not None and not math.isfinite(cfg.guidance_scale):
        raise InputError(f"--guidance-scale must be a finite number, got {cfg.guidance_scale}")
    if cfg.fps is not None and not (math.isfinite(cfg.fps) and 1 <= cfg.fps <= MAX_FPS and cfg.fps == int(cfg.fps)):
        raise InputError(f"--fps must be a whole number of frames per second from 1 to {MAX_FPS} (an mp4 made here "
                         f"holds a whole-number rate), got {cfg.fps!r}")
    for name in ("frames", "height", "width", "max_sequence_length"):
        v = getattr(cfg, name)
        if v is not None and v < 1:
            raise InputError(f"--{name.replace('_', '-')} must be ≥ 1, got {v}")
    choices = (("motion_guidance_mode", GUIDANCE_MODES), ("motion_guidance_reduction", GUIDANCE_REDUCTIONS),
               ("motion_guidance_window_rounding", WINDOW_ROUNDINGS), ("motion_guidance_schedule", GUIDANCE_SCHEDULES))
    for name, allowed in choices:
        if getattr(cfg, name) not in allowed:
            raise InputError(f"--{name.replace('_', '-')} must be one of {list(allowed)}, got {getattr(cfg, name)!r}")
    lambdas = cfg.motion_guidance_scale or []
    if any(not (math.isfinite(lam) and lam >= 0) for lam in lambdas):
        raise InputError(f"--motion-guidance-scale values must be finite and ≥ 0, got {lambdas}")
    seen: dict[float, Any] = {}
    for lam in lambdas:
        if lam in seen:  # also 1 and 1.0, 0 and -0: one video name, one video
            raise InputError(f"--motion-guidance-scale lists λ = {_fmt_lambda(float(lam))} twice ({seen[lam]!r} and "
                             f"{lam!r}): give each value once")
        seen[lam] = lam
    if any(lam > 0 for lam in lambdas) and not cfg.prior:
        raise InputError("--motion-guidance-scale > 0 needs a motion prior: pass --prior PATH")
    if cfg.motion_guidance_more_priors and not cfg.prior:
        raise InputError("--motion-guidance-more-priors guide beside --prior: pass --prior PATH too")
    from .pipelines.settings import CPU_OFFLOADS

    if cfg.cpu_offload not in CPU_OFFLOADS:
        raise InputError(f"--cpu-offload must be one of {list(CPU_OFFLOADS)}, got {cfg.cpu_offload!r}")
    if not cfg.activation_gib > 0:  # also NaN
        raise InputError(f"--activation-gib must be > 0 (GiB of prior activations per call), got {cfg.activation_gib}")
    if cfg.skip_existing and cfg.overwrite:
        raise InputError("--skip-existing keeps earlier videos and --overwrite deletes them: pass one")
    if cfg.prior and not os.path.isdir(cfg.prior):
        raise MissingInputError(f"motion prior folder {cfg.prior} not found (--prior)")
    for extra in cfg.motion_guidance_more_priors:
        if not os.path.isdir(extra):
            raise MissingInputError(f"motion prior folder {extra} not found (--motion-guidance-more-priors)")
    if cfg.prior or cfg.motion_guidance_more_priors:  # a garbled or truncated prior: refused before the model loads
        from .prior import check_prior_folder

        for flag, path in [("--prior", cfg.prior)] + [("--motion-guidance-more-priors", p)
                                                       for p in cfg.motion_guidance_more_priors]:
            check_prior_folder(path, flag)
    if cfg.image and not os.path.isfile(cfg.image):
        raise MissingInputError(f"image {cfg.image} not found (--image)")
    if not os.path.exists(cfg.model) and not HUB_ID.fullmatch(cfg.model):
        raise MissingInputError(f"model {cfg.model!r} is neither a local folder nor a hub id (owner/name)")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder")
    _check_against_model_files(cfg)


def _local_config(model: str, name: str) -> dict:
    """``MODEL/name`` (a JSON object) of a local model folder; ``{}`` when absent or unreadable (loading says why)."""
    try:
        data = json.loads((Path(model) / name).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _check_against_model_files(cfg: SampleConfig) -> None:
    """What a local model folder's config files settle before the model is loaded: the frame count its VAE can
    make (1 + a multiple of its temporal compression) and the width of ``--prompt-embeds``."""
    index = _local_config(cfg.model, "model_index.json")
    name = str(index.get("_class_name", ""))
    if not (name.startswith("CogVideoX") or name.startswith("Wan")):
        return
    transformer = _local_config(cfg.model, "transformer/config.json")
    t = int(transformer.get("temporal_compression_ratio") or 4)  # CogVideoX records it; Wan's VAE is 4× too
    if cfg.frames is not None and (cfg.frames - 1) % t:
        lower = (cfg.frames - 1) // t * t + 1
        raise InputError(f"--frames {cfg.frames}: {cfg.model} ({name}) makes 1 + a multiple of {t} frames; pass "
                         f"--frames {lower} or {lower + t}")
    width = transformer.get("text_embed_dim") or transformer.get("text_dim")
    if cfg.prompt_embeds and isinstance(width, int) and os.path.isfile(cfg.prompt_embeds):
        from .errors import check_safetensors

        entry = check_safetensors(cfg.prompt_embeds, "--prompt-embeds").get("prompt_embeds") or {}
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if isinstance(shape, list) and len(shape) == 3 and shape[2] != width:
            raise InputError(f"--prompt-embeds {cfg.prompt_embeds}: prompt embeddings {shape[2]} wide, but {cfg.model}'s "
                             f"transformer takes {width} (text_embed_dim / text_dim); make them with this model's "
                             "text encoder")


def _release_folder(prior: str) -> bool:
    """Whether a --prior folder is the authors' release (or :func:`lamo.convert.convert_release_predictor`'s output)
    holding more than the prior: a fine-tuned ``transformer/`` or LoRA weights (``lora/``, or beside
    ``predictor.safetensors``)."""
    folder = Path(prior)
    if not folder.is_dir():
        return False
    if (folder / "transformer").is_dir() or (folder / "lora").is_dir():
        return True
    return (folder / "predictor.safetensors").is_file() and any(
        p.name != "predictor.safetensors" for p in folder.glob("*.safetensors"))


# ---------------------------------------------------------------------------------------- the output folder
def _shard_file(out: Path, shards: Shards) -> Path:
    """Where a process records its videos while it runs: ``run.json`` itself when it is the only one."""
    return out / ("run.json" if shards.world_size == 1 else f"run.rank-{shards.rank}-of-{shards.world_size}.json")


def _earlier_videos(out: Path, skip_existing: bool, overwrite: bool) -> dict[str, dict] | None:
    """The videos an earlier run left in ``out``: file name → its row of ``run.json`` or of the per-process files
    of an interrupted sharded run (the newest record of a file wins); ``{}`` for videos nobody recorded; ``None``
    when ``out`` holds no run. Refused unless ``skip_existing`` or ``overwrite`` says what to do with them."""
    records = [out / "run.json"] if (out / "run.json").is_file() else []
    records += sorted(out.glob(_SHARD_GLOB), key=lambda p: p.stat().st_mtime_ns)
    videos_there = out.is_dir() and any(out.glob("*.mp4"))
    told = skip_existing or overwrite
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
            rec = json.loads(path.read_text())
            rows = list(rec.get("other_videos") or []) + list(rec.get("videos") or [])  # its own videos win
        except (json.JSONDecodeError, AttributeError, TypeError) as e:
            if skip_existing:
                raise InputError(f"{path} is not a run record ({e}), so its videos cannot be checked for reuse; "
                                 "pass --overwrite to make them again") from e
            continue
        run_id = rec.get("run_id") or (rec.get("shard") or {}).get("run_id")  # runs before run_id: the shard's
        for v in rows:
            if isinstance(v, dict) and isinstance(v.get("file"), str):
                videos[v["file"]] = {"run": run_id, **v}  # the run that made it (rows since run_id say so)
    return videos


def _decoded_frames(path: Path, decode: bool = True) -> int | None:
    """How many frames ``path`` decodes to (PyAV); ``None`` when it does not decode to the end. ``decode=False``
    counts the stream's packets instead (a file cut short, but not every corruption, is caught; far faster)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if decode:
                return sum(1 for _ in container.decode(stream))
            return sum(1 for packet in container.demux(stream) if packet.size)
    except Exception:  # noqa: BLE001 — PyAV's many errors for a cut or corrupt file
        return None


def _intact(path: Path, frames: Any, decode: bool = True) -> bool:
    """Whether ``path`` decodes to the end, to ``frames`` frames when known (as run.json records each video)."""
    n = _decoded_frames(path, decode)
    return bool(n) and (not isinstance(frames, int) or n == frames)


def _other_videos(out: Path, earlier: dict[str, dict], made_now: set[str]) -> list[dict]:
    """The videos of ``out`` that this run does not make: earlier runs' rows (each names its ``run``) whose file
    is still there and whole (all its frames' packets), and any video nobody recorded (``run``: ``None``); sorted by
    file name."""
    rows = []
    for p in sorted(out.glob("*.mp4")) if out.is_dir() else []:
        if p.name in made_now or p.name.startswith("."):
            continue
        row = earlier.get(p.name) or dict(file=p.name, run=None, recipe=None)
        if _intact(p, row.get("frames"), decode=False):  # not used by this run: a quick check that it is whole
            rows.append(row)
    return rows


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


def _fmt_lambda(lam: float) -> str:
    """λ as it appears in a video's name: ``1``, ``0.3``, ``3`` for ordinary values (6 significant digits), the
    shortest exact form (``1.0000001``) when those would name two λ alike — so each λ has its own name."""
    short = f"{lam:g}"
    return short if float(short) == lam else repr(float(lam))


# ---------------------------------------------------------------------------------------- the run
class SampleRun:
    """One sampling run (see the module docstring): :meth:`run` loads the pipeline and prior, resolves the
    settings, makes the videos this process owns that are not already there, and records them in ``run.json``.

    Attributes set by :meth:`run`: ``pipe``, ``prior``, ``settings`` (values used, λ as the list swept) and
    ``settings_sources`` (``"caller"`` / ``"prior"`` / ``"default"`` for λ, ρ, steps, CFG), ``record`` (what
    this process wrote).
    """

    def __init__(self, config: SampleConfig):
        check_config(config)
        self.config = config
        self.shards = Shards.from_env()
        self.out = Path(config.out)
        self.pipe: Any = None
        self.prior: Any = None
        self.settings: dict[str, Any] = {}
        self.settings_sources: dict[str, str] = {}
        self.record: dict[str, Any] = {}

    # ---------------------------------------------------------------- what to sample
    def _prompts(self) -> tuple[list, Any, Any]:
        cfg = self.config
        if cfg.prompt_embeds:
            embeds, negative, texts = load_prompt_embeds(cfg.prompt_embeds)
            if embeds.shape[0] == 0:
                raise InputError(f"--prompt-embeds {cfg.prompt_embeds} holds no prompt (prompt_embeds of shape "
                                 f"{tuple(embeds.shape)}): nothing to sample; give a file with at least one")
            return texts if texts is not None else [None] * embeds.shape[0], embeds, negative
        texts = list(cfg.prompt) if cfg.prompt else read_prompts_file(cfg.prompts_file)
        if not texts:
            raise InputError(f"{cfg.prompts_file or '--prompt'}: no prompt given; nothing to sample")
        return texts, None, None

    def _load(self, device: Any, dtype: Any) -> str:
        """Load the pipeline and priors onto ``device``; the family."""
        import torch

        from .adapters.registry import detect_family
        from .pipelines import is_image_to_video_model, pipeline_class, takes_image
        from .prior import MotionPrior

        cfg = self.config
        family = cfg.family or detect_family(cfg.model)
        index = _model_index(cfg.model)
        if index is not None:
            if cfg.image and not takes_image(index):
                raise InputError(f"--image needs an image-to-video model; {cfg.model} is a "
                                 f"{index.get('_class_name')} (text-to-video only)")
            if is_image_to_video_model(index) and not cfg.image:
                raise InputError(f"{cfg.model} is an image-to-video model ({index.get('_class_name')}): pass --image PATH")
        from ._quiet import quiet_loading

        if cfg.cpu_offload != "none" and device.type == "cpu":  # before the weights are read
            raise InputError(f"--cpu-offload {cfg.cpu_offload} keeps the weights on the CPU and moves them to a GPU "
                             "while they run; this run is on the CPU: drop --cpu-offload or pass --device cuda")
        with quiet_loading():
            pipe = pipeline_class(family, image_to_video=bool(cfg.image)).from_pretrained(
                cfg.model, **_load_kwargs(cfg.model, dtype))
        # without --prior-dtype, load_motion_prior picks bf16 beside a bf16 transformer, fp32 otherwise
        prior_kwargs = {"torch_dtype": getattr(torch, cfg.prior_dtype)} if cfg.prior_dtype else {}
        try:
            if cfg.prior and _release_folder(cfg.prior):
                # the authors' release (or its conversion): its LoRA / fine-tuned transformer go into the model too
                from .convert import load_release

                self.prior = load_release(pipe, cfg.prior, **prior_kwargs)
                print(f"lamo sample: --prior {cfg.prior} is a release folder: its motion prior and its "
                      f"{'fine-tuned transformer' if Path(cfg.prior, 'transformer').is_dir() else 'LoRA weights'} "
                      "are loaded", flush=True)
            else:
                self.prior = pipe.load_motion_prior(cfg.prior, **prior_kwargs) if cfg.prior else None
        except ValueError as e:  # a prior that does not fit this backbone: the user's choice of --prior
            raise InputError(f"--prior {cfg.prior}: {e}") from e
        if cfg.cpu_offload == "none":
            pipe.to(device)
        pipe.enable_memory_savings(cpu_offload=cfg.cpu_offload, vae_slicing=cfg.vae_slicing, vae_tiling=cfg.vae_tiling,
                                   device=device)
        pipe.set_progress_bar_config(disable=True)
        if cfg.release_sampler:
            from .pipelines.release import use_release_sampling

            try:
                use_release_sampling(pipe)
            except InputError as e:
                raise InputError(f"--release-sampler: {e}") from e
        self.more_priors = []
        for path in cfg.motion_guidance_more_priors:
            extra = MotionPrior.from_pretrained(path, torch_dtype=self.prior.dtype)
            try:
                pipe.check_motion_prior(extra)
            except ValueError as e:
                raise InputError(f"--motion-guidance-more-priors {path}: {e}") from e
            self.more_priors.append(extra)
        lags = [p.config.tau for p in [self.prior, *self.more_priors] if p is not None]
        if len(set(lags)) < len(lags):
            raise InputError(f"--prior and --motion-guidance-more-priors guide at one lag each; got lags τ = {lags} "
                             "(pass priors trained at different --tau)")
        self.pipe = pipe
        return family

    def _resolve(self) -> list[float]:
        """λ (the list swept), ρ, steps and CFG: given, else the prior's recorded ones, else defaults."""
        from .pipelines.settings import resolve_sampling_settings

        cfg = self.config
        values, sources = resolve_sampling_settings(
            self.pipe, self.prior, motion_guidance_scale=(cfg.motion_guidance_scale or [None])[0],
            motion_guidance_window=cfg.motion_guidance_window, num_inference_steps=cfg.steps,
            guidance_scale=cfg.guidance_scale)
        lambdas = [float(v) + 0.0 for v in cfg.motion_guidance_scale] if cfg.motion_guidance_scale else \
            [float(values["motion_guidance_scale"]) + 0.0]  # + 0.0: λ −0 is λ 0
        self.settings = dict(
            motion_guidance_scale=lambdas, motion_guidance_window=float(values["motion_guidance_window"]),
            num_inference_steps=int(values["num_inference_steps"]), guidance_scale=float(values["guidance_scale"]),
            motion_guidance_mode=cfg.motion_guidance_mode, motion_guidance_reduction=cfg.motion_guidance_reduction,
            motion_guidance_window_rounding=cfg.motion_guidance_window_rounding,
            motion_guidance_stop_gradient=cfg.motion_guidance_stop_gradient,
            motion_guidance_schedule=cfg.motion_guidance_schedule,
            motion_guidance_more_priors=list(cfg.motion_guidance_more_priors),
        )
        self.settings_sources = sources
        return lambdas

    def describe_settings(self) -> str:
        """One line: each of λ, ρ, steps and CFG used, and where it came from."""
        s, src = self.settings, self.settings_sources
        return (f"λ={', '.join(map(_fmt_lambda, s['motion_guidance_scale']))} ({src['motion_guidance_scale']}), "
                f"ρ={s['motion_guidance_window']:g} ({src['motion_guidance_window']}), "
                f"steps={s['num_inference_steps']} ({src['num_inference_steps']}), "
                f"CFG={s['guidance_scale']:g} ({src['guidance_scale']})")

    # ---------------------------------------------------------------- the run
    def run(self) -> dict[str, Any]:
        """Make the videos; returns this process's record (rank 0: what ``run.json`` holds).

        While it runs, ``OUT/.lamo-sample.lock`` (taken by rank 0 only: the processes of one sharded run share the
        folder) refuses another sampler in the same folder (:class:`lamo.locks.FolderLock`).
        """
        from .locks import FolderLock

        t_start = time.perf_counter()
        prompts = self._prompts()  # refused before the folder is touched
        created = not self.out.exists()
        lock = FolderLock(self.out, "lamo sample", LOCK_FILE) if self.shards.main else None
        if lock is not None:
            lock.acquire()
        try:
            return self._run(t_start, *prompts)
        except BaseException as e:  # a failed or interrupted run is not left marked "running" in run.json
            if self.record.get("status") == "running":
                self.record.update(status="interrupted" if isinstance(e, KeyboardInterrupt) else "failed",
                                   error=f"{type(e).__name__}: {e}", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                _write_json(_shard_file(self.out, self.shards), self.record)
            raise
        finally:
            if lock is not None:
                lock.release()
            if created and self.shards.main and self.out.is_dir() and not any(self.out.iterdir()):
                self.out.rmdir()  # a run refused before it wrote anything leaves no empty folder

    def _run(self, t_start: float, texts: list, embeds: Any, negative: Any) -> dict[str, Any]:
        import torch
        from tqdm.auto import tqdm

        from .pipelines.settings import check_sizes, model_sizes
        from .video_io import write_video

        cfg, shards, out = self.config, self.shards, self.out
        earlier = _earlier_videos(out, cfg.skip_existing, cfg.overwrite)  # read by every process before any writes

        # ---- the pipeline
        device = shards.device(cfg.device)
        dtype_name = cfg.dtype or ("bfloat16" if device.type == "cuda" else "float32")
        dtype = getattr(torch, dtype_name)
        family = self._load(device, dtype)
        pipe, prior = self.pipe, self.prior
        if embeds is None and (getattr(pipe, "tokenizer", None) is None or getattr(pipe, "text_encoder", None) is None):
            raise InputError(f"{cfg.model} has no tokenizer / text encoder (saved without them): pass --prompt-embeds "
                             "FILE.safetensors with precomputed prompt embeddings instead of text prompts")
        sizes = model_sizes(pipe, family)
        frames_n = cfg.frames or sizes["frames"]
        height, width = cfg.height or sizes["height"], cfg.width or sizes["width"]
        text_len = int(embeds.shape[1]) if embeds is not None else (cfg.max_sequence_length or sizes["text_len"])
        check_sizes(pipe, family, frames_n, height, width, text_len)
        lambdas = self._resolve()
        steps, cfg_scale, window = (self.settings[k] for k in ("num_inference_steps", "guidance_scale",
                                                                "motion_guidance_window"))
        if embeds is not None and cfg_scale > 1.0 and negative is None:
            raise InputError(f"{cfg.prompt_embeds} has no 'negative_prompt_embeds', which classifier-free guidance "
                             f"(CFG {cfg_scale:g}) needs for a model without a text encoder; add them or pass "
                             "--guidance-scale 1")
        image = None
        if cfg.image:
            from diffusers.utils import load_image

            try:
                image = load_image(cfg.image)  # PIL RGB; the pipeline resizes it to height × width
            except Exception as e:  # noqa: BLE001 — PIL's many errors for a file that is not an image
                raise InputError(f"--image {cfg.image} could not be read as an image ({e})") from e
        load_seconds = time.perf_counter() - t_start
        if shards.main:
            print(f"lamo sample: {self.describe_settings()}", flush=True)

        # ---- the sweep
        run_id = shards.sync(lambda: _start(out, earlier, cfg.overwrite))
        fps = int(cfg.fps) if cfg.fps is not None else DEFAULT_FPS[family]  # the rate the mp4s hold
        prior_dtype = None if prior is None else str(prior.dtype).removeprefix("torch.")
        record: dict[str, Any] = dict(
            command="lamo sample",
            args=dataclasses.asdict(cfg),
            versions=_versions(),
            run_id=run_id,
            family=family, pipeline=type(pipe).__name__, device=str(device), dtype=dtype_name, fps=fps,
            prior_dtype=prior_dtype,
            prior=None if prior is None else dict(path=cfg.prior, config=dict(prior.config)),
            settings=self.settings, settings_sources=self.settings_sources,
            prompts=texts, seeds=list(cfg.seeds), lambdas=lambdas,
            size=dict(frames=frames_n, height=height, width=width, text_len=text_len),
            started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), status="running",
            timings=dict(load_seconds=round(load_seconds, 3)), processes=shards.world_size, videos=[],
        )
        self.record = record
        if shards.world_size > 1:
            record["shard"] = dict(rank=shards.rank, run_id=run_id)
        call_kwargs: dict[str, Any] = dict(
            num_inference_steps=steps, guidance_scale=cfg_scale, output_type="np",
            motion_guidance_window=window, motion_guidance_mode=cfg.motion_guidance_mode,
            motion_guidance_reduction=cfg.motion_guidance_reduction,
            motion_guidance_window_rounding=cfg.motion_guidance_window_rounding,
            motion_guidance_stop_gradient=cfg.motion_guidance_stop_gradient,
            motion_guidance_schedule=cfg.motion_guidance_schedule, motion_guidance_more_priors=self.more_priors,
            motion_guidance_activation_gib=cfg.activation_gib,
            motion_guidance_record=prior is not None and not cfg.no_guide_loss,
            num_frames=frames_n, height=height, width=width)
        if cfg.release_sampler:
            call_kwargs["use_dynamic_cfg"] = True
        if embeds is None:
            call_kwargs["max_sequence_length"] = text_len
        if cfg.negative_prompt is not None and embeds is None:
            call_kwargs["negative_prompt"] = cfg.negative_prompt
        if image is not None:
            call_kwargs["image"] = image

        # what makes a video: everything that changes its pixels (not the activation budget, which only splits calls)
        scheduler_config = json.dumps(dict(pipe.scheduler.config), sort_keys=True, default=str)
        common = dict(
            model=cfg.model, model_sha256=folder_fingerprint(cfg.model, sample=1 << 20), family=family,
            prior=cfg.prior, prior_sha256=folder_fingerprint(cfg.prior) if cfg.prior else None, prior_dtype=prior_dtype,
            window=window, mode=cfg.motion_guidance_mode, steps=steps, guidance_scale=cfg_scale,
            reduction=cfg.motion_guidance_reduction, window_rounding=cfg.motion_guidance_window_rounding,
            stop_gradient=cfg.motion_guidance_stop_gradient, schedule=cfg.motion_guidance_schedule,
            more_priors=[dict(path=p, sha256=folder_fingerprint(p)) for p in cfg.motion_guidance_more_priors],
            negative_prompt=cfg.negative_prompt, frames=frames_n, height=height, width=width, text_len=text_len,
            scheduler=type(pipe.scheduler).__name__,
            scheduler_sha256=hashlib.sha256(scheduler_config.encode()).hexdigest(), dtype=dtype_name, fps=fps,
            image=cfg.image, image_sha256=hashlib.sha256(Path(cfg.image).read_bytes()).hexdigest() if cfg.image else None,
        )

        if cfg.vae_tiling:  # tiles can move pixels at their seams (above a tile's size); slicing and offload cannot
            common["vae_tiling"] = True
        if cfg.release_sampler:  # its scheduler is in the recipe already (class and config); dynamic CFG is not
            common["release_sampler"] = True

        def recipe(i: int, seed: int, lam: float) -> dict[str, Any]:
            prompt = (dict(prompt_embeds_sha256=_tensor_sha256(embeds[i], None if negative is None else
                                                               negative[i if negative.shape[0] > 1 else 0]))
                      if embeds is not None else dict(prompt_sha256=hashlib.sha256(texts[i].encode()).hexdigest()))
            return dict(common, **prompt, prompt=texts[i], seed=seed, motion_guidance_scale=lam)

        # (prompt, seed) pair k is made by process k mod N, all its λ together; the rows keep this order
        pairs = [(i, seed) for i in range(len(texts)) for seed in cfg.seeds]
        name = {(i, seed, lam): f"{i}_{seed}_{_fmt_lambda(lam)}.mp4" for i, seed in pairs for lam in lambdas}
        order = {file: n for n, file in enumerate(name.values())}
        jobs = [(i, seed, lam) for k, (i, seed) in enumerate(pairs) if shards.owns(k) for lam in lambdas]
        rows: dict[str, dict] = {}  # this process's videos, reused or made
        if cfg.skip_existing and earlier:
            jobs = self._reuse(jobs, name, earlier, recipe, rows)
        if shards.main:  # the earlier runs' videos this run does not make again stay in the folder, and recorded
            record["other_videos"] = _other_videos(out, earlier or {}, set(order))
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
                file=path.name, run=run_id, prompt_index=i, prompt=texts[i], seed=seed, motion_guidance_scale=lam,
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
            print(f"rank {shards.rank}: wrote {len(jobs)} video(s) to {out}; rank 0 writes run.json", flush=True)
        records = shards.gather(record)  # rank 0: every process's record (torch.distributed's gather_object)
        if not shards.main:
            return record
        if shards.world_size > 1:
            self.record = _merge(records, order, t_start)
            _write_json(out / "run.json", self.record)
        for p in out.glob(_SHARD_GLOB):  # in run.json now (also those of an earlier, interrupted sharded run)
            p.unlink(missing_ok=True)
        print(f"wrote {len(jobs)} video(s) and run.json to {out}" +
              (f" ({shards.world_size} processes; this one's share)" if shards.world_size > 1 else ""))
        return self.record

    def _reuse(self, jobs: list, name: dict, earlier: dict[str, dict], recipe: Any, rows: dict) -> list:
        """Keep (into ``rows``) the earlier videos made exactly as asked now; the jobs left to make."""
        keep, remake, broken = set(), {}, []
        for job in jobs:
            file = self.out / name[job]
            if not (file.is_file() and file.stat().st_size > 0):
                continue
            row = earlier.get(file.name, {})
            diff = recipe_differences(row.get("recipe"), recipe(*job))
            if diff:
                remake[file.name] = diff
            elif not _intact(file, row.get("frames")):  # cut short or corrupt: made again
                broken.append(file.name)
            else:
                keep.add(file.name)
        rows.update({file: earlier[file] for file in keep})
        if keep:
            print(f"reusing {len(keep)} video(s) in {self.out} made exactly as asked now")
        if remake:
            unknown = [n for n, diff in remake.items() if diff == [_NO_RECORD]]
            changed = sorted({k for diff in remake.values() for k in diff if k != _NO_RECORD})
            why = ([f"they were made with another {', '.join(changed)}"] if changed else []) + \
                  ([f"run.json does not say how {len(unknown)} of them were made"] if unknown else [])
            print(f"making {len(remake)} video(s) in {self.out} again: {'; '.join(why)}")
        if broken:
            print(f"making {len(broken)} video(s) in {self.out} again: they do not decode to the frames run.json "
                  f"records (truncated or corrupt): {', '.join(broken)}")
        return [j for j in jobs if name[j] not in keep]


def run_sampling(config: SampleConfig) -> dict[str, Any]:
    """``SampleRun(config).run()``: make the videos, return the run's record."""
    return SampleRun(config).run()
