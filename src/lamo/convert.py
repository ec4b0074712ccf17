"""Read the authors' released checkpoints (thebojiang/LaMo, DESIGN.md §8) into LaMo's own objects.

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

* :func:`load_release_predictor` — ``predictor.safetensors`` → :class:`~lamo.MotionPrior`;
* :func:`convert_release_predictor` — the same, saved with ``save_pretrained`` (+ the LoRA files
  copied to ``OUT/lora``); ``lamo convert release-predictor SRC OUT`` runs it;
* :func:`load_release` — a release folder into a LaMo pipeline: LoRA weights (scaled to the release's
  ``alpha / rank``) and the predictor as the pipeline's motion prior.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from .errors import InputError, MissingInputError
from .prior import PRIOR_PRESETS, MotionPrior

__all__ = [
    "RELEASE_PREFIX", "RELEASE_PREDICTOR_FILE", "RELEASE_LORA_ALPHA", "release_state_dict",
    "load_release_predictor", "save_release_predictor", "convert_release_predictor", "load_release",
]

RELEASE_PREFIX = "physical_lamo."
RELEASE_PREDICTOR_FILE = "predictor.safetensors"
RELEASE_LORA_ALPHA = 64.0  # the release trained its LoRA at rank 128, alpha 64
_SEQUENTIAL = re.compile(r"^(input_proj|prompt_proj|output_proj)\.0\.")
_BLOCK = re.compile(r"^blocks\.(\d+)\.")


def _predictor_file(src: str | os.PathLike) -> Path:
    path = Path(src)
    if path.is_dir():
        path = path / RELEASE_PREDICTOR_FILE
    if not path.is_file():
        raise MissingInputError(f"{path} not found: expected the release's {RELEASE_PREDICTOR_FILE} (or its folder)")
    return path


def release_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Release keys → ``(state dict of MotionPrior(arch="release"), its config kwargs)``.

    Raises ``InputError`` (a ``ValueError``) naming every key it cannot map.
    """
    foreign = sorted(k for k in state if not k.startswith(RELEASE_PREFIX))
    if foreign:
        raise InputError(f"not a released LaMo predictor: {len(foreign)} key(s) lack the {RELEASE_PREFIX!r} prefix, "
                         f"e.g. {foreign[:5]}")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = _SEQUENTIAL.sub(r"\1.", key[len(RELEASE_PREFIX):])
        if name in out:
            raise InputError(f"release predictor: {key!r} and another key both map to {name!r}")
        if re.search(r"\.se\.fc[12]\.weight$", name) and value.ndim == 2:
            value = value[:, :, None, None]  # Linear (out, in) -> 1×1 conv (out, in, 1, 1)
        if name == "null_prompt" and value.ndim == 2 and value.shape[0] == 1:
            value = value[0]  # (1, text_dim) -> (text_dim,)
        out[name] = value
    needed = ("input_proj.weight", "output_proj.weight", "prompt_proj.weight")
    missing = [k for k in needed if k not in out]
    if missing:
        raise InputError(f"release predictor: missing key(s) {[RELEASE_PREFIX + k for k in missing]}; "
                         "cannot read the architecture off this file")
    channels = int(out["output_proj.weight"].shape[0])
    in_channels = int(out["input_proj.weight"].shape[1])
    if in_channels not in (channels, 2 * channels):
        raise InputError(f"release predictor: input_proj takes {in_channels} channels but output_proj gives "
                         f"{channels}; expected {channels} (one frame) or {2 * channels} (frame + previous delta)")
    blocks = sorted({int(m.group(1)) for k in out if (m := _BLOCK.match(k))})
    if blocks != list(range(len(blocks))):
        raise InputError(f"release predictor: block indices {blocks} are not 0 … N−1")
    config = dict(
        PRIOR_PRESETS["release"],
        latent_channels=channels,
        text_embed_dim=int(out["prompt_proj.weight"].shape[1]),
        hidden_channels=int(out["input_proj.weight"].shape[0]),
        num_blocks=len(blocks),
        cond_dim=int(out["prompt_proj.weight"].shape[0]),
        squeeze_excite=any(".se." in k for k in out),
        second_order=in_channels == 2 * channels,
    )
    if config["num_blocks"] < 1:
        raise InputError("release predictor: no blocks.K.* keys")
    return out, config


