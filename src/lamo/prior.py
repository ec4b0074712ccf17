"""The micro motion field ``f_φ(z_i, c) ≈ Δ_τ z_i`` (docs/design.md §1.4).

A prompt-conditioned CNN on one latent frame: FiLM residual blocks, a zero-initialised output
layer (so an untrained prior predicts no motion), a learned null condition used with prompt dropout,
and input noise augmentation while training. Its condition ``c`` is the backbone's own prompt
embedding, pooled over tokens (:func:`pool_prompt_embeds`) and projected here, so prior and backbone
share one text space.

Training loss per sample: ``MSE(f, Δ) + w_cos · (1 − cos(f, Δ))`` averaged over the clip's τ-pairs
(``w_cos = 0.5``).

Two architectures, one config field (``arch``):

* ``"lamo"`` (default) — pre-norm FiLM residual blocks (SiLU), condition projected by a 2-layer MLP,
  a learned null condition in condition space.
* ``"release"`` — the authors' released "temporal consistency predictor" (docs/design.md §8), layer for
  layer: Conv3×3 + GELU in; blocks of Conv3×3 → GroupNorm(8) → FiLM ``(1 + γ)·x + β`` → GELU →
  Conv3×3 → GroupNorm(8) → squeeze-and-excitation → + input → GELU; Conv3×3 out (zero-initialised);
  prompt ``Linear(text_dim → cond_dim)`` + GELU; a learned null prompt in text space; optionally the
  previous delta ``Δ_τ z_{i−τ}`` as ``C`` extra input channels (``second_order``). Preset
  ``"release"`` is their setting (width 256, 8 blocks, condition 128, SE on, τ = 1, with their training
  choices); :func:`load_release_predictor` (end of this module) reads their ``predictor.safetensors``
  into it.

The class is a diffusers ``ModelMixin``/``ConfigMixin``: ``save_pretrained`` writes
``diffusion_pytorch_model.safetensors`` + ``config.json`` and ``from_pretrained`` reads them back
(safetensors only — nothing is unpickled).

A prior folder may also hold ``sampling.json`` (:data:`SAMPLING_SETTINGS_FILE`): the λ, window ρ, denoising
steps and CFG scale the prior was validated at, and what chose them. :func:`write_sampling_settings`
records them; :meth:`MotionPrior.from_pretrained` reads them into ``prior.sampling_settings``, which the
LaMo pipelines and ``lamo sample`` use unless the caller passes its own values.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as Fn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ._io import write_text_atomic
from .errors import HUB_ID, InputError, MissingInputError
from .motion import check_latents, lag_delta


__all__ = ["MotionPrior", "PRIOR_ARCHS", "PRIOR_PRESETS", "NOISE_AUGS", "PriorLossOutput", "pool_prompt_embeds",
           "SAMPLING_SETTINGS_FILE", "SAMPLING_KEYS", "write_sampling_settings", "read_sampling_settings",
           "parse_prior_options"]

PRIOR_ARCHS = ("lamo", "release")
NOISE_AUGS = ("fixed", "diffusion")

# Size presets: hidden width, residual blocks, condition width. "base" is ≈10M parameters for
# 16-channel latents and 4096-d (T5-XXL) prompt embeddings. "release" is the authors' predictor and
# its training choices (≈10M parameters at 16 channels / 4096-d prompts).
PRIOR_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(hidden_channels=32, num_blocks=2, cond_dim=32),
    "small": dict(hidden_channels=64, num_blocks=4, cond_dim=128),
    "medium": dict(hidden_channels=128, num_blocks=6, cond_dim=256),
    "base": dict(hidden_channels=192, num_blocks=12, cond_dim=256),
    "release": dict(arch="release", hidden_channels=256, num_blocks=8, cond_dim=128, squeeze_excite=True,
                    second_order=False, tau=1, prompt_dropout=0.1, noise_aug_prob=0.5, noise_aug_std=0.3,
                    noise_aug="diffusion", cosine_weight=0.3),
}


# ------------------------------------------------------------------------------ validated sampling settings
#: the file in a prior's folder that records the settings the prior was validated at
SAMPLING_SETTINGS_FILE = "sampling.json"
#: the settings it may record: λ, window ρ, denoising steps, classifier-free guidance scale
SAMPLING_KEYS = ("motion_guidance_scale", "motion_guidance_window", "num_inference_steps", "guidance_scale")


def _check_sampling_settings(settings: Any, where: str) -> dict[str, Any]:
    """The settings as plain numbers, or ``InputError`` naming ``where`` and what is wrong."""
    if not isinstance(settings, dict) or not settings:
        raise InputError(f"{where}: the settings must be a non-empty mapping of {SAMPLING_KEYS}, got {settings!r}")
    unknown = sorted(set(settings) - set(SAMPLING_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown sampling setting(s) {unknown}; the known ones are {list(SAMPLING_KEYS)}")
    out: dict[str, Any] = {}
    for key in SAMPLING_KEYS:
        if key not in settings:
            continue
        v = settings[key]
        number = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if key == "num_inference_steps":
            ok = number and float(v).is_integer() and v >= 1
            v = int(v) if ok else v
            rule = "a whole number ≥ 1"
        elif key == "motion_guidance_window":
            ok, rule = number and 0.0 <= v <= 1.0, "a number in [0, 1]"
        else:  # λ and the CFG scale
            ok, rule = number and v >= 0, "a finite number ≥ 0"
        if not ok:
            raise InputError(f"{where}: {key} must be {rule}, got {settings[key]!r}")
        out[key] = v if key == "num_inference_steps" else float(v)
    return out


def write_sampling_settings(folder: str | os.PathLike, settings: dict[str, Any], source: str) -> Path:
    """Record in a prior's folder the settings it was validated at (``sampling.json``); returns the file.

    Args:
        folder: the prior's folder (``MotionPrior.save_pretrained``'s).
        settings: some or all of :data:`SAMPLING_KEYS` — ``motion_guidance_scale`` (λ ≥ 0),
            ``motion_guidance_window`` (ρ ∈ [0, 1]), ``num_inference_steps`` (≥ 1), ``guidance_scale`` (CFG ≥ 0).
        source: one sentence saying what chose them (a benchmark run and its command, a sweep on validation
            prompts, …); it travels with the prior so its user can judge them.

    The file is written atomically (a reader sees the old record or the new one). Raises ``InputError``
    for an unknown key, a value out of range or an empty ``source``.
    """
    folder = Path(folder)
    path = folder / SAMPLING_SETTINGS_FILE
    checked = _check_sampling_settings(settings, str(path))
    if not isinstance(source, str) or not source.strip():
        raise InputError(f"{path}: say what chose these settings (source=, e.g. the benchmark run and its command)")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder: write the prior first (MotionPrior.save_pretrained)")
    record = dict(settings=checked, source=source.strip(),
                  written=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    return write_text_atomic(path, json.dumps(record, indent=2, ensure_ascii=False) + "\n")


def read_sampling_settings(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The whole ``sampling.json`` record of a prior's folder (``settings``, ``source``, ``written``), or ``None``
    when the folder has none. A garbled file raises ``InputError`` naming it."""
    path = Path(folder) / SAMPLING_SETTINGS_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not valid JSON ({e}); fix it or rewrite it with "
                         "lamo.prior.write_sampling_settings") from e
    if not isinstance(record, dict) or "settings" not in record:
        raise InputError(f"{path} holds no 'settings' record; rewrite it with lamo.prior.write_sampling_settings")
    record = dict(record, settings=_check_sampling_settings(record["settings"], str(path)))
    return record


