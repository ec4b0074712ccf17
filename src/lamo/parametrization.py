"""Clean-latent estimates ``x̂0`` and the signal weight ``w(t)`` for each prediction type (docs/design.md §1).

The three parametrisations diffusers' schedulers use:

* ``"epsilon"``:      ``x̂0 = (x_t − √(1−ᾱ_t)·ε) / √ᾱ_t``
* ``"v_prediction"``: ``x̂0 = √ᾱ_t·x_t − √(1−ᾱ_t)·v``
* ``"flow"``:         ``x_t = (1−σ)·x0 + σ·ε``, ``v = ε − x0``  ⇒  ``x̂0 = x_t − σ_t·v``

DDPM-family types take the noise level as ``alpha_bar`` (ᾱ_t, after any SNR shift the scheduler
applies); flow takes ``sigma``. Either is a Python float or a tensor broadcastable per sample: shape
``()`` or ``(B,)``.
"""
from __future__ import annotations

from typing import Union

import torch

__all__ = ["PREDICTION_TYPES", "check_prediction_type", "predict_x0", "signal_weight", "per_sample"]

PREDICTION_TYPES = ("epsilon", "v_prediction", "flow")
NoiseLevel = Union[float, torch.Tensor]


def check_prediction_type(prediction_type: str) -> str:
    """Return ``prediction_type`` (``"flow_prediction"`` normalised to ``"flow"``) or raise a clear error."""
    if prediction_type == "flow_prediction":
        prediction_type = "flow"
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(
            f"unknown prediction type {prediction_type!r}; expected one of {PREDICTION_TYPES} "
            "(what the backbone predicts: ε, v, or flow velocity)"
        )
    return prediction_type


def per_sample(level: NoiseLevel, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a noise level (float, ``()`` or ``(B,)``) against a tensor ``like`` of shape ``(B, ...)``."""
    t = torch.as_tensor(level, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        return t
    if t.ndim != 1 or t.shape[0] not in (1, like.shape[0]):
        raise ValueError(
            f"noise level must be a scalar or have one value per sample ({like.shape[0]}), got shape {tuple(t.shape)}"
        )
    return t.reshape(-1, *([1] * (like.ndim - 1)))  # (B,) -> (B, 1, …, 1)


def _need(name: str, value: NoiseLevel | None, prediction_type: str) -> NoiseLevel:
    if value is None:
        raise ValueError(f"prediction type {prediction_type!r} needs `{name}` (the step's noise level)")
    return value


def predict_x0(
    model_output: torch.Tensor,
    sample: torch.Tensor,
    prediction_type: str,
    *,
    alpha_bar: NoiseLevel | None = None,
    sigma: NoiseLevel | None = None,
) -> torch.Tensor:
    """Clean latent ``x̂0`` implied by ``model_output`` at noisy ``sample`` (same shape as both).

    Differentiable in ``model_output`` and ``sample``.
    """
    prediction_type = check_prediction_type(prediction_type)
    if model_output.shape != sample.shape:
        raise ValueError(
            f"model output shape {tuple(model_output.shape)} does not match sample shape {tuple(sample.shape)}"
        )
    if prediction_type == "flow":
        s = per_sample(_need("sigma", sigma, prediction_type), sample)
        return sample - s * model_output
    a = per_sample(_need("alpha_bar", alpha_bar, prediction_type), sample)
    if prediction_type == "v_prediction":
        return a.sqrt() * sample - (1 - a).sqrt() * model_output
    return (sample - (1 - a).sqrt() * model_output) / a.sqrt()


def signal_weight(
    prediction_type: str, *, alpha_bar: NoiseLevel | None = None, sigma: NoiseLevel | None = None
) -> torch.Tensor:
    """Signal fraction ``w(t)`` of the noisy input, per sample (docs/design.md §1.3).

    ``ᾱ_t`` for DDPM-family schedules (``"epsilon"``, ``"v_prediction"``), ``1 − σ_t`` for flow
    matching. In ``[0, 1]``; 1 means clean. Returns a tensor shaped like the noise level given.
    """
    prediction_type = check_prediction_type(prediction_type)
    if prediction_type == "flow":
        return 1 - torch.as_tensor(_need("sigma", sigma, prediction_type), dtype=torch.float32)
    return torch.as_tensor(_need("alpha_bar", alpha_bar, prediction_type), dtype=torch.float32)
