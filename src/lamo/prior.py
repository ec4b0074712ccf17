"""The micro motion field ``f_φ(z_i, c) ≈ Δ_τ z_i`` (DESIGN.md §1.4).

A prompt-conditioned CNN on one latent frame: FiLM residual blocks, a zero-initialised output
layer (so an untrained prior predicts no motion), a learned null condition used with prompt dropout,
and input noise augmentation while training. Its condition ``c`` is the backbone's own prompt
embedding, pooled over tokens (:func:`pool_prompt_embeds`) and projected here, so prior and backbone
share one text space.

Training loss per sample: ``MSE(f, Δ) + 0.5 · (1 − cos(f, Δ))`` averaged over the clip's τ-pairs.

The class is a diffusers ``ModelMixin``/``ConfigMixin``: ``save_pretrained`` writes
``diffusion_pytorch_model.safetensors`` + ``config.json`` and ``from_pretrained`` reads them back
(safetensors only — nothing is unpickled).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as Fn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .motion import check_latents, lag_delta

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # owner/name on the Hugging Face Hub

__all__ = ["MotionPrior", "PRIOR_PRESETS", "PriorLossOutput", "pool_prompt_embeds"]

# Size presets: hidden width, residual blocks, condition width. "base" is ≈10M parameters for
# 16-channel latents and 4096-d (T5-XXL) prompt embeddings.
PRIOR_PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(hidden_channels=32, num_blocks=2, cond_dim=32),
    "small": dict(hidden_channels=64, num_blocks=4, cond_dim=128),
    "medium": dict(hidden_channels=128, num_blocks=6, cond_dim=256),
    "base": dict(hidden_channels=192, num_blocks=12, cond_dim=256),
}


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


@dataclass
class PriorLossOutput:
    """Prior training loss with named terms, all ``(B,)`` (mean over the clip's τ-pairs)."""

    per_sample: torch.Tensor
    mse: torch.Tensor
    cosine: torch.Tensor  # cosine similarity between predicted and true Δ_τ z (higher is better)


class MotionPrior(ModelMixin, ConfigMixin):
    """Micro motion field ``f_φ(z_i, c) ≈ Δ_τ z_i`` (DESIGN.md §1.4).

    Args:
        latent_channels: ``C`` of the backbone's latents (16 for CogVideoX and Wan 2.1).
        text_embed_dim: width of the backbone's prompt embeddings (4096 for T5-XXL).
        hidden_channels: CNN width.
        num_blocks: FiLM residual blocks.
        cond_dim: width of the projected condition.
        tau: lag in latent frames the prior was trained for (2).
        prompt_dropout: probability a training clip uses the learned null condition (0.2).
        noise_aug_prob: probability a training input frame gets Gaussian noise (0.5).
        noise_aug_std: that noise's standard deviation, in latent units (0.1).
        backbone: free-text name of the backbone family whose latents it was trained on
            (e.g. ``"cogvideox"``); pipelines refuse a prior trained for another family.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 16,
        text_embed_dim: int = 4096,
        hidden_channels: int = 192,
        num_blocks: int = 12,
        cond_dim: int = 256,
        tau: int = 2,
        prompt_dropout: float = 0.2,
        noise_aug_prob: float = 0.5,
        noise_aug_std: float = 0.1,
        backbone: str = "",
    ):
        super().__init__()
        for name, v in dict(latent_channels=latent_channels, text_embed_dim=text_embed_dim,
                            hidden_channels=hidden_channels, num_blocks=num_blocks, cond_dim=cond_dim,
                            tau=tau).items():
            if int(v) < 1:
                raise ValueError(f"MotionPrior: {name} must be ≥ 1, got {v}")
        for name, p in dict(prompt_dropout=prompt_dropout, noise_aug_prob=noise_aug_prob).items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"MotionPrior: {name} is a probability in [0, 1], got {p}")
        self.gradient_checkpointing = False
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

    @classmethod
    def from_preset(cls, preset: str, **kwargs: Any) -> "MotionPrior":
        """Build a prior from a named size preset (``tiny``, ``small``, ``medium``, ``base``)."""
        if preset not in PRIOR_PRESETS:
            raise ValueError(f"unknown prior preset {preset!r}; choose from {sorted(PRIOR_PRESETS)}")
        return cls(**{**PRIOR_PRESETS[preset], **kwargs})

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> "MotionPrior":
        """Load a prior saved with ``save_pretrained`` (safetensors + config.json only).

        A local path that does not exist, or a folder without ``config.json``, raises
        ``FileNotFoundError`` naming what is missing.
        """
        path = os.fspath(pretrained_model_name_or_path)
        folder = os.path.join(path, kwargs.get("subfolder") or "")
        if os.path.isdir(path):
            if not os.path.isfile(os.path.join(folder, "config.json")):
                raise FileNotFoundError(
                    f"{folder} is not a LaMo motion prior checkpoint: config.json is missing. A prior folder "
                    "holds config.json and diffusion_pytorch_model.safetensors (written by "
                    "MotionPrior.save_pretrained or `lamo train prior`)."
                )
        elif os.path.exists(path) or not _HUB_ID.fullmatch(path):
            raise FileNotFoundError(
                f"motion prior checkpoint {path!r} not found (expected a folder with config.json and "
                "diffusion_pytorch_model.safetensors). Train one with `lamo train prior`, or pass its folder."
            )
        kwargs.setdefault("use_safetensors", True)
        try:
            return super().from_pretrained(path, **kwargs)
        except (OSError, EnvironmentError) as e:
            if os.path.isdir(path):
                raise
            raise FileNotFoundError(
                f"motion prior {path!r} is not a local folder and could not be loaded from the Hugging Face "
                f"Hub ({type(e).__name__}: {e}). Check the path, or download the prior first."
            ) from e

    # ------------------------------------------------------------------ conditioning
    def condition(self, cond: torch.Tensor | None, n: int, drop: torch.Tensor | None = None) -> torch.Tensor:
        """Project a pooled prompt embedding ``(N, text_embed_dim)`` (or ``None``) to ``(N, cond_dim)``.

        ``drop`` (``(N,)`` bool) replaces the chosen rows by the learned null condition.
        """
        null = self.null_cond.to(self.conv_in.weight.dtype).expand(n, -1)  # (N, cond_dim)
        if cond is None:
            c = null
        else:
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
            c = self.cond_proj(cond.to(self.conv_in.weight.dtype))
            if drop is not None:
                c = torch.where(drop[:, None], null, c)
        return self.cond_act(c)

    # ------------------------------------------------------------------ forward
    def forward(
        self, z: torch.Tensor, cond: torch.Tensor | None = None, drop: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Predict ``Δ_τ z`` for single latent frames.

        Args:
            z: ``(N, C, H, W)`` latent frames.
            cond: ``(N, text_embed_dim)`` pooled prompt embeddings (or ``(1, ·)`` shared), or ``None``
                for the learned null condition.
            drop: optional ``(N,)`` bool — use the null condition for these rows.

        Returns:
            ``(N, C, H, W)`` predicted lag delta.
        """
        if z.ndim != 4:
            raise ValueError(f"MotionPrior takes single latent frames (N, C, H, W), got shape {tuple(z.shape)}")
        if z.shape[1] != self.config.latent_channels:
            raise ValueError(
                f"latents have {z.shape[1]} channels but this motion prior was trained for "
                f"{self.config.latent_channels}-channel latents (backbone {self.config.backbone or 'unknown'!r}); "
                "use a prior trained on this backbone's latent space"
            )
        c = self.condition(cond, z.shape[0], drop)  # (N, cond_dim)
        h = self.conv_in(z.to(self.conv_in.weight.dtype))  # (N, D, H, W)
        for block in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                h = torch.utils.checkpoint.checkpoint(block, h, c, use_reentrant=False)
            else:
                h = block(h, c)
        return self.conv_out(Fn.silu(self.norm_out(h)))  # (N, C, H, W)

    def predict_motion(self, z: torch.Tensor, cond: torch.Tensor | None = None, tau: int | None = None) -> torch.Tensor:
        """All τ-pairs of a clip in one call: ``(B, F, C, H, W)`` → ``(B, F−τ, C, H, W)`` ≈ ``Δ_τ z``."""
        tau = self.config.tau if tau is None else tau
        check_latents(z, tau, "latents", channels=self.config.latent_channels)
        B, F, C, H, W = z.shape
        P = F - tau
        frames = z[:, :P].reshape(B * P, C, H, W)  # (B·P, C, H, W)
        c = None if cond is None else cond.repeat_interleave(P, dim=0)  # (B, D) -> (B·P, D)
        return self(frames, c).reshape(B, P, C, H, W)

    # ------------------------------------------------------------------ training
    def training_loss(
        self,
        latents: torch.Tensor,
        cond: torch.Tensor | None,
        generator: torch.Generator | None = None,
    ) -> PriorLossOutput:
        """Loss on clean latent clips with prompt dropout and input noise augmentation (config values).

        Args:
            latents: ``(B, F, C, H, W)`` clean latent clips.
            cond: ``(B, text_embed_dim)`` pooled prompt embeddings, or ``None``.
            generator: optional RNG for the dropout / augmentation draws (reproducible runs).

        Returns:
            :class:`PriorLossOutput` with ``(B,)`` terms; ``per_sample = mse + 0.5·(1 − cosine)``.
        """
        tau = self.config.tau
        check_latents(latents, tau, "latents", channels=self.config.latent_channels)
        B, F, C, H, W = latents.shape
        P = F - tau
        target = lag_delta(latents, tau).reshape(B * P, C, H, W).float()  # (B·P, C, H, W)
        inp = latents[:, :P].reshape(B * P, C, H, W)  # (B·P, C, H, W)
        dev = latents.device

        def rand(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, generator=generator, device=generator.device if generator else dev).to(dev)

        drop = None
        if self.training and self.config.prompt_dropout > 0 and cond is not None:
            drop = (rand(B) < self.config.prompt_dropout).repeat_interleave(P)  # (B·P,)
        if self.training and self.config.noise_aug_prob > 0 and self.config.noise_aug_std > 0:
            which = (rand(B * P) < self.config.noise_aug_prob).to(inp.dtype)[:, None, None, None]
            noise = torch.randn(inp.shape, generator=generator, device=generator.device if generator else dev).to(dev)
            inp = inp + which * self.config.noise_aug_std * noise.to(inp.dtype)
        c = None if cond is None else cond.repeat_interleave(P, dim=0)  # (B·P, D)
        pred = self(inp, c, drop).float()  # (B·P, C, H, W)
        mse = (pred - target).pow(2).flatten(1).mean(1)  # (B·P,)
        cos = Fn.cosine_similarity(pred.flatten(1), target.flatten(1), dim=1, eps=1e-8)  # (B·P,)
        per_pair = mse + 0.5 * (1 - cos)
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
        dtype = self.conv_in.weight.dtype
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