def _hub_sampling_settings(repo_id: str, **kwargs: Any) -> dict[str, Any] | None:
    """``sampling.json`` of a prior on the Hub (``None`` when it has none or the Hub cannot be reached)."""
    import tempfile

    try:
        from huggingface_hub import hf_hub_download

        names = ("subfolder", "revision", "token", "cache_dir", "local_files_only")
        file = hf_hub_download(repo_id, SAMPLING_SETTINGS_FILE, **{k: kwargs[k] for k in names if kwargs.get(k)})
    except Exception:  # noqa: BLE001 — no file, no network: the prior simply carries no settings
        return None
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, SAMPLING_SETTINGS_FILE).write_bytes(Path(file).read_bytes())
        return read_sampling_settings(tmp)


def _finite(prior: Any, weights: str) -> Any:
    """``prior``, or an ``InputError`` naming ``weights`` when a tensor holds NaN or inf (a diverged training)."""
    bad = [n for n, t in [*prior.named_parameters(), *prior.named_buffers()]
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        if not os.path.exists(weights):  # saved under another name (sharded, variant): name the folder
            weights = os.path.dirname(weights) or weights
        raise InputError(f"{weights}: the prior's weights hold NaN or inf values ({len(bad)} tensor(s), e.g. "
                         f"{bad[0]}), as a diverged training leaves them; retrain it (e.g. with a lower --lr)")
    return prior


def pool_prompt_embeds(prompt_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Masked mean of token embeddings: ``(B, L, D)`` (+ mask ``(B, L)``) → ``(B, D)``.

    Without a mask every token counts (CogVideoX pads T5 to 226 tokens and passes no mask; the
    padding embeddings are part of what the backbone sees, so they are part of the condition).
    """
    if prompt_embeds.ndim != 3:
        raise ValueError(f"prompt_embeds must be (B, L, D), got shape {tuple(prompt_embeds.shape)}")
    if attention_mask is None:
        return prompt_embeds.mean(1)
    if attention_mask.shape != prompt_embeds.shape[:2]:
        raise ValueError(
            f"attention_mask shape {tuple(attention_mask.shape)} does not match prompt_embeds {tuple(prompt_embeds.shape[:2])}"
        )
    m = attention_mask.to(prompt_embeds.dtype).unsqueeze(-1)  # (B, L, 1)
    return (prompt_embeds * m).sum(1) / m.sum(1).clamp_min(1.0)


def _check_noise_levels(levels: torch.Tensor | None) -> torch.Tensor:
    """A 1-D table of noise stds ``√(1 − ᾱ_t)``, finite and in ``[0, 1]``, or a clear error."""
    if levels is None:
        raise ValueError(
            "noise_aug='diffusion' needs the backbone's noise levels: pass aug_noise_levels= (√(1 − ᾱ_t) per "
            "training timestep: adapter.training_noise_stds(scheduler), or lamo.training.prior.scheduler_noise_stds("
            "model)), or set noise_aug='fixed'"
        )
    levels = torch.as_tensor(levels)
    if levels.ndim != 1 or levels.numel() == 0 or not bool(torch.isfinite(levels).all()) \
            or bool((levels < 0).any()) or bool((levels > 1).any()):
        raise ValueError("aug_noise_levels must be a non-empty 1-D tensor of noise stds √(1 − ᾱ_t) in [0, 1]")
    return levels.float()


def _groups(channels: int) -> int:
    for g in (32, 16, 8, 4, 2, 1):
        if channels % g == 0 and channels // g >= 2:
            return g
    return 1


class FiLMResBlock(nn.Module):
    """``x + conv(SiLU(FiLM(norm(conv(SiLU(norm(x)))), c)))`` — FiLM starts as the identity."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(channels), channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(channels), channels, affine=False)
        self.film = nn.Linear(cond_dim, 2 * channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.conv1(Fn.silu(self.norm1(x)))  # (N, D, H, W)
        scale, shift = self.film(c)[:, :, None, None].chunk(2, dim=1)  # (N, D, 1, 1) each
        h = self.norm2(h) * (1 + scale) + shift
        return x + self.conv2(Fn.silu(h))


class SqueezeExcite(nn.Module):
    """``x · sigmoid(fc2(GELU(fc1(mean_{h,w} x))))`` with 1×1 convs, bottleneck ``max(D/4, 4)``."""

    def __init__(self, channels: int):
        super().__init__()
        squeezed = max(channels // 4, 4)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)  # (N, D, 1, 1)
        return x * torch.sigmoid(self.fc2(Fn.gelu(self.fc1(s))))


class ReleaseFiLMBlock(nn.Module):
    """The release's block: ``GELU(x + SE(GN(conv(GELU(FiLM(GN(conv(x)), c))))))``, FiLM ``(1 + γ)·h + β``."""

    def __init__(self, channels: int, cond_dim: int, squeeze_excite: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.gn1 = nn.GroupNorm(8, channels)
        self.film = nn.Linear(cond_dim, 2 * channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.gn2 = nn.GroupNorm(8, channels)
        self.se = SqueezeExcite(channels) if squeeze_excite else nn.Identity()

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.gn1(self.conv1(x))  # (N, D, H, W)
        gamma, beta = self.film(c)[:, :, None, None].chunk(2, dim=1)  # (N, D, 1, 1) each
        h = Fn.gelu(h * (1 + gamma) + beta)
        h = self.se(self.gn2(self.conv2(h)))
        return Fn.gelu(x + h)


@dataclass
class PriorLossOutput:
    """Prior training loss with named terms, all ``(B,)`` (mean over the clip's τ-pairs)."""

    per_sample: torch.Tensor
    mse: torch.Tensor
    cosine: torch.Tensor  # cosine similarity between predicted and true Δ_τ z (higher is better)


def check_prior_folder(folder: str | os.PathLike, what: str = "motion prior") -> None:
    """Refuse, naming ``what`` and the file, a local prior folder whose ``config.json`` is not a JSON object or whose
    weights are missing or truncated (:func:`lamo.errors.check_safetensors`) — before anything is loaded. A folder of
    the authors' release (``predictor.safetensors``, no ``config.json``) is checked for that file."""
    from .errors import check_safetensors

    folder = Path(folder)
    config = folder / "config.json"
    if not config.is_file():
        if (folder / "predictor.safetensors").is_file():
            check_safetensors(folder / "predictor.safetensors", f"{what} {folder}: the release predictor")
            return
        raise MissingInputError(f"{what} {folder}: no config.json — not a motion prior folder (MotionPrior."
                                "save_pretrained or `lamo train prior` writes config.json and the weights)")
    try:
        data = json.loads(config.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{what} {folder}: config.json is not valid JSON ({e}); save the prior again "
                         "(MotionPrior.save_pretrained) or copy its folder again") from None
    if not isinstance(data, dict):
        raise InputError(f"{what} {folder}: config.json must hold a JSON object, got {type(data).__name__}")
    weights = folder / "diffusion_pytorch_model.safetensors"
    if not weights.is_file() and (folder / "diffusion_pytorch_model.safetensors.index.json").is_file():
        return  # sharded weights: diffusers checks them
    check_safetensors(weights, f"{what} {folder}: its weights")


class MotionPrior(ModelMixin, ConfigMixin):
    """Micro motion field ``f_φ(z_i, c) ≈ Δ_τ z_i`` (docs/design.md §1.4).

    Args:
        latent_channels: ``C`` of the backbone's latents (16 for CogVideoX and Wan 2.1).
        text_embed_dim: width of the backbone's prompt embeddings (4096 for T5-XXL).
        hidden_channels: CNN width.
        num_blocks: FiLM residual blocks.
        cond_dim: width of the projected condition.
        tau: lag in latent frames the prior predicts (1: adjacent latent frames — on the physics world a τ = 1
            prior guides to −40 % physics error where τ = 2 gives −17 %; benchmarks/README.md).
        prompt_dropout: probability a training clip uses the learned null condition (0.2).
        noise_aug_prob: probability a training input frame gets Gaussian noise (0.5).
        noise_aug_std: that noise's standard deviation, in latent units (0.1).
        backbone: free-text name of the backbone family whose latents it was trained on
            (e.g. ``"cogvideox"``); pipelines refuse a prior trained for another family.
        arch: ``"lamo"`` (default) or ``"release"`` (the authors' predictor; see the module docstring).
        squeeze_excite: squeeze-and-excitation at the end of each block (``"release"`` only;
            ``None``: on for ``"release"``).
        second_order: also feed the previous delta ``Δ_τ z_{i−τ}`` (zero for the first τ pairs) as
            ``C`` extra input channels (``"release"`` only; off in the release).
        cosine_weight: weight of ``(1 − cos)`` in the training loss (0.5; the release: 0.3).
        noise_aug: ``"fixed"`` — augmentation noise of std ``noise_aug_std``; ``"diffusion"`` — std
            ``noise_aug_std · √(1 − ᾱ_t)`` for a training timestep ``t`` drawn uniformly per pair (the
            release, ``noise_aug_std = 0.3``; :meth:`training_loss` then needs the backbone's table).

    With ``arch="release"`` a prompt dropped in training is the zero vector, drawn per pair (as the
    release does), and an absent prompt (``cond=None``) is the learned ``null_prompt``.

    ``prior.sampling_settings``: the λ / ρ / steps / CFG scale the prior was validated at (the ``settings``
    of its folder's ``sampling.json``, set by :meth:`from_pretrained`; ``None`` when none were recorded).
    """

    _supports_gradient_checkpointing = True
    #: the settings the prior was validated at (:data:`SAMPLING_KEYS`), or ``None``; see :func:`write_sampling_settings`
    sampling_settings: dict[str, Any] | None = None

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 16,
        text_embed_dim: int = 4096,
        hidden_channels: int = 192,
        num_blocks: int = 12,
        cond_dim: int = 256,
        tau: int = 1,
        prompt_dropout: float = 0.2,
        noise_aug_prob: float = 0.5,
        noise_aug_std: float = 0.1,
        backbone: str = "",
        arch: str = "lamo",
        squeeze_excite: bool | None = None,
        second_order: bool = False,
        cosine_weight: float = 0.5,
        noise_aug: str = "fixed",
    ):
        super().__init__()
        if arch not in PRIOR_ARCHS:
            raise ValueError(f"MotionPrior: unknown arch {arch!r}; choose from {PRIOR_ARCHS}")
        if noise_aug not in NOISE_AUGS:
            raise ValueError(f"MotionPrior: unknown noise_aug {noise_aug!r}; choose from {NOISE_AUGS}")
        if arch == "lamo" and (squeeze_excite or second_order):
            raise ValueError("MotionPrior: squeeze_excite and second_order belong to arch='release'")
        if arch == "release" and int(hidden_channels) % 8:
            raise ValueError(f"MotionPrior: arch='release' uses GroupNorm(8): hidden_channels must be a multiple "
                             f"of 8, got {hidden_channels}")
        if not (math.isfinite(cosine_weight) and cosine_weight >= 0):
            raise ValueError(f"MotionPrior: cosine_weight must be a finite number ≥ 0, got {cosine_weight!r}")
        if not (math.isfinite(noise_aug_std) and noise_aug_std >= 0):
            raise ValueError(f"MotionPrior: noise_aug_std must be a finite number ≥ 0, got {noise_aug_std!r}")
        if squeeze_excite is None:
            squeeze_excite = arch == "release"
            self.register_to_config(squeeze_excite=squeeze_excite)
        for name, v in dict(latent_channels=latent_channels, text_embed_dim=text_embed_dim,
                            hidden_channels=hidden_channels, num_blocks=num_blocks, cond_dim=cond_dim,
                            tau=tau).items():
            if int(v) < 1:
                raise ValueError(f"MotionPrior: {name} must be ≥ 1, got {v}")
        for name, p in dict(prompt_dropout=prompt_dropout, noise_aug_prob=noise_aug_prob).items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"MotionPrior: {name} is a probability in [0, 1], got {p}")
        self.gradient_checkpointing = False
        if arch == "release":
            self._build_release(latent_channels, text_embed_dim, hidden_channels, num_blocks, cond_dim,
                                bool(squeeze_excite), bool(second_order))
            return
        self.cond_proj = nn.Sequential(
            nn.Linear(text_embed_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim)
        )
        self.null_cond = nn.Parameter(torch.zeros(cond_dim))  # learned "no prompt" condition
        self.cond_act = nn.SiLU()
        self.conv_in = nn.Conv2d(latent_channels, hidden_channels, 3, padding=1)
        self.blocks = nn.ModuleList(FiLMResBlock(hidden_channels, cond_dim) for _ in range(num_blocks))
        self.norm_out = nn.GroupNorm(_groups(hidden_channels), hidden_channels)
        self.conv_out = nn.Conv2d(hidden_channels, latent_channels, 3, padding=1)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Zero-init choices: the output conv (no motion before training) and every FiLM layer
        (modulation starts as the identity); the null condition starts at zero."""
        for block in self.blocks:
            nn.init.zeros_(block.film.weight)
            nn.init.zeros_(block.film.bias)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        nn.init.normal_(self.null_cond, std=0.02)

    def _build_release(self, channels: int, text_dim: int, hidden: int, num_blocks: int, cond_dim: int,
                       squeeze_excite: bool, second_order: bool) -> None:
        """The release's layers, under the release's module names (what :mod:`lamo.convert` maps).

        Zero-init choices: the output conv (no motion before training), every FiLM head (identity
        modulation) and the null prompt."""
        self.input_proj = nn.Conv2d(channels * (2 if second_order else 1), hidden, 3, padding=1)
        self.blocks = nn.ModuleList(ReleaseFiLMBlock(hidden, cond_dim, squeeze_excite) for _ in range(num_blocks))
        self.output_proj = nn.Conv2d(hidden, channels, 3, padding=1)
        self.prompt_proj = nn.Linear(text_dim, cond_dim)
        self.null_prompt = nn.Parameter(torch.zeros(text_dim))  # learned "no prompt", in text space
        for block in self.blocks:
            nn.init.zeros_(block.film.weight)
            nn.init.zeros_(block.film.bias)
        nn.init.zeros_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    @property
    def _weight_dtype(self) -> torch.dtype:
        """The dtype the prior computes in (that of its first conv)."""
        return (self.input_proj if self.config.arch == "release" else self.conv_in).weight.dtype

    @classmethod
    def from_preset(cls, preset: str, **kwargs: Any) -> "MotionPrior":
        """Build a prior from a named preset (sizes ``tiny``, ``small``, ``medium``, ``base``; the
        authors' predictor and its training choices ``release``); ``kwargs`` override it."""
        if preset not in PRIOR_PRESETS:
            raise ValueError(f"unknown prior preset {preset!r}; choose from {sorted(PRIOR_PRESETS)}")
        return cls(**{**PRIOR_PRESETS[preset], **kwargs})

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> "MotionPrior":
        """Load a prior saved with ``save_pretrained`` (safetensors + config.json only).

        A folder of the authors' release (``predictor.safetensors`` and no ``config.json``) is read
        with :func:`lamo.convert.load_release_predictor` (``torch_dtype=`` is honoured). A local path
        that does not exist, or a folder without ``config.json``, raises ``FileNotFoundError`` naming
        what is missing. A Hub id (``"user/repo"``, shared with :meth:`push_to_hub` or ``lamo share push``)
        is downloaded by diffusers (``revision=``, ``token=``, ``cache_dir=`` as there).

        Sets ``prior.sampling_settings`` from the folder's ``sampling.json`` (:func:`read_sampling_settings`;
        ``None`` without one; a garbled one raises ``InputError`` naming the file).
        """
        path = os.fspath(pretrained_model_name_or_path)
        folder = os.path.join(path, kwargs.get("subfolder") or "")
        if os.path.isdir(path):
            if (not os.path.isfile(os.path.join(folder, "config.json"))
                    and os.path.isfile(os.path.join(folder, "predictor.safetensors"))):
                prior = load_release_predictor(os.path.join(folder, "predictor.safetensors"))
                dtype = kwargs.get("torch_dtype", kwargs.get("dtype"))
                prior = prior.to(dtype) if dtype is not None else prior
                record = read_sampling_settings(folder)
                prior.sampling_settings = None if record is None else record["settings"]
                return _finite(prior, os.path.join(folder, "predictor.safetensors"))
            if not os.path.isfile(os.path.join(folder, "config.json")):
                raise FileNotFoundError(
                    f"{folder} is not a LaMo motion prior checkpoint: config.json is missing. A prior folder "
                    "holds config.json and diffusion_pytorch_model.safetensors (written by "
                    "MotionPrior.save_pretrained or `lamo train prior`)."
                )
        elif os.path.exists(path) or not HUB_ID.fullmatch(path):
            raise FileNotFoundError(
                f"motion prior checkpoint {path!r} not found (expected a folder with config.json and "
                "diffusion_pytorch_model.safetensors). Train one with `lamo train prior`, or pass its folder."
            )
        kwargs.setdefault("use_safetensors", True)
        if os.path.isdir(path):
            if not kwargs.get("variant"):
                check_prior_folder(folder)  # garbled config.json, truncated or missing weights: one line, no traceback
            record = read_sampling_settings(folder)  # a garbled file is refused before the weights are read
            prior = super().from_pretrained(path, **kwargs)
            prior.sampling_settings = None if record is None else record["settings"]
            return _finite(prior, os.path.join(folder, "diffusion_pytorch_model.safetensors"))
        try:
            prior = super().from_pretrained(path, **kwargs)
        except (OSError, EnvironmentError) as e:
            if os.path.isdir(path):
                raise
            raise FileNotFoundError(
                f"motion prior {path!r} is not a local folder and could not be loaded from the Hugging Face "
                f"Hub ({type(e).__name__}: {e}). Check the path, or download the prior first."
            ) from e
        record = _hub_sampling_settings(path, **kwargs)
        prior.sampling_settings = None if record is None else record["settings"]
        return _finite(prior, f"{path} (Hub)")

    # ------------------------------------------------------------------ conditioning
    def condition(self, cond: torch.Tensor | None, n: int, drop: torch.Tensor | None = None) -> torch.Tensor:
        """Project a pooled prompt embedding ``(N, text_embed_dim)`` (or ``None``) to ``(N, cond_dim)``.

        ``drop`` (``(N,)`` bool) replaces the chosen rows by the learned null condition
        (``arch="release"``: by the zero prompt, as the release's prompt dropout does).
        """
        dtype = self._weight_dtype
        if cond is not None:
            if cond.ndim != 2 or cond.shape[-1] != self.config.text_embed_dim:
                raise ValueError(
                    f"prompt condition must be pooled to (N, {self.config.text_embed_dim}), got shape "
                    f"{tuple(cond.shape)}; this prior was trained for {self.config.text_embed_dim}-d prompt "
                    "embeddings — use a prior trained on this backbone's text encoder"
                )
            if cond.shape[0] == 1 and n > 1:
                cond = cond.expand(n, -1)
            if cond.shape[0] != n:
                raise ValueError(f"got {cond.shape[0]} prompt conditions for {n} latent frames")
        if self.config.arch == "release":
            if cond is None:
                pooled = self.null_prompt.to(dtype).expand(n, -1)  # (N, text_dim)
            else:
                pooled = cond.to(dtype)
                if drop is not None:
                    pooled = torch.where(drop[:, None], torch.zeros_like(pooled), pooled)
            return Fn.gelu(self.prompt_proj(pooled))  # (N, cond_dim)
        null = self.null_cond.to(dtype).expand(n, -1)  # (N, cond_dim)
        if cond is None:
            c = null
        else:
            c = self.cond_proj(cond.to(dtype))
            if drop is not None:
                c = torch.where(drop[:, None], null, c)
        return self.cond_act(c)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        z: torch.Tensor,
        cond: torch.Tensor | None = None,
        drop: torch.Tensor | None = None,
        prev_delta: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict ``Δ_τ z`` for single latent frames.

        Args:
            z: ``(N, C, H, W)`` latent frames.
            cond: ``(N, text_embed_dim)`` pooled prompt embeddings (or ``(1, ·)`` shared), or ``None``
                for the learned null condition.
            drop: optional ``(N,)`` bool — use the null condition for these rows.
            prev_delta: ``(N, C, H, W)`` previous delta ``Δ_τ z_{i−τ}`` for a ``second_order`` prior
                (``None``: zeros, as for the first pairs of a clip); refused otherwise.

        Returns:
            ``(N, C, H, W)`` predicted lag delta, in the prior's dtype. Finite inputs give a finite
            field; NaN/inf in a row of ``z`` or ``cond`` makes that row's output non-finite and leaves
            the other rows as they would be without it (no check here — that would cost a host sync
            per call; guidance checks its loss and gradient, ``training_loss`` its data).
        """
        if z.ndim != 4:
            raise ValueError(f"MotionPrior takes single latent frames (N, C, H, W), got shape {tuple(z.shape)}")
        if z.shape[1] != self.config.latent_channels:
            raise ValueError(
                f"latents have {z.shape[1]} channels but this motion prior was trained for "
                f"{self.config.latent_channels}-channel latents (backbone {self.config.backbone or 'unknown'!r}); "
                "use a prior trained on this backbone's latent space"
            )
        if prev_delta is not None and not self.config.second_order:
            raise ValueError("prev_delta is an input of second_order priors only; this prior takes one frame")
        if prev_delta is not None and prev_delta.shape != z.shape:
            raise ValueError(f"prev_delta shape {tuple(prev_delta.shape)} does not match z {tuple(z.shape)}")
        if not torch.is_floating_point(z):
            raise TypeError(f"latent frames must be a floating-point tensor, got {z.dtype}")
        dtype = self._weight_dtype
        c = self.condition(cond, z.shape[0], drop)  # (N, cond_dim)
        x = z.to(dtype)
        if self.config.arch == "release":
            if self.config.second_order:
                prev = torch.zeros_like(x) if prev_delta is None else prev_delta.to(dtype)
                x = torch.cat([x, prev], dim=1)  # (N, 2C, H, W)
            h = Fn.gelu(self.input_proj(x))  # (N, D, H, W)
        else:
            h = self.conv_in(x)  # (N, D, H, W)
        for block in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                h = torch.utils.checkpoint.checkpoint(block, h, c, use_reentrant=False)
            else:
                h = block(h, c)
        if self.config.arch == "release":
            return self.output_proj(h)  # (N, C, H, W)
        return self.conv_out(Fn.silu(self.norm_out(h)))  # (N, C, H, W)

    @staticmethod
    def _prev_deltas(z: torch.Tensor, tau: int, P: int) -> torch.Tensor:
        """``Δ_τ z_{i−τ} = z_i − z_{i−τ}`` for pairs ``i = 0 … P−1``, zero for ``i < τ``: ``(B, P, C, H, W)``."""
        head = torch.zeros_like(z[:, : min(tau, P)])  # (B, min(τ, P), C, H, W)
        if P <= tau:
            return head
        return torch.cat([head, z[:, tau:P] - z[:, : P - tau]], dim=1)  # (B, P, C, H, W)

    def predict_motion(self, z: torch.Tensor, cond: torch.Tensor | None = None, tau: int | None = None) -> torch.Tensor:
        """All τ-pairs of a clip in one call: ``(B, F, C, H, W)`` → ``(B, F−τ, C, H, W)`` ≈ ``Δ_τ z``."""
        tau = self.config.tau if tau is None else tau
        check_latents(z, tau, "latents", channels=self.config.latent_channels)
        B, F, C, H, W = z.shape
        P = F - tau
        frames = z[:, :P].reshape(B * P, C, H, W)  # (B·P, C, H, W)
        c = None if cond is None else cond.repeat_interleave(P, dim=0)  # (B, D) -> (B·P, D)
        prev = None
        if self.config.second_order:
            prev = self._prev_deltas(z, tau, P).reshape(B * P, C, H, W)  # (B·P, C, H, W)
        return self(frames, c, prev_delta=prev).reshape(B, P, C, H, W)

    # ------------------------------------------------------------------ training
    def training_loss(
        self,
        latents: torch.Tensor,
        cond: torch.Tensor | None,
        generator: torch.Generator | None = None,
        aug_noise_levels: torch.Tensor | None = None,
    ) -> PriorLossOutput:
        """Loss on clean latent clips with prompt dropout and input noise augmentation (config values).

        Args:
            latents: ``(B, F, C, H, W)`` clean latent clips.
            cond: ``(B, text_embed_dim)`` pooled prompt embeddings, or ``None``.
            generator: optional RNG for the dropout / augmentation draws (reproducible runs).
            aug_noise_levels: ``(T,)`` the backbone's noise std ``√(1 − ᾱ_t)`` at each of its training
                timesteps (``adapter.training_noise_stds(scheduler)``); needed in training
                mode when ``noise_aug="diffusion"``: an augmented pair gets noise of std
                ``noise_aug_std · √(1 − ᾱ_t)``, ``t`` drawn uniformly per pair.

        Returns:
            :class:`PriorLossOutput` with ``(B,)`` terms; ``per_sample = mse + cosine_weight·(1 − cosine)``.
        """
        cfg = self.config
        tau = cfg.tau
        check_latents(latents, tau, "latents", channels=cfg.latent_channels)
        # one host sync per step (a trainer reads the loss anyway): NaN/inf data fails loudly, not into the weights
        finite = torch.isfinite(latents).all()
        if cond is not None:
            finite = finite & torch.isfinite(cond).all()
        if not bool(finite):
            raise ValueError("motion prior training data holds non-finite values (NaN or inf) in the latents or the "
                             "prompt condition; check the latent cache (re-run `lamo cache` for the affected shards)")
        B, F, C, H, W = latents.shape
        P = F - tau
        target = lag_delta(latents, tau).reshape(B * P, C, H, W).float()  # (B·P, C, H, W)
        inp = latents[:, :P].reshape(B * P, C, H, W)  # (B·P, C, H, W)
        prev = self._prev_deltas(latents, tau, P).reshape(B * P, C, H, W) if cfg.second_order else None
        dev = latents.device
        gen_dev = generator.device if generator is not None else dev

        def rand(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, generator=generator, device=gen_dev).to(dev)

        drop = None
        if self.training and cfg.prompt_dropout > 0 and cond is not None:
            if cfg.arch == "release":
                drop = rand(B * P) < cfg.prompt_dropout  # (B·P,) one draw per pair, as the release
            else:
                drop = (rand(B) < cfg.prompt_dropout).repeat_interleave(P)  # (B·P,) one draw per clip
        if self.training and cfg.noise_aug_prob > 0 and cfg.noise_aug_std > 0:
            which = (rand(B * P) < cfg.noise_aug_prob).to(inp.dtype)[:, None, None, None]  # (B·P, 1, 1, 1)
            std: torch.Tensor | float = cfg.noise_aug_std
            if cfg.noise_aug == "diffusion":
                levels = _check_noise_levels(aug_noise_levels)
                t = torch.randint(0, levels.numel(), (B * P,), generator=generator, device=gen_dev)
                std = cfg.noise_aug_std * levels.to(gen_dev).index_select(0, t).to(dev, inp.dtype)[:, None, None, None]
            noise = torch.randn(inp.shape, generator=generator, device=gen_dev).to(dev)
            inp = inp + which * std * noise.to(inp.dtype)
        c = None if cond is None else cond.repeat_interleave(P, dim=0)  # (B·P, D)
        pred = self(inp, c, drop, prev_delta=prev).float()  # (B·P, C, H, W)
        mse = (pred - target).pow(2).flatten(1).mean(1)  # (B·P,)
        cos = Fn.cosine_similarity(pred.flatten(1), target.flatten(1), dim=1, eps=1e-8)  # (B·P,)
        per_pair = mse + cfg.cosine_weight * (1 - cos)
        return PriorLossOutput(
            per_sample=per_pair.view(B, P).mean(1),
            mse=mse.view(B, P).mean(1).detach(),
            cosine=cos.view(B, P).mean(1).detach(),
        )

    def activation_bytes_per_frame(self, height: int, width: int) -> int:
        """Bytes autograd keeps for the backward pass of one ``H × W`` latent frame through the prior.

        Counted, not estimated: one frame goes through the prior on the ``meta`` device (no memory, no
        compute) under :func:`torch.autograd.graph.saved_tensors_hooks`, with the input requiring a
        gradient and the weights as they are; the parameters themselves are not counted. The count
        is linear in the number of frames, so guidance uses it to split the τ-pairs into calls that
        fit a memory budget. Cached per (H, W, dtype).
        """
        dtype = self._weight_dtype
        key = (int(height), int(width), dtype)
        cache = self.__dict__.setdefault("_activation_bytes", {})
        if key not in cache:
            params = {name: torch.empty_like(t, device="meta").requires_grad_(t.requires_grad)
                      for name, t in [*self.named_parameters(), *self.named_buffers()]}
            weights = {id(t) for t in params.values()}
            saved: list[torch.Tensor] = []  # held until counted, so no id is reused

            def pack(t: torch.Tensor) -> torch.Tensor:
                saved.append(t)
                return t

            z = torch.empty(1, self.config.latent_channels, key[0], key[1], device="meta", dtype=dtype,
                            requires_grad=True)
            cond = torch.empty(1, self.config.text_embed_dim, device="meta", dtype=dtype)
            with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                torch.func.functional_call(self, params, (z, cond))
            unique = {id(t): t for t in saved if id(t) not in weights and t is not z}
            cache[key] = sum(t.numel() * t.element_size() for t in unique.values())
        return cache[key]

    def num_parameters_m(self) -> float:
        """Parameter count in millions."""
        return sum(p.numel() for p in self.parameters()) / 1e6

    def check_compatible(self, latent_channels: int, text_embed_dim: int | None = None, backbone: str | None = None) -> None:
        """Raise a ``ValueError`` naming the mismatch when this prior was trained for another backbone."""
        cfg = self.config
        problems = []
        if latent_channels != cfg.latent_channels:
            problems.append(f"latent channels {cfg.latent_channels} (backbone has {latent_channels})")
        if text_embed_dim is not None and text_embed_dim != cfg.text_embed_dim:
            problems.append(f"text embedding width {cfg.text_embed_dim} (backbone has {text_embed_dim})")
        if backbone and cfg.backbone and backbone != cfg.backbone:
            problems.append(f"backbone family {cfg.backbone!r} (this pipeline is {backbone!r})")
        if problems:
            raise ValueError(
                "this motion prior was trained for another backbone: " + "; ".join(problems)
                + ". Train a prior on this backbone's own latents and prompt embeddings (`lamo cache` then "
                "`lamo train prior`)."
            )


# ------------------------------------------------------------------------------------------------
# The authors' release layout (arch="release"): their predictor.safetensors, read and written here
# so that from_pretrained reads a release folder without reaching up to lamo.convert.
# ------------------------------------------------------------------------------------------------
RELEASE_PREFIX = "physical_lamo."
RELEASE_PREDICTOR_FILE = "predictor.safetensors"
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
    wrong = [f"{RELEASE_PREFIX + k} {tuple(out[k].shape)} (a {n}-D weight expected)"
             for k, n in (("input_proj.weight", 4), ("output_proj.weight", 4), ("prompt_proj.weight", 2))
             if out[k].ndim != n]
    if wrong:
        raise InputError(f"release predictor: wrong shape(s) {'; '.join(wrong)}; cannot read the architecture off "
                         "this file")
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


def parse_prior_options(text: str) -> dict[str, Any]:
    """``"tau=1,noise_aug=diffusion,cosine_weight=0.3"`` → MotionPrior keyword arguments (YAML values)."""
    import inspect

    import yaml

    known = set(inspect.signature(MotionPrior.__init__).parameters) - {"self", "latent_channels", "text_embed_dim",
                                                                        "backbone"}
    out: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in known:
            raise InputError(f"prior_options: {item!r} is not KEY=VALUE with KEY one of {sorted(known)}")
        out[key] = yaml.safe_load(value.strip())
    return out
