"""The one adapter contract every backbone family implements (DESIGN.md §2).

Everything outside ``lamo.adapters`` (prior, losses, guidance, data, metrics, trainers) is
backbone-agnostic and talks to a backbone only through a :class:`BackboneAdapter`. An adapter knows:

* the latent layout (``to_bfchw`` / ``from_bfchw``; LaMo's own layout is ``(B, F, C, H, W)``);
* the scheduler's prediction type and noise level at a timestep (ᾱ_t or σ_t), hence ``x̂0`` and ``w(t)``;
* how prompt embeddings are pooled into the prior's condition;
* how to encode videos / prompts with the backbone's VAE / text encoder (for the latent cache);
* one training forward that returns prediction, target and ``x̂0`` (for drift-loss fine-tuning).

Implementations: :mod:`lamo.adapters.cogvideox`, :mod:`lamo.adapters.wan`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch

from ..parametrization import predict_x0, signal_weight
from ..prior import pool_prompt_embeds

__all__ = ["BackboneAdapter", "NoiseLevel", "TrainingForward"]


@dataclass
class NoiseLevel:
    """A step's noise level: ``alpha_bar`` (ᾱ_t, DDPM family) or ``sigma`` (σ_t, flow), scalar or ``(B,)``."""

    prediction_type: str
    alpha_bar: torch.Tensor | None = None
    sigma: torch.Tensor | None = None

    def kwargs(self) -> dict[str, Any]:
        return {"alpha_bar": self.alpha_bar} if self.sigma is None else {"sigma": self.sigma}


@dataclass
class TrainingForward:
    """One fine-tuning forward pass, all latents in ``(B, F, C, H, W)``.

    Attributes:
        pred: backbone output (what the denoising loss compares to ``target``).
        target: denoising target for ``pred`` (ε, v or flow velocity).
        x0_pred: clean latent implied by ``pred`` (carries gradient; for the drift loss).
        weight: ``(B,)`` signal weight ``w(t)`` of each sample's noise level.
        noise_level: the sampled noise levels.
    """

    pred: torch.Tensor
    target: torch.Tensor
    x0_pred: torch.Tensor
    weight: torch.Tensor
    noise_level: NoiseLevel


class BackboneAdapter(ABC):
    """Backbone-specific knowledge behind one interface. Subclasses set ``family`` and ``layout``."""

    family: str = ""
    layout: str = "BFCHW"  # the backbone's own latent layout: "BFCHW" or "BCFHW"

    # ---------------------------------------------------------------- layout
    def to_bfchw(self, latents: torch.Tensor) -> torch.Tensor:
        """Backbone layout → LaMo's ``(B, F, C, H, W)``."""
        if self.layout == "BCFHW":
            return latents.permute(0, 2, 1, 3, 4)  # (B, C, F, H, W) -> (B, F, C, H, W)
        return latents

    def from_bfchw(self, latents: torch.Tensor) -> torch.Tensor:
        """LaMo's ``(B, F, C, H, W)`` → the backbone's layout."""
        if self.layout == "BCFHW":
            return latents.permute(0, 2, 1, 3, 4)  # (B, F, C, H, W) -> (B, C, F, H, W)
        return latents

    # ---------------------------------------------------------------- noise levels
    @abstractmethod
    def prediction_type(self, scheduler: Any) -> str:
        """``"epsilon"``, ``"v_prediction"`` or ``"flow"`` for this scheduler."""

    @abstractmethod
    def noise_level(self, scheduler: Any, timestep: torch.Tensor | float, sample: torch.Tensor | None = None) -> NoiseLevel:
        """The noise level the scheduler uses at ``timestep`` (after any SNR shift)."""

    def x0(self, model_output: torch.Tensor, sample: torch.Tensor, level: NoiseLevel) -> torch.Tensor:
        """``x̂0`` from the scheduler's own parametrisation (tensors in any one layout)."""
        return predict_x0(model_output, sample, level.prediction_type, **level.kwargs())

    def signal_weight(self, level: NoiseLevel) -> torch.Tensor:
        """``w(t)``: ᾱ_t (DDPM family) or 1 − σ_t (flow)."""
        return signal_weight(level.prediction_type, **level.kwargs())

    # ---------------------------------------------------------------- text
    def pool_prompt(self, prompt_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L, D)`` prompt embeddings → ``(B, D)`` prior condition (masked mean)."""
        return pool_prompt_embeds(prompt_embeds, attention_mask)

    # ---------------------------------------------------------------- dims
    @abstractmethod
    def latent_channels(self, transformer: Any) -> int:
        """Latent channel count ``C`` the backbone denoises."""

    @abstractmethod
    def text_embed_dim(self, transformer: Any) -> int:
        """Width ``D`` of the prompt embeddings the backbone takes."""
