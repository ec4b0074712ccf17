"""FlowMo, the training-free peer: variance guidance *through the backbone*, in two variants.

FlowMo (Shaulov et al., 2025, "FlowMo: Variance-Based Flow Guidance for Coherent Motion in Video
Generation") lowers a temporal-variance loss of the model's prediction during the first, noisiest
denoising steps, by a gradient step on the noisy latent ``x_t`` — which needs a backward pass
through the whole transformer. :class:`FlowMoGuidance` has two variants:

``variant="release"`` — FlowMo as its authors released it (arielshaulov/FlowMo, Wan 2.1 only). The
facts below are the specification; the code is ours, written from them, not copied:

* **loss**, per video, on the CFG-mixed model output ``v = u + g·(c − u)`` (not on ``x̂0``) laid out
  ``(F, H, W, C)``: the absolute differences of consecutive latent frames ``d_f = |v_f − v_{f−1}|``
  (``F − 1`` of them), their population variance over that frame axis, averaged over channels, then
  the **maximum** over all latent spatial positions —
  ``L = max_{h,w} mean_c Var_f |v_f − v_{f−1}|[h, w, c]`` (:func:`flowmo_release_loss`). No top-k, no
  normalisation. For a batch the per-video losses are summed, so each video's gradient (and, Adam
  being element-wise, each video's update) is independent of the others;
* **update**: ``x_t`` is made a leaf; both CFG branches are re-run on it with gradients (each
  transformer call one gradient-checkpoint segment; bf16 autocast on CUDA, the model's own dtype on
  other devices); a *fresh* ``torch.optim.Adam([x_t], lr=scale)`` takes **one** step. A first Adam
  step moves each element by ``lr·g/(|g| + ε)`` (ε = 1e-8), i.e. ≈ ``lr·sign(g)``. The leaf is held
  in at least fp32 and handed to the scheduler so (a step of 1e-3 would round away in bf16 latents);
* **which steps**: the first ``k`` of the ``S`` denoising steps, ``k = max(1, round(12·S/50))`` by
  default (12 of 50: for Wan 2.1 T2V at shift 5 the release lists timesteps 999…946, steps 0–11);
* **no recompute**: the scheduler then steps from the *updated* latent with the velocity computed
  *before* the update (for flow matching ``x̂0 = x_t′ − σ·v(x_t)``). A guided step therefore costs one
  extra forward of both branches plus their backward (the checkpoint re-runs that forward once more
  inside the backward) — counted, the same FLOPs as a style step at half its activations
  (``benchmarks/bench_guidance_step.py``);
* the release samples Wan 2.1 1.3B with 50 steps, CFG 5, shift 5, 81 frames, 832×480.

  On **CogVideoX** the release has no code; this module applies the same rule to CogVideoX's
  CFG-mixed *v-prediction* (its model output, ``(B, F, C, H, W)``), with the same optimiser and steps;
  the pipeline's batched ``[uncond, cond]`` call is re-run as two calls, one per branch, as on Wan.
  Both CogVideoX schedulers use zero-terminal-SNR schedules, so ``ᾱ = 0`` at the first step: there
  ``CogVideoXDPMScheduler`` weights ``x_t`` by ``√((1−ᾱ')/(1−ᾱ))·e^{−h} = 0`` and the first update is
  discarded, while ``CogVideoXDDIMScheduler`` keeps it (``x_{t−1} = √(1−ᾱ')·x_t′ − √ᾱ'·v``).

``variant="style"`` (the default, a named ablation kept for comparison; LaMo's earlier reading of the
paper's description):

* loss per sample on ``x̂0`` (``(B, F, C, H, W)``): the mean, over the ``top_fraction`` spatial
  locations with the largest values, of ``v(h, w) = mean_c Var_f x̂0[f, c, h, w]``,
  ``L_b = mean(top-k of v)``, ``L = Σ_b L_b`` (:func:`flowmo_variance_loss`);
* at each of the first ``steps`` denoising steps: ``x_t ← x_t − η·∇_{x_t} L`` (plain gradient
  descent through the transformer and the CFG mix, no checkpointing), then the model output is
  recomputed at the new ``x_t``; so a guided step costs one extra forward + backward + forward.

Supported: CogVideoX pipelines (one transformer call per step, the CFG batch concatenated
``[uncond, cond]``) and Wan pipelines (one call per CFG branch: conditional, then unconditional, mixed
with ``guidance_scale``).
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers
from contextlib import ExitStack, nullcontext
from typing import Any, Callable

import torch
from torch.utils.checkpoint import checkpoint

from ..adapters import get_adapter
from ..pipelines.guided import _patched

__all__ = ["FLOWMO_VARIANTS", "FlowMoGuidance", "flowmo_release_loss", "flowmo_variance_loss", "release_steps"]

FLOWMO_VARIANTS = ("style", "release")
RELEASE_LR = 1e-3  # the release's Adam learning rate
RELEASE_STEPS, RELEASE_OF = 12, 50  # the release guides the first 12 of 50 steps


def flowmo_variance_loss(x0: torch.Tensor, top_fraction: float = 0.1) -> torch.Tensor:
    """Style variant: per-sample ``mean(top-k_{h,w} mean_c Var_f x̂0)`` of ``(B, F, C, H, W)`` latents → ``(B,)``."""
    v = x0.float().var(dim=1, unbiased=False).mean(dim=1)  # (B, F, C, H, W) -> (B, H, W)
    flat = v.flatten(1)  # (B, H·W)
    k = max(1, int(round(top_fraction * flat.shape[1])))
    return flat.topk(k, dim=1).values.mean(1)  # (B,)


def flowmo_release_loss(v: torch.Tensor) -> torch.Tensor:
    """Release variant: per-video ``max_{h,w} mean_c Var_f |v_f − v_{f−1}|`` → ``(B,)``, in fp32.

    Args:
        v: ``(B, F, C, H, W)`` CFG-mixed model output (flow velocity for Wan, v-prediction for
            CogVideoX), ``F ≥ 3`` latent frames (two differences are the fewest with a variance).

    The variance is the population variance (divisor ``F − 1``, the number of differences). Sum the
    result over the batch for the loss the release differentiates.
    """
    if v.ndim != 5:
        raise ValueError(f"flowmo_release_loss expects (B, F, C, H, W) model outputs, got shape {tuple(v.shape)}")
    if v.shape[1] < 3:
        raise ValueError(f"flowmo_release_loss needs at least 3 latent frames (2 consecutive differences), "
                         f"got F = {v.shape[1]}")
    d = (v[:, 1:] - v[:, :-1]).float().abs()  # (B, F − 1, C, H, W)
    per_location = d.var(dim=1, unbiased=False).mean(dim=1)  # (B, F − 1, C, H, W) -> (B, H, W)
    return per_location.flatten(1).amax(dim=1)  # (B, H·W) -> (B,)


def release_steps(num_steps: int) -> int:
    """How many first steps the release guides at ``num_steps`` steps: ``max(1, round(12·S/50))``."""
    return max(1, round(RELEASE_STEPS * num_steps / RELEASE_OF))


class FlowMoGuidance:
    """Context manager: FlowMo guidance for every call of a CogVideoX or Wan pipeline inside it.

    ``with FlowMoGuidance(pipe, variant="release"): pipe(...)`` — the pipeline and its call are stock;
    ``transformer.forward`` (to record each step's call arguments) and ``scheduler.step`` are wrapped
    for the duration of the block and restored after it.

    Args:
        pipe: a ``CogVideoXPipeline`` or ``WanPipeline`` (or LaMo's subclasses).
        scale: ≥ 0; 0 changes nothing, bit for bit.
            ``"release"``: Adam's learning rate (default 1e-3, the release's); each guided step moves
            every element of ``x_t`` by about ``scale``.
            ``"style"``: η, the plain gradient step size on ``x_t`` (default 1.0).
        steps: ≥ 0, how many of the first denoising steps are guided.
            ``"release"``: default ``None`` → ``max(1, round(12·S/50))`` of each call's ``S`` steps.
            ``"style"``: default 8.
        top_fraction: ``"style"`` only, in (0, 1]: the fraction of spatial locations whose variance is
            averaged (default 0.1). The release takes the maximum; passing it there is an error.
        variant: ``"style"`` (default; LaMo's FlowMo-style ablation) or ``"release"`` (the authors'
            released algorithm; see the module docstring).

    Attributes:
        history: the loss (summed over the batch) before each guided update, one float per guided step.
        history_after: ``"style"`` only: the loss at the updated ``x_t`` (its recomputed model output).
            The release does not recompute, so it stays empty there.
        guided_steps: the 0-based index of each guided step (counted from 0 in each pipeline call).
    """

    def __init__(self, pipe: Any, scale: float | None = None, steps: int | None = None,
                 top_fraction: float | None = None, *, variant: str = "style"):
        if variant not in FLOWMO_VARIANTS:
            raise ValueError(f"unknown FlowMo variant {variant!r}; expected one of {FLOWMO_VARIANTS}")
        release = variant == "release"
        if scale is None:
            scale = RELEASE_LR if release else 1.0
        if steps is None and not release:
            steps = 8
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 0):
            raise ValueError(f"FlowMo guidance needs a finite scale ≥ 0, got {scale!r}")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0):
            raise ValueError(f"FlowMo guidance needs steps to be an integer ≥ 0 (or None), got {steps!r}")
        if release and top_fraction is not None:
            raise ValueError("top_fraction belongs to variant='style'; the release takes the maximum over "
                             "spatial positions")
        if top_fraction is None:
            top_fraction = 0.1
        if not 0 < top_fraction <= 1:
            raise ValueError(f"FlowMo guidance needs top_fraction in (0, 1], got {top_fraction!r}")
        self.pipe, self.variant = pipe, variant
        self.scale, self.top_fraction = float(scale), float(top_fraction)
        self.steps = None if steps is None else int(steps)
        self.adapter = get_adapter(pipe)
        self.history: list[float] = []
        self.history_after: list[float] = []
        self.guided_steps: list[int] = []
        self._stack = ExitStack()

    def guided_step_count(self, num_steps: int) -> int:
        """How many first steps of an ``S = num_steps`` call are guided (0 when off)."""
        if self.scale == 0:
            return 0
        k = release_steps(num_steps) if self.steps is None else self.steps
        return min(k, num_steps)

    # ---------------------------------------------------------------- the model output at a given x_t
    def _mixed_output(self, forward: Callable, x: torch.Tensor, calls: list[dict[str, Any]],
                      segments: bool = False) -> torch.Tensor:
        """The pipeline's CFG-mixed model output at ``x`` (the scheduler's layout), in fp32.

        ``calls`` are the keyword arguments of this step's transformer calls; only ``hidden_states``
        is replaced (cast to the dtype the pipeline fed). ``segments``: each CFG branch is one
        transformer call and one gradient-checkpoint segment, under bf16 autocast on CUDA (the
        release's setting). CogVideoX's batched ``[uncond, cond]`` call is then split into its two
        branches — every batch-``2B`` tensor argument cut in halves — so that, as on Wan, the backward
        holds one branch's activations at a time.
        """
        pipe, outs = self.pipe, []
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if segments and x.device.type == "cuda"
                    else nullcontext())

        def run(hidden: torch.Tensor, kw: dict[str, Any]) -> torch.Tensor:
            out = forward(**{**kw, "hidden_states": hidden})
            return out[0] if isinstance(out, tuple) else out.sample

        for kw in calls:
            h = kw["hidden_states"]
            cat = h.shape[0] == 2 * x.shape[0]  # CogVideoX concatenates [uncond, cond]
            if not segments:
                outs.append(run((torch.cat([x, x]) if cat else x).to(h.dtype), kw).float())
                continue
            n = x.shape[0]
            branches = [{k: v[i * n:(i + 1) * n] if isinstance(v, torch.Tensor) and v.ndim and v.shape[0] == 2 * n
                         else v for k, v in kw.items()} for i in range(2)] if cat else [kw]
            with autocast:
                parts = [checkpoint(run, x.to(h.dtype), b, use_reentrant=False).float() for b in branches]
            outs.append(torch.cat(parts))  # (2B, …) for CogVideoX, as its batched call returns
        if len(outs) == 2:  # Wan: conditional call, then unconditional
            cond, uncond = outs
            return uncond + pipe.guidance_scale * (cond - uncond)
        out = outs[0]
        if out.shape[0] == 2 * x.shape[0]:
            uncond, cond = out.chunk(2)
            out = uncond + pipe.guidance_scale * (cond - uncond)
        return out

    # ---------------------------------------------------------------- one guided step per variant
    def _release_update(self, forward: Callable, sample: torch.Tensor, calls: list[dict[str, Any]]) -> torch.Tensor:
        """One Adam step on the leaf ``x_t`` against :func:`flowmo_release_loss` of the re-run CFG mix."""
        # the leaf in ≥ fp32, so that a step of lr ≈ 1e-3 survives (bf16 would round it away near |x| = 1)
        x = sample.detach().to(torch.promote_types(sample.dtype, torch.float32)).clone().requires_grad_(True)
        with torch.enable_grad():
            v = self._mixed_output(forward, x, calls, segments=True)  # the scheduler's layout
            per_video = flowmo_release_loss(self.adapter.to_bfchw(v))  # (B, F, C, H, W) -> (B,)
            # autograd.grad, not backward(): the transformer's weights get no .grad
            (x.grad,) = torch.autograd.grad(per_video.sum(), x)
        optimiser = torch.optim.Adam([x], lr=self.scale)  # fresh at every guided step
        optimiser.step()
        self.history.append(float(per_video.sum()))
        return x.detach()

    def _style_update(self, forward: Callable, arguments: dict[str, Any], calls: list[dict[str, Any]],
                      level: Any) -> None:
        """``x_t ← x_t − η·∇ L(x̂0)``, then the model output recomputed at the new ``x_t`` (in place)."""
        sample = arguments["sample"]
        with torch.enable_grad():
            x = sample.detach().float().requires_grad_(True)
            x0 = self.adapter.x0(self._mixed_output(forward, x, calls), x, level)
            per_sample = flowmo_variance_loss(self.adapter.to_bfchw(x0), self.top_fraction)
            (grad,) = torch.autograd.grad(per_sample.sum(), x)
        self.history.append(float(per_sample.sum()))
        new_sample = (x - self.scale * grad).detach().to(sample.dtype)
        with torch.no_grad():
            arguments["model_output"] = self._mixed_output(forward, new_sample, calls).to(
                arguments["model_output"].dtype)
            x0_new = self.adapter.x0(arguments["model_output"].float(), new_sample.float(), level)
            self.history_after.append(float(flowmo_variance_loss(self.adapter.to_bfchw(x0_new),
                                                                 self.top_fraction).sum()))
        arguments["sample"] = new_sample

    # ---------------------------------------------------------------- install / restore
    def __enter__(self) -> "FlowMoGuidance":
        if self.scale == 0 or self.steps == 0:
            return self  # off: nothing is wrapped
        pipe, transformer = self.pipe, self.pipe.transformer
        scheduler = pipe.scheduler
        step, set_timesteps = scheduler.step, scheduler.set_timesteps
        signature = inspect.signature(step)
        forward = transformer.forward
        state: dict[str, Any] = {"calls": [], "steps": 0}  # transformer calls since the last scheduler step

        @functools.wraps(forward)
        def recording_forward(*args: Any, **kwargs: Any) -> Any:
            state["calls"].append(kwargs)  # both pipelines call the transformer with keyword arguments only
            return forward(*args, **kwargs)

        @functools.wraps(set_timesteps)
        def counting_set_timesteps(*args: Any, **kwargs: Any) -> Any:
            state["steps"], state["calls"] = 0, []  # a new pipeline call: its first steps are guided again
            return set_timesteps(*args, **kwargs)

        @functools.wraps(step)
        def guided_step(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            index, calls = state["steps"], state["calls"]
            state["steps"], state["calls"] = index + 1, []
            if index < self.guided_step_count(len(scheduler.timesteps)) and calls:
                if len(calls) > 2:
                    raise RuntimeError(f"FlowMoGuidance: {len(calls)} transformer calls in one step; it knows "
                                       "one call (CogVideoX, CFG batched) or two (Wan: conditional, unconditional)")
                a = bound.arguments
                self.guided_steps.append(index)
                if self.variant == "release":
                    # the stale velocity v(x_t) stays in model_output: no recompute at the updated x_t
                    a["sample"] = self._release_update(forward, a["sample"], calls)
                else:
                    level = self.adapter.noise_level(scheduler, a["timestep"], sample=a["sample"])
                    self._style_update(forward, a, calls, level)
            return step(*bound.args, **bound.kwargs)

        self._stack.enter_context(_patched(transformer, "forward", recording_forward))
        self._stack.enter_context(_patched(scheduler, "set_timesteps", counting_set_timesteps))
        self._stack.enter_context(_patched(scheduler, "step", guided_step))
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._stack.__exit__(*exc)
