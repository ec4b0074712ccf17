"""Motion algebra on latents (docs/design.md §1, steps 1–2).

Latents are laid out ``(B, F, C, H, W)`` — frames before channels, CogVideoX's order. Backbone
adapters convert other layouts before calling anything here.

* **Lag delta**   ``Δ_τ z_i = z_{i+τ} − z_i``            for ``i = 0 … F−τ−1``  → ``(B, F−τ, C, H, W)``
* **Macro drift** ``μ_i   = mean_{h,w} Δ_τ z_i ∈ R^C``                           → ``(B, F−τ, C)``

Both are plain tensor algebra in the latents' dtype, with no host sync (they run inside the guided
step): a NaN or inf in ``z`` reaches exactly the pairs it is part of. The losses built on them
(:mod:`lamo.losses`) check for non-finite values and raise.
"""
from __future__ import annotations

import numbers

import torch

__all__ = ["check_latents", "lag_delta", "macro_drift", "check_finite"]


def check_latents(z: torch.Tensor, tau: int, name: str = "latents", channels: int | None = None) -> None:
    """Raise a ``ValueError`` that says what is wrong unless ``z`` is a (B, F, C, H, W) tensor with F > τ.

    Args:
        z: latent video, ``(B, F, C, H, W)``.
        tau: lag in latent frames, ≥ 1.
        name: what to call ``z`` in the message.
        channels: when given, the channel count ``C`` must equal it (e.g. a prior's ``latent_channels``).
    """
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(z).__name__}")
    if not isinstance(tau, numbers.Integral) or isinstance(tau, bool) or tau < 1:
        raise ValueError(f"tau must be a positive integer number of latent frames, got {tau!r}")
    if z.ndim != 5:
        raise ValueError(
            f"{name} must have 5 dimensions laid out (B, F, C, H, W), got shape {tuple(z.shape)}. "
            "For a (B, C, F, H, W) backbone such as Wan, permute with z.permute(0, 2, 1, 3, 4) "
            "or go through its adapter."
        )
    if z.shape[1] <= tau:
        raise ValueError(
            f"{name} has {z.shape[1]} latent frames but tau={tau} needs at least {tau + 1} "
            "(frames are dim 1 of (B, F, C, H, W)); use more frames or a smaller tau."
        )
    if 0 in z.shape:  # an empty batch, channel or grid: the spatial mean would be a silent NaN
        raise ValueError(f"{name} has an empty dimension: shape {tuple(z.shape)} (B, F, C, H, W)")
    if channels is not None and z.shape[2] != channels:
        raise ValueError(
            f"{name} has {z.shape[2]} channels (dim 2 of (B, F, C, H, W)) but {channels} were expected; "
            "the motion prior was trained for a backbone with another latent space — "
            "use a prior trained on this backbone's latents."
        )
    if not torch.is_floating_point(z):
        raise TypeError(f"{name} must be a floating-point tensor, got {z.dtype}")


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise a ``ValueError`` when ``x`` holds NaN or ±inf (one host sync)."""
    if not bool(torch.isfinite(x).all()):
        n_bad = int((~torch.isfinite(x)).sum())
        raise ValueError(
            f"{name} contains {n_bad} non-finite value(s) (NaN or inf). Check the inputs, the dtype "
            "(fp16 overflows easily; prefer bf16 or fp32) and the learning rate / guidance scale."
        )


def lag_delta(z: torch.Tensor, tau: int = 2) -> torch.Tensor:
    """Lag delta ``Δ_τ z_i = z_{i+τ} − z_i`` (docs/design.md §1.1).

    Args:
        z: ``(B, F, C, H, W)`` latents.
        tau: lag in latent frames (default 2).

    Returns:
        ``(B, F−τ, C, H, W)``.
    """
    check_latents(z, tau)
    tau = int(tau)
    return z[:, tau:] - z[:, :-tau]  # (B, F−τ, C, H, W)


def macro_drift(z: torch.Tensor, tau: int = 2) -> torch.Tensor:
    """Macro drift ``μ_i = mean_{h,w} Δ_τ z_i`` — the channel-wise spatial mean of the lag delta (§1.2).

    Args:
        z: ``(B, F, C, H, W)`` latents.
        tau: lag in latent frames (default 2).

    Returns:
        ``(B, F−τ, C)``.
    """
    return lag_delta(z, tau).mean(dim=(-2, -1))  # (B, F−τ, C, H, W) -> (B, F−τ, C)
