"""Motion Drift Loss (docs/design.md §1.3) and the variants the paper ablates (§1.6).

``L_drift = mean_{b,i} ‖μ̂_i − μ*_i‖² / (‖μ*_i‖² + 1e-6)`` where ``μ̂`` is the macro drift of the
clean latent implied by the model output and ``μ*`` that of the clean target (no gradient). The
fine-tuning objective is ``L = L_denoise + λ_drift · w(t) · L_drift`` with ``λ_drift = 0.4``.

Variants, each one configuration value (``mode``):

* ``"normalized"`` — the method: macro drift, scale-normalised per pair.
* ``"raw"``        — ablation "raw L2": macro drift, plain squared error averaged over channels.
* ``"dense"``      — ablation "dense motion loss": per-location lag delta instead of macro drift,
  scale-normalised per pair.

Normalisations that do not explode on near-static clips (:data:`BATCH_DRIFT_MODES`; macro drift, the
per-sample value depends on the rest of the batch through one shared, gradient-free scale):

* ``"batch_normalized"`` — ``‖μ̂_i − μ*_i‖² / (mean_{b,i} ‖μ*_{b,i}‖² + 1e-6)``: one denominator, the
  batch's mean target drift energy. Still invariant to the latents' scale; a pair that barely moves
  weighs what its error is, not ``1/‖μ*_i‖²`` times it.
* ``"floor_normalized"`` — per pair as the method, with the denominator floored at
  ``FLOOR_FRACTION · mean_{b,i} ‖μ*_{b,i}‖²`` (only the near-static pairs change).
* ``"dense_batch_normalized"`` — the dense loss (per-location lag delta) over the batch's mean
  ``‖Δ_τ z*‖²``: the dense ablation without its per-pair blow-up on near-static pairs.

Why (measured on the demo world's latents, issue 15): per-pair ``‖μ*_i‖²`` spans five decades (median
0.056, 1 % of pairs below 4e-4, some exactly 0), so ``1/(‖μ*_i‖² + 1e-6)`` puts ~98 % of the method's
weight on the 1 % most static pairs; at the demo backbone its gradient was a median 10× (up to 230×) the
denoising gradient and nearly orthogonal to it, and one sample carried a median 42 % of it.
With batch size 1 the batch is one clip (per-clip normalisation).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .motion import check_finite, check_latents, lag_delta, macro_drift

__all__ = ["DRIFT_MODES", "BATCH_DRIFT_MODES", "ALL_DRIFT_MODES", "DriftLossOutput", "motion_drift_loss",
           "drift_loss_terms", "LAMBDA_DRIFT", "FLOOR_FRACTION"]

#: The method (per-pair normalisation, docs/design.md §1.3) and the paper's ablations (§1.6).
DRIFT_MODES = ("normalized", "raw", "dense")
#: Normalisations by the batch's drift energy (see the module docstring).
BATCH_DRIFT_MODES = ("batch_normalized", "floor_normalized", "dense_batch_normalized")
ALL_DRIFT_MODES = DRIFT_MODES + BATCH_DRIFT_MODES
LAMBDA_DRIFT = 0.4
EPS = 1e-6
#: ``"floor_normalized"``: a pair's denominator is at least this fraction of the batch's mean ``‖μ*‖²``.
FLOOR_FRACTION = 0.1


@dataclass
class DriftLossOutput:
    """Per-sample drift loss and what it was made of.

    Attributes:
        per_sample: ``(B,)`` drift loss of each sample (mean over pairs), before ``w(t)``.
        weighted: ``(B,)`` ``w(t) · per_sample`` when a weight was given, else ``per_sample``.
        drift_error: ``(B,)`` un-normalised ``mean_i ‖μ̂_i − μ*_i‖²`` (for logging).
    """

    per_sample: torch.Tensor
    weighted: torch.Tensor
    drift_error: torch.Tensor


def drift_loss_terms(
    x0_pred: torch.Tensor,
    x0_target: torch.Tensor,
    tau: int = 2,
    mode: str = "normalized",
    weight: torch.Tensor | None = None,
    check_finite_loss: bool = True,
) -> DriftLossOutput:
    """Per-sample Motion Drift Loss with named terms. Shapes: latents ``(B, F, C, H, W)``, weight ``(B,)``.

    Reduced in float32 (float64 stays float64). With ``check_finite_loss`` (default) a non-finite loss is
    an error that says why — NaN/inf in ``x0_pred``, ``x0_target`` or ``weight``, or drifts too large for
    the dtype — at the cost of one host sync; never a silent NaN handed to the optimizer.
    """
    if mode not in ALL_DRIFT_MODES:
        raise ValueError(f"unknown drift loss mode {mode!r}; expected one of {ALL_DRIFT_MODES}")
    check_latents(x0_pred, tau, "x0_pred")
    check_latents(x0_target, tau, "x0_target")
    if x0_pred.shape != x0_target.shape:
        raise ValueError(
            f"x0_pred shape {tuple(x0_pred.shape)} does not match x0_target shape {tuple(x0_target.shape)}"
        )
    if x0_pred.device != x0_target.device:
        raise ValueError(f"x0_pred is on {x0_pred.device} but x0_target on {x0_target.device}")
    # Reduce in at least fp32 (bf16 drifts of near-static clips underflow); float64 stays float64.
    dtype = torch.promote_types(x0_pred.dtype, torch.float32)
    target = x0_target.detach().to(dtype)
    pred = x0_pred.to(dtype)
    if mode in ("dense", "dense_batch_normalized"):
        mu_hat = lag_delta(pred, tau).flatten(2)  # (B, F−τ, C·H·W)
        mu_star = lag_delta(target, tau).flatten(2)  # (B, F−τ, C·H·W)
    else:
        mu_hat = macro_drift(pred, tau)  # (B, F−τ, C)
        mu_star = macro_drift(target, tau)  # (B, F−τ, C)
    err = (mu_hat - mu_star).pow(2).sum(-1)  # (B, F−τ)
    energy = mu_star.pow(2).sum(-1)  # (B, F−τ) ‖μ*_i‖², no gradient
    if mode == "raw":
        per_pair = err / mu_hat.shape[-1]
    elif mode in ("batch_normalized", "dense_batch_normalized"):
        per_pair = err / (energy.mean() + EPS)
    elif mode == "floor_normalized":
        per_pair = err / (energy.clamp_min(FLOOR_FRACTION * energy.mean()) + EPS)
    else:
        per_pair = err / (energy + EPS)
    per_sample = per_pair.mean(1)  # (B,)
    weighted = per_sample
    w = None
    if weight is not None:
        w = torch.as_tensor(weight, dtype=per_sample.dtype, device=per_sample.device).reshape(-1)
        if w.numel() not in (1, per_sample.numel()):
            raise ValueError(f"weight must be a scalar or have one value per sample, got {tuple(w.shape)}")
        weighted = w * per_sample
    if check_finite_loss and not bool(torch.isfinite(weighted).all()):  # one host sync
        for x, name in ((x0_pred, "x0_pred"), (x0_target, "x0_target"), (w, "weight")):
            if x is not None:
                check_finite(x.detach(), name)
        raise ValueError(
            f"the drift loss is not finite although its inputs are: the latents' drifts are too large for "
            f"{dtype} (largest |x0_pred| {float(x0_pred.detach().abs().max()):.3g}, "
            f"|x0_target| {float(x0_target.detach().abs().max()):.3g}); scale the latents as the VAE does"
        )
    return DriftLossOutput(per_sample=per_sample, weighted=weighted, drift_error=err.mean(1).detach())


def motion_drift_loss(
    x0_pred: torch.Tensor,
    x0_target: torch.Tensor,
    tau: int = 2,
    mode: str = "normalized",
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Motion Drift Loss ``mean_{b,i} ‖μ̂_i − μ*_i‖² / (‖μ*_i‖² + 1e-6)`` (docs/design.md §1.3).

    Args:
        x0_pred: ``(B, F, C, H, W)`` clean latent implied by the model output (carries gradient).
        x0_target: ``(B, F, C, H, W)`` clean training latent; detached here.
        tau: lag in latent frames.
        mode: ``"normalized"`` (the method), ``"raw"`` or ``"dense"`` (ablations), ``"batch_normalized"``
            or ``"floor_normalized"`` (normalised by the batch's drift energy; module docstring).
        weight: optional per-sample ``w(t)``, ``(B,)`` — see :func:`lamo.signal_weight`.
        reduction: ``"mean"`` (scalar) or ``"none"`` (``(B,)``).
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    out = drift_loss_terms(x0_pred, x0_target, tau=tau, mode=mode, weight=weight)
    if reduction == "none":
        return out.weighted
    if reduction == "mean":
        return out.weighted.mean()
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
