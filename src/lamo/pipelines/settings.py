"""What a LaMo pipeline call samples with when the caller leaves it out: one resolver for the pipeline and the CLI.

* :func:`resolve_sampling_settings` — λ, window ρ, denoising steps and CFG scale
  (:data:`~lamo.prior.SAMPLING_KEYS`): the caller's value, else the prior's recorded ``sampling.json``
  (:func:`lamo.prior.write_sampling_settings`), else a default — and where each came from.
* :func:`model_sizes` / :func:`check_sizes` — the video size and prompt length the model was made for
  (read from its own config) and a check that a requested size fits it.
* :func:`stock_call` — the diffusers pipeline's own ``__call__`` (whose defaults are "the pipeline's").
* :func:`configure_memory` — model / sequential CPU offload and VAE slicing / tiling (what the authors' release
  samples with on one consumer GPU): ``lamo sample --cpu-offload model --vae-slicing --vae-tiling``.
"""
from __future__ import annotations

import inspect
import logging
import weakref
from typing import Any

from ..errors import InputError
from ..prior import SAMPLING_KEYS, MotionPrior

__all__ = ["resolve_sampling_settings", "describe_settings", "SAMPLING_DEFAULTS", "model_sizes", "check_sizes", "stock_call",
           "pipeline_family", "CPU_OFFLOADS", "configure_memory"]

#: ``none``; ``model`` (diffusers' ``enable_model_cpu_offload``: each model on the accelerator only while it runs);
#: ``sequential`` (``enable_sequential_cpu_offload``: layer by layer, least memory, slowest)
CPU_OFFLOADS = ("none", "model", "sequential")


def configure_memory(pipe: Any, cpu_offload: str = "none", vae_slicing: bool = False, vae_tiling: bool = False,
                     device: Any = None) -> Any:
    """Memory savings for one GPU, through diffusers' own switches; returns ``pipe``.

    ``cpu_offload``: ``"none"``, ``"model"`` or ``"sequential"`` (:data:`CPU_OFFLOADS`); it keeps the weights on the
    CPU and needs accelerate and an accelerator ``device`` (default: the one diffusers finds) — refused on the CPU,
    where there is nothing to offload to. ``vae_slicing`` decodes a batch one video at a time (the same numbers);
    ``vae_tiling`` decodes in overlapping spatial tiles (the same numbers for videos no larger than a tile —
    CogVideoX's VAE tiles above 480×720 px at its defaults — blended seams above that). Neither changes the denoising.
    Motion prior guidance follows the offload: the prior runs on the pipeline's execution device.
    """
    if cpu_offload not in CPU_OFFLOADS:
        raise InputError(f"unknown cpu_offload {cpu_offload!r}; choose from {list(CPU_OFFLOADS)}")
    vae = getattr(pipe, "vae", None)
    for wanted, method in ((vae_slicing, "enable_slicing"), (vae_tiling, "enable_tiling")):
        if wanted and not hasattr(vae, method):
            raise InputError(f"this pipeline's VAE ({type(vae).__name__}) has no {method}(): drop "
                             f"--vae-{method.removeprefix('enable_')}")
    if cpu_offload != "none":
        import torch

        target = torch.device(device) if device is not None else None
        if target is not None and target.type == "cpu" or target is None and not _has_accelerator():
            raise InputError(f"--cpu-offload {cpu_offload} keeps the weights on the CPU and moves them to a GPU while "
                             "they run; there is no GPU here (device cpu): drop --cpu-offload or pass --device cuda")
        from ..errors import require

        require("accelerate", f"--cpu-offload {cpu_offload}")
        enable = pipe.enable_model_cpu_offload if cpu_offload == "model" else pipe.enable_sequential_cpu_offload
        enable(device=target)
    if vae_slicing:
        vae.enable_slicing()
    if vae_tiling:
        vae.enable_tiling()
    return pipe


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available() or bool(getattr(torch, "xpu", None) and torch.xpu.is_available())

log = logging.getLogger("lamo.pipelines")

#: defaults of the guidance settings when neither the caller nor the prior gives them (λ: with a prior;
#: without one guidance is off, λ = 0); steps and CFG default to the stock pipeline's own call defaults
SAMPLING_DEFAULTS: dict[str, float] = {"motion_guidance_scale": 1.0, "motion_guidance_window": 0.8}

_WARNED: "weakref.WeakSet[MotionPrior]" = weakref.WeakSet()  # priors already reported as unvalidated


def stock_call(pipe: Any) -> Any:
    """The diffusers pipeline's own ``__call__`` (LaMo's mixin forwards ``**kwargs`` to it)."""
    from diffusers import DiffusionPipeline

    for cls in type(pipe).__mro__:
        if cls.__module__.startswith("diffusers.") and cls is not DiffusionPipeline and "__call__" in vars(cls):
            return vars(cls)["__call__"]
    raise RuntimeError(f"{type(pipe).__name__} has no diffusers __call__")  # a bug: pipelines subclass diffusers'


def _stock_defaults(pipe: Any) -> dict[str, Any]:
    return {k: v.default for k, v in inspect.signature(stock_call(pipe)).parameters.items()
            if v.default is not inspect.Parameter.empty}