def load_release_predictor(src: str | os.PathLike, backbone: str = "cogvideox", **overrides: Any) -> MotionPrior:
    """The release's ``predictor.safetensors`` (a file, or the folder holding it) as a ``MotionPrior``.

    The prior has ``arch="release"``, τ = 1 and the release's training choices (preset ``"release"``),
    sizes read off the file; ``overrides`` change config values that carry no weights (e.g. ``tau``).
    Unknown or missing keys and shape mismatches raise an ``InputError`` (a ``ValueError``) listing them.
    """
    from safetensors.torch import load_file

    state, config = release_state_dict(load_file(str(_predictor_file(src))))
    prior = MotionPrior(**{**config, "backbone": backbone, **overrides})
    ours = prior.state_dict()
    unknown = sorted(set(state) - set(ours))
    missing = sorted(set(ours) - set(state))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(ours[k].shape)}"
             for k in sorted(set(state) & set(ours)) if state[k].shape != ours[k].shape]
    problems = []
    if unknown:
        problems.append(f"unknown key(s) {[RELEASE_PREFIX + k for k in unknown]}")
    if missing:
        problems.append(f"missing key(s) {[RELEASE_PREFIX + k for k in missing]}")
    if wrong:
        problems.append("shape mismatch(es) " + "; ".join(wrong))
    if problems:
        raise InputError(f"cannot map {src} onto MotionPrior(arch='release', hidden_channels={config['hidden_channels']}, "
                         f"num_blocks={config['num_blocks']}, cond_dim={config['cond_dim']}): " + " | ".join(problems))
    prior.load_state_dict(state, strict=True)
    return prior.eval()


def save_release_predictor(prior: MotionPrior, path: str | os.PathLike) -> Path:
    """Write an ``arch="release"`` prior in the release's layout (``physical_lamo.*`` keys, safetensors)."""
    from safetensors.torch import save_file

    if prior.config.arch != "release":
        raise ValueError(f"only arch='release' priors have the release's layout; this one is {prior.config.arch!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({RELEASE_PREFIX + k: v.detach().contiguous().cpu() for k, v in prior.state_dict().items()}, str(path))
    return path


def _has_lora_alpha(file: Path) -> bool:
    """Whether a LoRA safetensors file records its adapter config (alpha included) as diffusers writes it."""
    from diffusers.loaders.lora_base import LORA_ADAPTER_METADATA_KEY
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as f:
        return LORA_ADAPTER_METADATA_KEY in (f.metadata() or {})


def _lora_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.safetensors") if p.name != RELEASE_PREDICTOR_FILE)


def convert_release_predictor(
    src: str | os.PathLike, out: str | os.PathLike, backbone: str = "cogvideox", lora: str | os.PathLike | None = None,
) -> Path:
    """Convert a release predictor to a LaMo prior folder ``out`` (``config.json`` + safetensors).

    LoRA weights — the other ``*.safetensors`` files in ``src`` (when it is a folder) or in ``lora`` —
    are copied unchanged to ``out/lora``. Returns ``out``.
    """
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
    return out


def load_release(pipe: Any, folder: str | os.PathLike, lora_alpha: float | None = RELEASE_LORA_ALPHA,
                 adapter_name: str = "lamo-release", **prior_kwargs: Any) -> MotionPrior:
    """Load a release folder (``predictor.safetensors`` + LoRA weights) into a LaMo pipeline.

    The LoRA goes in through diffusers' ``load_lora_weights``. A file that records its adapter config
    (``lamo train finetune`` writes one) is used as it is; for one without it diffusers takes
    ``alpha = rank``, so it is scaled to ``lora_alpha / rank`` (the release: 64 / 128; ``None`` leaves
    diffusers' choice). The predictor becomes ``pipe.motion_prior``
    (checked against the backbone; dtype as :meth:`~lamo.pipelines.MotionGuidedPipelineMixin.load_motion_prior`).
    A LaMo folder written by :func:`convert_release_predictor` (``config.json`` + ``lora/``) works too.
    """
    folder = Path(folder)
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
    return pipe.load_motion_prior(str(folder), **prior_kwargs)
