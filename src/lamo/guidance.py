"""Motion Prior Guidance (docs/design.md §1.5).

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
paper's λ = 25 is under its own (element-mean) reduction and is *not* comparable; see benchmarks/README.md ("What λ means, and how it was calibrated") for
the calibrated range.

**The release's reduction** (``reduction="element_mean"``, docs/design.md §8): the authors' code takes
``L = mean_{b,i,c,h,w} r²`` — one mean over every element of the batch — so their λ (15) shrinks
with batch size and latent size. It is reachable exactly: ``L_b = mean_{i,c,h,w} r²`` per sample and
``L_guide = mean_b L_b``. Their window starts at ``int((1.0 − ρ)·S)`` evaluated in binary floating
point, round-off included: ``(1 − 0.8)·50`` is ``9.999…`` there, so they guide from step 9 — 41 of 50
steps. ``window_rounding="release"`` is that expression as it stands; ``"floor"`` is ``⌊(1 − ρ)·S⌋``
of the exact product and ``"ceil"`` (LaMo's default) rounds it up (both guide 40 of 50 steps).
:data:`RELEASE_GUIDANCE` holds the release's settings.

The gradient graph holds ``x̂0(o)`` and ``f_φ`` only — never the backbone — which is what keeps MPG
cheap. All τ-pairs go through the prior in one batched call when the activations autograd keeps for
them fit ``activation_budget_gib``; otherwise the pairs are split into as few calls as fit, each
call's graph freed before the next (``∂L/∂x̂0`` is accumulated, then pulled back to ``o`` once) — the
same gradient, no recomputation, bounded memory. A guided step makes no host sync unless
``check_finite="step"``. ``mode="latent"`` is the paper's "direct latent edit" ablation: ``x_t ← x_t − λ·∇_{x_t} L``
with the output left as it is.

**Two variants** (off by default; benchmarks/README.md, "Guidance choices", ablates them):

* ``stop_gradient=True`` ("one-sided"): ``r_i = sg(x̂0_i + f_φ(x̂0_i, c)) − x̂0_{i+τ}`` — the
  prediction is a fixed target that pulls the later frame, the prior's input is not moved (frames
  only ever read as inputs, e.g. frame 0 for τ = 1, get no gradient). The loss value is unchanged.
* ``schedule="noise"``: the step's λ follows the noise level, ``λ_t = λ·√(1 − ᾱ_t)`` (``λ·σ_t`` for
  flow models), per sample — strong early in the window, fading as the sample gets clean.
  ``"constant"`` (the default) is ``λ_t = λ``.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from .motion import check_finite, check_latents
from .parametrization import NoiseLevel, check_prediction_type, predict_x0
from .parametrization import per_sample as broadcast_level
from .prior import MotionPrior

__all__ = ["MotionPriorGuidance", "GuidanceOutput", "guidance_loss", "GUIDANCE_MODES", "FINITE_CHECKS",
           "GUIDANCE_REDUCTIONS", "GUIDANCE_SCHEDULES", "WINDOW_ROUNDINGS", "RELEASE_GUIDANCE"]

GUIDANCE_MODES = ("output", "latent")
GUIDANCE_REDUCTIONS = ("sum", "element_mean")
WINDOW_ROUNDINGS = ("ceil", "floor", "release")
GUIDANCE_SCHEDULES = ("constant", "noise")

# The authors' sampling-time guidance (docs/design.md §8) as MotionPriorGuidance arguments; with the
# release's predictor (τ = 1, from the prior) and S = 50 steps it is their update exactly.
RELEASE_GUIDANCE = dict(scale=15.0, window=0.8, reduction="element_mean", window_rounding="release")


def guidance_loss(
    prior: MotionPrior, x0: torch.Tensor, cond: torch.Tensor | None, tau: int, reduction: str = "sum",
    stop_gradient: bool = False,
) -> torch.Tensor:
    """Per-sample ``L_b`` of ``r_i = x̂0_i + f_φ(x̂0_i, c) − x̂0_{i+τ}`` → ``(B,)``.

    ``reduction="sum"`` (LaMo): ``L_b = mean_i Σ_{c,h,w} r_i²``; ``"element_mean"`` (the release):
    ``L_b = mean_{i,c,h,w} r_i²``. ``stop_gradient``: the prediction ``x̂0_i + f_φ(x̂0_i, c)`` is a
    constant (same value, gradient only through ``x̂0_{i+τ}``). ``x0`` is ``(B, F, C, H, W)``; ``cond``
    is ``(B, text_embed_dim)`` or ``None``. All τ-pairs go through the prior in one batched call.
    """
    if reduction not in GUIDANCE_REDUCTIONS:
        raise ValueError(f"unknown guidance reduction {reduction!r}; expected one of {GUIDANCE_REDUCTIONS}")
    dtype = torch.promote_types(x0.dtype, torch.float32)  # reduce in ≥ fp32
    # stop_gradient: a constant target, the prior's graph is not even built
    with torch.no_grad() if stop_gradient else contextlib.nullcontext():
        prediction = x0[:, :-tau].to(dtype) + prior.predict_motion(x0, cond, tau).to(dtype)  # (B, F−τ, C, H, W)
    residual = prediction - x0[:, tau:].to(dtype)  # (B, F−τ, C, H, W)
    if reduction == "element_mean":
        return residual.pow(2).mean(dim=(1, 2, 3, 4))  # (B,)
    return residual.pow(2).sum(dim=(2, 3, 4)).mean(1)  # (B,)


@dataclass
class GuidanceOutput:
    """What one guidance call returns.

    Attributes:
        model_output: the (possibly corrected) model output, same shape and dtype as given.
        sample: the (possibly edited, ``mode="latent"``) noisy sample, same shape and dtype as given.
        loss: ``(B,)`` ``L_b`` before the update, or ``None`` when the step was not guided.
        active: whether this step was guided.
        finite: with ``check_finite="deferred"``, a 0-d bool tensor on the sampling device — whether
            the loss and gradient of this step were all finite (read it when a sync is affordable).
    """

    model_output: torch.Tensor
    sample: torch.Tensor
    loss: torch.Tensor | None
    active: bool
    finite: torch.Tensor | None = None


FINITE_CHECKS = ("step", "deferred", "off")


class MotionPriorGuidance:
    """Motion Prior Guidance: ``o ← o − λ·∇_o L_guide`` in the low-noise window (docs/design.md §1.5).

    ``MotionPriorGuidance(prior, **RELEASE_GUIDANCE)`` with a release-architecture prior is the
    authors' update (λ = 15 under their element-mean reduction, from step ``int((1.0 − 0.8)·S)`` on: 9 of 50).

    Args:
        prior: a trained :class:`~lamo.prior.MotionPrior` (kept in eval mode, never updated).
        scale: λ ≥ 0; 0 turns guidance off (outputs are returned untouched, bit for bit).
        window: ρ ∈ [0, 1]; steps ``s ≥ (1 − ρ)·S`` are guided (0.8: the noisiest 20 % are skipped).
        tau: lag in latent frames; defaults to the prior's own.
        mode: ``"output"`` (the method) or ``"latent"`` (direct latent edit ablation).
        reduction: ``"sum"`` (LaMo: ``L_guide = Σ_b mean_i Σ_{c,h,w} r²``, λ independent of batch and
            latent size) or ``"element_mean"`` (the release: ``L_guide = mean_{b,i,c,h,w} r²``).
        window_rounding: ``"ceil"`` (first guided step ``⌈(1 − ρ)·S⌉``), ``"floor"`` (``⌊(1 − ρ)·S⌋``) or
            ``"release"`` (the authors' ``int((1.0 − ρ)·S)`` in floating point: step 9 of 50 at ρ = 0.8).
        stop_gradient: ``True``: one-sided residual ``r_i = sg(x̂0_i + f_φ(x̂0_i, c)) − x̂0_{i+τ}`` — only
            the later frame of each pair is pulled; ``False`` (the default): both sides move.
        schedule: ``"constant"`` (the default: ``λ_t = λ``) or ``"noise"`` (``λ_t = λ·√(1 − ᾱ_t)``, or
            ``λ·σ_t`` for flow models, per sample: the correction fades as the sample gets clean).
        check_finite: ``"step"`` (or ``True``) raises a clear error at once when the loss or gradient
            holds NaN/inf — one host sync per guided step; ``"deferred"`` makes no sync and returns
            the verdict as a device tensor in :attr:`GuidanceOutput.finite` (the pipelines check all
            steps once, after the loop); ``"off"`` (or ``False``) checks nothing.
        more_priors: further priors guiding in the same step, each at its own lag (several lags at once:
            ``L_b`` is the sum of every prior's loss; the prompt embedding is shared). Each prior's τ-pairs
            are split by ``activation_budget_gib`` like the first prior's.
        activation_budget_gib: most GiB of activations the prior's graph may hold at once; the
            τ-pairs are split into calls that fit (``None``: all pairs in one call, whatever it takes).
            The default, 2 GiB, puts all pairs of a CogVideoX-2B/5B video (13 latent frames at 60×90)
            through a bf16 prior in one call: on a GPU every extra call costs launch overhead (an
            H200 measured 14.7 ms in one call against 42.5 ms in four), and the prior's activations
            live while the backbone's are freed, so they add little to the sampling peak.
            See benchmarks/README.md.
    """

    def __init__(
        self,
        prior: MotionPrior,
        scale: float = 1.0,
        window: float = 0.8,
        tau: int | None = None,
        mode: str = "output",
        check_finite: bool | str = True,
        activation_budget_gib: float | None = 2.0,
        reduction: str = "sum",
        window_rounding: str = "ceil",
        stop_gradient: bool = False,
        schedule: str = "constant",
        more_priors: tuple[MotionPrior, ...] | list[MotionPrior] = (),
    ):
        for p in (prior, *more_priors):
            if not isinstance(p, MotionPrior):
                raise TypeError(f"prior must be a lamo.MotionPrior, got {type(p).__name__}")
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 0):
            raise ValueError(f"guidance scale λ must be a finite number ≥ 0, got {scale!r}")
        if not 0.0 <= window <= 1.0:
            raise ValueError(f"guidance window ρ must be in [0, 1], got {window!r}")
        if mode not in GUIDANCE_MODES:
            raise ValueError(f"unknown guidance mode {mode!r}; expected one of {GUIDANCE_MODES}")
        if reduction not in GUIDANCE_REDUCTIONS:
            raise ValueError(f"unknown guidance reduction {reduction!r}; expected one of {GUIDANCE_REDUCTIONS}")
        if window_rounding not in WINDOW_ROUNDINGS:
            raise ValueError(f"unknown window_rounding {window_rounding!r}; expected one of {WINDOW_ROUNDINGS}")
        if not isinstance(stop_gradient, bool):
            raise ValueError(f"stop_gradient must be True or False, got {stop_gradient!r}")
        if schedule not in GUIDANCE_SCHEDULES:
            raise ValueError(f"unknown guidance schedule {schedule!r}; expected one of {GUIDANCE_SCHEDULES}")
        tau = prior.config.tau if tau is None else tau
        if not isinstance(tau, int) or isinstance(tau, bool) or tau < 1:
            raise ValueError(f"guidance tau must be a positive integer number of latent frames, got {tau!r}")
        check_finite = {True: "step", False: "off"}.get(check_finite, check_finite)
        if check_finite not in FINITE_CHECKS:
            raise ValueError(f"check_finite must be a bool or one of {FINITE_CHECKS}, got {check_finite!r}")
        if activation_budget_gib is not None and not activation_budget_gib > 0:
            raise ValueError(f"activation_budget_gib must be > 0 or None, got {activation_budget_gib!r}")
        lags = [tau] + [p.config.tau for p in more_priors]
        if len(set(lags)) != len(lags):
            raise ValueError(f"several priors guide at several lags, one prior per lag; got lags {lags}")
        for p in more_priors:
            if p.config.latent_channels != prior.config.latent_channels:
                raise ValueError(f"every prior must read the same latents: {p.config.latent_channels} channels "
                                 f"against {prior.config.latent_channels}")
        self.prior = prior.eval().requires_grad_(False)
        self.more_priors = tuple(p.eval().requires_grad_(False) for p in more_priors)
        self.scale = float(scale)
        self.window = float(window)
        self.tau = tau
        self.mode = mode
        self.reduction = reduction
        self.window_rounding = window_rounding
        self.stop_gradient = stop_gradient
        self.schedule = schedule
        self.check_finite = check_finite
        self.activation_budget_gib = activation_budget_gib

    @property
    def lagged(self) -> tuple[tuple[MotionPrior, int], ...]:
        """``(prior, lag)`` of every prior that guides: the first at :attr:`tau`, the others at their own."""
        return ((self.prior, self.tau), *((p, p.config.tau) for p in self.more_priors))

    def first_step(self, num_steps: int) -> int:
        """Index of the first guided step: ``⌈(1 − ρ)·S⌉`` (``⌊(1 − ρ)·S⌋`` with ``window_rounding="floor"``),
        robust to float round-off; with ``"release"`` the authors' ``int((1.0 − ρ)·S)``, round-off and all."""
        if self.window_rounding == "release":
            return max(0, int((1.0 - self.window) * num_steps))  # as the release computes it, not rounded first
        rounding = math.floor if self.window_rounding == "floor" else math.ceil
        return max(0, rounding(round((1.0 - self.window) * num_steps, 6)))

    def objective(self, per_sample: torch.Tensor) -> torch.Tensor:
        """``L_guide`` from the per-sample ``L_b``: their sum (``"sum"``) or mean (``"element_mean"``)."""
        return per_sample.mean() if self.reduction == "element_mean" else per_sample.sum()

    def step_scale(
        self,
        prediction_type: str,
        like: torch.Tensor,
        *,
        alpha_bar: NoiseLevel | None = None,
        sigma: NoiseLevel | None = None,
    ) -> float | torch.Tensor:
        """This step's ``λ_t``: the float λ (``"constant"``), or ``λ·√(1 − ᾱ_t)`` / ``λ·σ_t`` (``"noise"``)
        as a tensor broadcastable against ``like`` (``()`` or ``(B, 1, …, 1)``, ``like``'s dtype)."""
        if self.schedule == "constant":
            return self.scale
        flow = check_prediction_type(prediction_type) == "flow"
        level = sigma if flow else alpha_bar
        if level is None:
            raise ValueError(f"schedule='noise' needs the step's noise level `{'sigma' if flow else 'alpha_bar'}`")
        level = broadcast_level(level, like)  # () or (B, 1, …, 1)
        return self.scale * (level if flow else (1 - level).clamp_min(0).sqrt())

    def is_active(self, step_index: int, num_steps: int) -> bool:
        """Whether step ``step_index`` (0-based) of ``num_steps`` is guided."""
        return self.scale > 0 and self.window > 0 and step_index >= self.first_step(num_steps)

    def pairs_per_call(self, batch: int, num_pairs: int, height: int, width: int,
                       prior: MotionPrior | None = None) -> int:
        """How many τ-pairs (of each of ``batch`` samples) go through ``prior`` (default: the first) in one call."""
        prior = self.prior if prior is None else prior
        if self.activation_budget_gib is None or prior.config.second_order:
            return num_pairs  # a second-order prior reads the pair before: all pairs in one call
        per_pair = batch * prior.activation_bytes_per_frame(height, width)
        return max(1, min(num_pairs, int(self.activation_budget_gib * 2**30 // max(per_pair, 1))))

    def loss_and_grad(
        self,
        model_output: torch.Tensor,
        sample: torch.Tensor,
        prediction_type: str,
        *,
        alpha_bar: NoiseLevel | None = None,
        sigma: NoiseLevel | None = None,
        cond: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L_b (B,), ∇ L_guide)`` — the gradient w.r.t. the output (``mode="output"``) or the sample.

        Both inputs are ``(B, F, C, H, W)``; the computation runs in ≥ fp32 and the gradient has
        that dtype. The pairs are split into calls that fit ``activation_budget_gib``.
        """
        edit_latent = self.mode == "latent"
        dtype = torch.promote_types(model_output.dtype, torch.float32)  # the update is taken in ≥ fp32
        with torch.enable_grad():
            o = model_output.detach().to(dtype).requires_grad_(not edit_latent)
            x = sample.detach().to(dtype).requires_grad_(edit_latent)
            target = x if edit_latent else o
            x0 = predict_x0(o, x, prediction_type, alpha_bar=alpha_bar, sigma=sigma)  # (B, F, C, H, W)
            B, F, _, H, W = x0.shape
            calls = [(prior, tau, F - tau, self.pairs_per_call(B, F - tau, H, W, prior)) for prior, tau in self.lagged]
            if all(chunk >= P for _, _, P, chunk in calls):  # every prior's pairs in one batched call
                per_sample = self._per_sample(x0, cond)
                (grad,) = torch.autograd.grad(self.objective(per_sample), target)
                return per_sample.detach(), grad
            leaf = x0.detach().requires_grad_()
            per_sample = torch.zeros(B, dtype=x0.dtype, device=x0.device)
            grad_x0 = None
            for prior, tau, P, chunk in calls:
                for start in range(0, P, chunk):
                    stop = min(P, start + chunk)
                    # pairs start … stop−1 use frames start … stop−1+τ; weight so the chunks sum to the mean
                    part = guidance_loss(prior, leaf[:, start:stop + tau], cond, tau,
                                         self.reduction, self.stop_gradient) * ((stop - start) / P)
                    (g,) = torch.autograd.grad(self.objective(part), leaf)  # frees this call's graph
                    grad_x0 = g if grad_x0 is None else grad_x0 + g
                    per_sample = per_sample + part.detach()
            (grad,) = torch.autograd.grad(x0, target, grad_outputs=grad_x0)
            return per_sample, grad

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
        return self._per_sample(x0, cond)

    def _per_sample(self, x0: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """``L_b`` (``(B,)``) of ``x̂0``: the prior's at its lag, plus each of :attr:`more_priors` at its own."""
        return sum(guidance_loss(prior, x0, cond, tau, self.reduction, self.stop_gradient)
                   for prior, tau in self.lagged)

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
        check_latents(model_output, max(tau for _, tau in self.lagged), "model output",
                      channels=self.prior.config.latent_channels)
        if sample.shape != model_output.shape:
            raise ValueError(
                f"sample shape {tuple(sample.shape)} does not match model output shape {tuple(model_output.shape)}"
            )
        if not self.is_active(step_index, num_steps):
            return GuidanceOutput(model_output, sample, None, False)

        per_sample, grad = self.loss_and_grad(model_output, sample, prediction_type, alpha_bar=alpha_bar,
                                              sigma=sigma, cond=cond)
        finite = None
        if self.check_finite == "step":
            check_finite(torch.stack([per_sample.sum(), grad.abs().sum()]), "motion prior guidance (loss and gradient)")
        elif self.check_finite == "deferred":
            finite = torch.isfinite(per_sample).all() & torch.isfinite(grad).all()  # stays on the device
        scale = self.step_scale(prediction_type, grad, alpha_bar=alpha_bar, sigma=sigma)  # λ_t
        if self.mode == "latent":
            new_sample = (sample.to(grad.dtype) - scale * grad).to(sample.dtype)
            return GuidanceOutput(model_output, new_sample, per_sample, True, finite)
        new_output = (model_output.to(grad.dtype) - scale * grad).to(model_output.dtype)
        return GuidanceOutput(new_output, sample, per_sample, True, finite)