def resolve_sampling_settings(pipe: Any, prior: MotionPrior | None, **given: Any) -> tuple[dict[str, Any],
                                                                                          dict[str, str]]:
    """The λ, ρ, steps and CFG scale a call uses, and where each came from.

    Args:
        pipe: the LaMo (or stock diffusers) pipeline: its own call defaults give steps and CFG.
        prior: the prior guiding the call, or ``None``.
        **given: any of :data:`~lamo.prior.SAMPLING_KEYS`; ``None`` (or absent) means "not given".

    Returns:
        ``(values, sources)``: ``values[key]`` for every key of ``SAMPLING_KEYS``; ``sources[key]`` is
        ``"caller"`` (given here), ``"prior"`` (the prior's ``sampling_settings``) or ``"default"`` (λ 1.0 with
        a prior, 0 without; ρ 0.8; steps and CFG the stock pipeline's own ``__call__`` defaults).

    A prior without recorded settings whose defaults are used is reported once per prior object (a logged
    warning naming :func:`lamo.prior.write_sampling_settings`, which records them).
    """
    unknown = sorted(set(given) - set(SAMPLING_KEYS))
    if unknown:
        raise TypeError(f"resolve_sampling_settings: unknown setting(s) {unknown}; known: {list(SAMPLING_KEYS)}")
    recorded = (getattr(prior, "sampling_settings", None) or {}) if prior is not None else {}
    stock = _stock_defaults(pipe)
    defaults = dict(SAMPLING_DEFAULTS, num_inference_steps=stock.get("num_inference_steps"),
                    guidance_scale=stock.get("guidance_scale"))
    if prior is None:
        defaults["motion_guidance_scale"] = 0.0
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in SAMPLING_KEYS:
        if given.get(key) is not None:
            values[key], sources[key] = given[key], "caller"
        elif key in recorded:
            values[key], sources[key] = recorded[key], "prior"
        else:
            values[key], sources[key] = defaults[key], "default"
    if prior is not None and not recorded and "default" in sources.values() and prior not in _WARNED:
        _WARNED.add(prior)
        defaulted = {k: values[k] for k in SAMPLING_KEYS if sources[k] == "default"}
        verb = "is an untested default" if len(defaulted) == 1 else "are untested defaults"
        log.warning("this motion prior records no validated sampling settings (no sampling.json in its folder), so "
                    "%s %s for it; choose λ, ρ, steps and CFG on validation prompts and record them with "
                    "`lamo settings PRIOR_FOLDER --motion-guidance-scale … --source …` (Python: "
                    "lamo.prior.write_sampling_settings(prior_folder, {...}, source=...))",
                    describe_settings(defaulted, {}), verb)
    return values, sources


def describe_settings(values: dict[str, Any], sources: dict[str, str]) -> str:
    """One line naming each value and where it came from, e.g. ``λ=3 (prior), ρ=0.5 (prior), steps=25 (prior),
    CFG=2 (prior)``."""
    names = {"motion_guidance_scale": "λ", "motion_guidance_window": "ρ", "num_inference_steps": "steps",
             "guidance_scale": "CFG"}
    return ", ".join(f"{names[k]}={values[k]:g}" + (f" ({sources[k]})" if k in sources else "")
                     for k in SAMPLING_KEYS if k in values)


# ---------------------------------------------------------------------------------------- the model's sizes
def pipeline_family(pipe: Any) -> str:
    """``"cogvideox"``, ``"wan"``, …: the family of a LaMo pipeline (its adapter's) or of a stock one (its class)."""
    from ..adapters.registry import family_of

    return family_of(pipe)


def model_sizes(pipe: Any, family: str | None = None) -> dict[str, int]:
    """Default ``frames``, ``height``, ``width`` and ``text_len`` of a pipeline, from the model's own config.

    CogVideoX: the transformer's ``sample_frames``, ``sample_height/width`` (latent) × the VAE's spatial
    factor, and ``max_text_seq_length``. Wan records no size: the pipeline's own call defaults.
    """
    family = family or pipeline_family(pipe)
    if family == "cogvideox":
        cfg, s = pipe.transformer.config, pipe.vae_scale_factor_spatial
        return dict(frames=int(cfg.sample_frames), height=int(cfg.sample_height) * s,
                    width=int(cfg.sample_width) * s, text_len=int(cfg.max_text_seq_length))
    stock = _stock_defaults(pipe)
    return dict(frames=int(stock["num_frames"]), height=int(stock["height"]), width=int(stock["width"]),
                text_len=int(stock["max_sequence_length"]))


def check_sizes(pipe: Any, family: str | None, frames: int, height: int, width: int, text_len: int) -> None:
    """Refuse (``InputError``), with the sizes the model supports, a video size or prompt length it cannot make.

    The message names ``lamo sample``'s flags (``--frames``, ``--height``, ``--width``, ``--max-sequence-length``),
    which are the pipeline's ``num_frames``, ``height``, ``width`` and ``max_sequence_length``.
    """
    family = family or pipeline_family(pipe)
    d = model_sizes(pipe, family)
    trained = (f"it was made for {d['frames']} frames of {d['height']}×{d['width']} px and prompts of "
               f"{d['text_len']} tokens (the defaults)")
    asked = (("--frames", frames), ("--height", height), ("--width", width), ("--max-sequence-length", text_len))
    for flag, v in asked:
        if v < 1:
            raise InputError(f"{flag} must be ≥ 1, got {v}")
    cfg = pipe.transformer.config
    s = getattr(pipe, "vae_scale_factor_spatial", None) or pipe.vae_spatial_compression_ratio  # LTX names it so
    t = getattr(pipe, "vae_scale_factor_temporal", None) or pipe.vae_temporal_compression_ratio
    patch = cfg.patch_size if isinstance(cfg.patch_size, int) else tuple(cfg.patch_size)[1]
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
