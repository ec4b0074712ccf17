"""Motion Prior Guidance (DESIGN.md §1.5).

After the classifier-free-guidance mix, with model output ``o`` (ε, v or flow velocity) and the
clean estimate ``x̂0(o)`` from the scheduler's own parametrisation::

    r_i      = x̂0_i + f_φ(x̂0_i, c) − x̂0_{i+τ}                    i = 0 … F−τ−1
    L_b      = mean_i  Σ_{c,h,w} r_i²                              per sample
    L_guide  = Σ_b L_b
    o       ← o − λ · ∇_o L_guide                                 only at steps s ≥ (1 − ρ)·S

**What λ means.** Summing over elements and over samples makes the per-element gradient
independent of the latent's resolution and of the batch size (each sample's gradient depends only on
that sample), and averaging over the τ-pairs keeps it of the same order whatever the clip length. A
λ therefore means the same on a 32×32 toy and on CogVideoX's 60×90 latents, at batch 1 or 64. The
paper's λ = 25 is under its own (element-mean) reduction and is *not* comparable; see the README for
the calibrated range.

The gradient graph holds ``x̂0(o)`` and ``f_φ`` only — never the backbone — which is what keeps MPG
cheap. ``mode="latent"`` is the paper's "direct latent edit" ablation: ``x_t ← x_t − λ·∇_{x_t} L``
with the output left as it is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .motion import check_finite, check_latents
from .parametrization import NoiseLevel, check_prediction_type, predict_x0
from .prior import MotionPrior

__all__ = ["MotionPriorGuidance", "GuidanceOutput", "guidance_loss", "GUIDANCE_MODES"]

GUIDANCE_MODES = ("output", "latent")


def guidance_loss(prior: MotionPrior, x0: torch.Tensor, cond: torch.Tensor | None, tau: int) -> torch.Tensor:
    """Per-sample ``L_b = mean_i Σ_{c,h,w} ‖x̂0_i + f_φ(x̂0_i, c) − x̂0_{i+τ}‖²`` → ``(B,)``.

    ``x0`` is ``(B, F, C, H, W)``; ``cond`` is ``(B, text_embed_dim)`` or ``None``. All τ-pairs go
    through the prior in one batched call.
    """
    dtype = torch.promote_types(x0.dtype, torch.float32)  # reduce in ≥ fp32
    field = prior.predict_motion(x0, cond, tau).to(dtype)  # (B, F−τ, C, H, W)
    residual = x0[:, :-tau].to(dtype) + field - x0[:, tau:].to(dtype)  # (B, F−τ, C, H, W)
    return residual.pow(2).sum(dim=(2, 3, 4)).mean(1)  # (B,)


@dataclass
class GuidanceOutput:
    """What one guidance call returns.

    Attributes:
        model_output: the (possibly corrected) model output, same shape and dtype as given.
        sample: the (possibly edited, ``mode="latent"``) noisy sample, same shape and dtype as given.
        loss: ``(B,)`` ``L_b`` before the update, or ``None`` when the step was not guided.
        active: whether this step was guided.
    """

    model_output: torch.Tensor
    sample: torch.Tensor
    loss: torch.Tensor | None
    active: bool


class MotionPriorGuidance:
    """Motion Prior Guidance: ``o ← o − λ·∇_o L_guide`` in the low-noise window (DESIGN.md §1.5).

    Args:
        prior: a trained :class:`~lamo.prior.MotionPrior` (kept in eval mode, never updated).
        scale: λ ≥ 0; 0 turns guidance off (outputs are returned untouched, bit for bit).
        window: ρ ∈ [0, 1]; steps ``s ≥ (1 − ρ)·S`` are guided (0.8: the noisiest 20 % are skipped).
        tau: lag in latent frames; defaults to the prior's own.
        mode: ``"output"`` (the method) or ``"latent"`` (direct latent edit ablation).
        check_finite: raise a clear error when the guided quantities hold NaN/inf (one host sync per
            guided step); turn off only for benchmarking.
    """

    def __init__(
        self,
        prior: MotionPrior,
        scale: float = 1.0,
        window: float = 0.8,
        tau: int | None = None,
        mode: str = "output",
        check_finite: bool = True,
    ):
        if not isinstance(prior, MotionPrior):
            raise TypeError(f"prior must be a lamo.MotionPrior, got {type(prior).__name__}")
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 0):
            raise ValueError(f"guidance scale λ must be a finite number ≥ 0, got {scale!r}")
        if not 0.0 <= window <= 1.0:
            raise ValueError(f"guidance window ρ must be in [0, 1], got {window!r}")
        if mode not in GUIDANCE_MODES:
            raise ValueError(f"unknown guidance mode {mode!r}; expected one of {GUIDANCE_MODES}")
        self.prior = prior.eval().requires_grad_(False)
        self.scale = float(scale)
        self.window = float(window)
        self.tau = int(prior.config.tau if tau is None else tau)
        self.mode = mode
        self.check_finite = check_finite

    def first_step(self, num_steps: int) -> int:
        """Index of the first guided step: ``⌈(1 − ρ)·S⌉`` (robust to float round-off)."""
        return max(0, math.ceil(round((1.0 - self.window) * num_steps, 6)))

    def is_active(self, step_index: int, num_steps: int) -> bool:
        """Whether step ``step_index`` (0-based) of ``num_steps`` is guided."""
        return self.scale > 0 and self.window > 0 and step_index >= self.first_step(num_steps)

    def loss(
        self,
        model_output: torch.Tensor,
        sample: torch.Tensor,
        prediction_type: str,
        *,
        alpha_bar: NoiseLevel | None = None,
        sigma: NoiseLevel | None = None,
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-sample ``L_b`` (``(B,)``) of ``x̂0(model_output)`` — differentiable in both tensors."""
        x0 = predict_x0(model_output, sample, prediction_type, alpha_bar=alpha_bar, sigma=sigma)
        return guidance_loss(self.prior, x0, cond, self.tau)

    def __call__(
        self,
        model_output: torch.Tensor,
        sample: torch.Tensor,
        *,
        step_index: int,
        num_steps: int,
        prediction_type: str,
        alpha_bar: NoiseLevel | None = None,
        sigma: NoiseLevel | None = None,
        cond: torch.Tensor | None = None,
    ) -> GuidanceOutput:
        """Guide one denoising step.

        Args:
            model_output: ``(B, F, C, H, W)`` CFG-mixed backbone output (ε, v or flow velocity).
            sample: ``(B, F, C, H, W)`` the noisy latent ``x_t`` the output was computed at.
            step_index: 0-based index of this step; num_steps: ``S``.
            prediction_type: ``"epsilon"``, ``"v_prediction"`` or ``"flow"``.
            alpha_bar / sigma: the step's noise level (ᾱ_t for ε/v, σ_t for flow), scalar or ``(B,)``.
            cond: ``(B, text_embed_dim)`` pooled prompt embedding of the conditional prompt, or ``None``.
        """
        prediction_type = check_prediction_type(prediction_type)
        check_latents(model_output, self.tau, "model output", channels=self.prior.config.latent_channels)
        if sample.shape != model_output.shape:
            raise ValueError(
                f"sample shape {tuple(sample.shape)} does not match model output shape {tuple(model_output.shape)}"
            )
        if not self.is_active(step_index, num_steps):
            return GuidanceOutput(model_output, sample, None, False)

        edit_latent = self.mode == "latent"
        with torch.enable_grad():
            dtype = torch.promote_types(model_output.dtype, torch.float32)  # the update is taken in ≥ fp32
            o = model_output.detach().to(dtype).requires_grad_(not edit_latent)
            x = sample.detach().to(dtype).requires_grad_(edit_latent)
            per_sample = self.loss(o, x, prediction_type, alpha_bar=alpha_bar, sigma=sigma, cond=cond)
            target = x if edit_latent else o
            (grad,) = torch.autograd.grad(per_sample.sum(), target)
        if self.check_finite:
            check_finite(torch.stack([per_sample.detach().sum(), grad.abs().sum()]),
                         "motion prior guidance (loss and gradient)")
        if edit_latent:
            new_sample = (x - self.scale * grad).to(sample.dtype)
            return GuidanceOutput(model_output, new_sample, per_sample.detach(), True)
        new_output = (o - self.scale * grad).to(model_output.dtype)
        return GuidanceOutput(new_output, sample, per_sample.detach(), True)
