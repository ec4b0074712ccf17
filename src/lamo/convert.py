"""Read the authors' released checkpoints (thebojiang/LaMo, docs/design.md §8) into LaMo's own objects.

Their predictor is saved as ``predictor.safetensors`` beside the LoRA weights, every key prefixed
``physical_lamo.`` followed by the module's own names::

    input_proj.{weight,bias}                     Conv3×3  (C | 2C) → D
    blocks.K.conv1 / gn1 / film / conv2 / gn2 / se.fc1 / se.fc2 .{weight,bias}
    output_proj.{weight,bias}                    Conv3×3  D → C
    prompt_proj.{weight,bias}                    Linear   text_dim → cond_dim
    null_prompt                                  (text_dim,)

:class:`~lamo.MotionPrior` with ``arch="release"`` uses exactly these module names, so the mapping is
the identity after the prefix; the sizes (``C``, ``D``, blocks, condition and text widths, SE,
second-order input) are read off the tensors. Two spellings are also accepted because they hold
the same numbers: a ``.0.`` after ``input_proj`` / ``prompt_proj`` / ``output_proj`` (the layer
written inside an ``nn.Sequential``) and squeeze-excitation layers stored as ``Linear`` weights
``(out, in)`` instead of 1×1 convs ``(out, in, 1, 1)``. Anything else — a key without the prefix, an
unknown or missing key, a shape that does not fit — is refused with an ``InputError`` (a
``ValueError``) that lists it.

* :func:`load_release_predictor` — ``predictor.safetensors`` → :class:`~lamo.MotionPrior` (it lives in
  :mod:`lamo.prior`, so that ``MotionPrior.from_pretrained`` reads a release folder; re-exported here);
* :func:`convert_release_predictor` — the same, saved with ``save_pretrained`` (+ the LoRA files
  copied to ``OUT/lora``); ``lamo convert release-predictor SRC OUT`` runs it;
* :func:`load_release` — a release folder into a LaMo pipeline: LoRA weights (scaled to the release's
  ``alpha / rank``), a fully fine-tuned ``transformer/`` when the folder holds one, and the predictor as the
  pipeline's motion prior.

A full fine-tune of the release saves ``transformer/`` (diffusers ``save_pretrained``) and ``scheduler/``
beside ``predictor.safetensors``. :func:`load_release` puts that transformer into the pipeline (it must be
the pipeline's transformer class) and :func:`convert_release_predictor` copies it to ``OUT/transformer``;
``pipe.load_motion_prior`` on such a folder is refused with a message (it would load the predictor alone).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .errors import InputError, MissingInputError
from .prior import (RELEASE_PREDICTOR_FILE, RELEASE_PREFIX, MotionPrior, load_release_predictor, release_state_dict,
                    save_release_predictor)

__all__ = [
    "RELEASE_PREFIX", "RELEASE_PREDICTOR_FILE", "RELEASE_LORA_ALPHA", "release_state_dict",
    "load_release_predictor", "save_release_predictor", "convert_release_predictor", "load_release",
    "release_transformer_dir", "load_release_transformer",
]

RELEASE_LORA_ALPHA = 64.0  # the release trained its LoRA at rank 128, alpha 64


def _has_lora_alpha(file: Path) -> bool:
    """Whether a LoRA safetensors file records its adapter config (alpha included) as diffusers writes it."""
    from diffusers.loaders.lora_base import LORA_ADAPTER_METADATA_KEY
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as f:
        return LORA_ADAPTER_METADATA_KEY in (f.metadata() or {})


def _lora_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.safetensors") if p.name != RELEASE_PREDICTOR_FILE)


def release_transformer_dir(folder: str | os.PathLike) -> Path | None:
    """``folder/transformer`` when a release folder holds a fully fine-tuned transformer, else ``None``; a
    ``transformer/`` without a ``config.json`` is refused (it cannot be the release's ``save_pretrained``)."""
    folder = Path(folder)
    sub = folder / "transformer"
    if not sub.is_dir():
        return None
    if not (sub / "config.json").is_file():
        raise InputError(f"{sub} has no config.json: a release's fine-tuned transformer is saved with "
                         "save_pretrained (config.json + weights); restore it or remove the folder")
    return sub


def load_release_transformer(pipe: Any, folder: str | os.PathLike) -> bool:
    """Replace ``pipe.transformer`` by the release's fine-tuned ``folder/transformer`` (same class, dtype and device
    as the pipeline's); returns whether there was one. A transformer of another class is refused with a message."""
    import json

    sub = release_transformer_dir(folder)
    if sub is None:
        return False
    current = pipe.transformer
    name = json.loads((sub / "config.json").read_text()).get("_class_name")
    if name != type(current).__name__:
        raise InputError(f"{sub} holds a {name} but this pipeline's transformer is a {type(current).__name__}: load "
                         "the release folder into a pipeline of the backbone it was fine-tuned from")
    transformer = type(current).from_pretrained(str(sub), torch_dtype=current.dtype)
    pipe.register_modules(transformer=transformer.to(current.device))
    return True


def check_release_files(src: str | os.PathLike, out: str | os.PathLike, lora: str | os.PathLike | None = None) -> None:
    """Refuse, in one line naming the file, release files that are not whole safetensors files (garbled, truncated,
    empty) — the predictor and the LoRA weights beside it or in ``lora`` — and an ``out`` that is a file."""
    from .errors import check_safetensors
    from .prior import _predictor_file

    if Path(out).exists() and not Path(out).is_dir():
        raise InputError(f"OUT {out} is a file; the converted prior is a folder: pass a new folder")
    check_safetensors(_predictor_file(src), "the release predictor")
    folder = Path(lora) if lora is not None else (Path(src) if Path(src).is_dir() else None)
    for f in _lora_files(folder) if folder is not None and folder.is_dir() else []:
        check_safetensors(f, "the release's LoRA weights")


def convert_release_predictor(
    src: str | os.PathLike, out: str | os.PathLike, backbone: str = "cogvideox", lora: str | os.PathLike | None = None,
) -> Path:
    """Convert a release predictor to a LaMo prior folder ``out`` (``config.json`` + safetensors).

    LoRA weights — the other ``*.safetensors`` files in ``src`` (when it is a folder) or in ``lora`` —
    are copied unchanged to ``out/lora``. Returns ``out``.
    """
    check_release_files(src, out, lora)
    prior = load_release_predictor(src, backbone=backbone)
    out = Path(out)
    prior.save_pretrained(out)
    lora_dir = Path(lora) if lora is not None else (Path(src) if Path(src).is_dir() else None)
    if lora is not None and not lora_dir.is_dir():
        raise MissingInputError(f"LoRA folder {lora_dir} not found")
    files = _lora_files(lora_dir) if lora_dir is not None else []
    if lora is not None and not files:
        raise MissingInputError(f"no LoRA *.safetensors in {lora_dir}")
    if files:
        (out / "lora").mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(f, out / "lora" / f.name)
    transformer = release_transformer_dir(src) if Path(src).is_dir() else None
    if transformer is not None:  # a full fine-tune: its transformer travels with the predictor
        shutil.copytree(transformer, out / "transformer", dirs_exist_ok=True)
    return out


def load_release(pipe: Any, folder: str | os.PathLike, lora_alpha: float | None = RELEASE_LORA_ALPHA,
                 adapter_name: str = "lamo-release", **prior_kwargs: Any) -> MotionPrior:
    """Load a release folder (``predictor.safetensors`` + LoRA weights) into a LaMo pipeline.

    The LoRA goes in through diffusers' ``load_lora_weights``. A file that records its adapter config
    (``lamo train finetune`` writes one) is used as it is; for one without it diffusers takes
    ``alpha = rank``, so it is scaled to ``lora_alpha / rank`` (the release: 64 / 128; ``None`` leaves
    diffusers' choice). The predictor becomes ``pipe.motion_prior``
    (checked against the backbone; dtype as :meth:`~lamo.pipelines.MotionGuidedPipelineMixin.load_motion_prior`).
    A LaMo folder written by :func:`convert_release_predictor` (``config.json`` + ``lora/``) works too. A folder
    holding ``transformer/`` (the release's full fine-tune) has that transformer loaded first
    (:func:`load_release_transformer`).
    """
    folder = Path(folder)
    has_transformer = load_release_transformer(pipe, folder)
    lora_dir = folder / "lora" if (folder / "lora").is_dir() else folder
    files = _lora_files(lora_dir)
    files = [f for f in files if f.name != "diffusion_pytorch_model.safetensors"]
    if len(files) > 1:
        raise InputError(f"{lora_dir} holds several LoRA files {[f.name for f in files]}; load the one you want "
                         "with pipe.load_lora_weights(folder, weight_name=…) and the prior with load_motion_prior")
    if files:
        pipe.load_lora_weights(str(lora_dir), weight_name=files[0].name, adapter_name=adapter_name)
        if lora_alpha is not None and not _has_lora_alpha(files[0]):
            peft_cfg = pipe.transformer.peft_config[adapter_name]
            pipe.set_adapters([adapter_name], [float(lora_alpha) / float(peft_cfg.lora_alpha)])
    return pipe.load_motion_prior(str(folder), transformer_loaded=has_transformer, **prior_kwargs)
