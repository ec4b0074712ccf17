"""A FlowMo-style training-free peer: variance guidance *through the backbone*.

FlowMo (Shaulov et al., 2025, "FlowMo: Variance-Based Flow Guidance for Coherent Motion in Video
Generation") lowers the temporal variance of the model's clean-video estimate during the first,
noisiest denoising steps, by gradient descent on the noisy latent — which needs a backward pass
through the whole transformer. This module implements that idea for LaMo's comparisons; it is a
re-implementation from the paper's description, not the authors' code, and its details are ours:

* loss per sample: the mean, over the ``top_fraction`` spatial locations with the largest values, of
  the temporal variance of ``x̂0`` averaged over channels —
  ``v(h, w) = mean_c Var_f x̂0[f, c, h, w]``, ``L_b = mean(top-k of v)``, ``L = Σ_b L_b``;
* at each of the first ``steps`` denoising steps: ``x_t ← x_t − η·∇_{x_t} L`` (the gradient goes
  through the transformer and the CFG mix), then the model output is recomputed at the new ``x_t``;
  so a guided step costs one extra forward + backward + forward of the backbone.

Supported: CogVideoX pipelines (one transformer call per step, the CFG batch concatenated) and Wan
pipelines (one call per CFG branch: conditional, then unconditional, mixed with ``guidance_scale``).
"""
from __future__ import annotations

import functools
import inspect
from contextlib import ExitStack
from typing import Any

import torch

from ..adapters import get_adapter
from ..pipelines.guided import _patched

__all__ = ["FlowMoGuidance", "flowmo_variance_loss"]


def flowmo_variance_loss(x0: torch.Tensor, top_fraction: float = 0.1) -> torch.Tensor:
    """Per-sample ``mean(top-k_{h,w} mean_c Var_f x̂0)`` of ``(B, F, C, H, W)`` latents → ``(B,)``."""
    v = x0.float().var(dim=1, unbiased=False).mean(dim=1)  # (B, F, C, H, W) -> (B, H, W)
    flat = v.flatten(1)  # (B, H·W)
    k = max(1, int(round(top_fraction * flat.shape[1])))
    return flat.topk(k, dim=1).values.mean(1)  # (B,)


class FlowMoGuidance:
    """Context manager: FlowMo-style guidance for every call of a CogVideoX or Wan pipeline inside it.

    Args:
        pipe: a ``CogVideoXPipeline`` or ``WanPipeline`` (or LaMo's subclasses).
        scale: η ≥ 0, the step size on ``x_t`` (0: nothing is changed, bit for bit).
        steps: how many of the first denoising steps are guided.
        top_fraction: fraction of spatial locations whose variance is averaged.
    """

    def __init__(self, pipe: Any, scale: float = 1.0, steps: int = 8, top_fraction: float = 0.1):
        if scale < 0 or steps < 0 or not 0 < top_fraction <= 1:
            raise ValueError("FlowMo guidance needs scale ≥ 0, steps ≥ 0 and top_fraction in (0, 1]")
        self.pipe, self.scale, self.steps, self.top_fraction = pipe, float(scale), int(steps), float(top_fraction)
        self.adapter = get_adapter(pipe)
        self.history: list[float] = []  # L before each guided update
        self.history_after: list[float] = []  # L at the updated x_t (model output recomputed)
        self._stack = ExitStack()

    def __enter__(self) -> "FlowMoGuidance":
        if self.scale == 0 or self.steps == 0:
            return self
        pipe, transformer = self.pipe, self.pipe.transformer
        scheduler = pipe.scheduler
        step = scheduler.step
        signature = inspect.signature(step)
        forward = transformer.forward
        state: dict[str, Any] = {"calls": [], "steps": 0}  # transformer calls since the last scheduler step

        @functools.wraps(forward)
        def recording_forward(*args: Any, **kwargs: Any) -> Any:
            state["calls"].append(kwargs)  # both pipelines call the transformer with keyword arguments only
            return forward(*args, **kwargs)

        def mixed_output(x: torch.Tensor, calls: list[dict[str, Any]]) -> torch.Tensor:
            """The pipeline's CFG-mixed model output at ``x`` (the scheduler's layout), recomputed."""
            outs = []
            for kw in calls:
                kw = dict(kw)
                h = kw["hidden_states"]
                cat = h.shape[0] == 2 * x.shape[0]  # CogVideoX concatenates [uncond, cond]
                kw["hidden_states"] = (torch.cat([x, x]) if cat else x).to(h.dtype)
                out = forward(**kw)
                outs.append((out[0] if isinstance(out, tuple) else out.sample).float())
            if len(outs) == 2:  # Wan: conditional call, then unconditional
                cond, uncond = outs
                return uncond + pipe.guidance_scale * (cond - uncond)
            out = outs[0]
            if out.shape[0] == 2 * x.shape[0]:
                uncond, cond = out.chunk(2)
                out = uncond + pipe.guidance_scale * (cond - uncond)
            return out

        @functools.wraps(step)
        def guided_step(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            index, calls = state["steps"], state["calls"]
            state["steps"], state["calls"] = index + 1, []
            if index < self.steps and calls:
                if len(calls) > 2:
                    raise RuntimeError(f"FlowMoGuidance: {len(calls)} transformer calls in one step; it knows "
                                       "one call (CogVideoX, CFG batched) or two (Wan: conditional, unconditional)")
                a = bound.arguments
                t, sample = a["timestep"], a["sample"]
                level = self.adapter.noise_level(scheduler, t, sample=sample)
                with torch.enable_grad():
                    x = sample.detach().float().requires_grad_(True)
                    x0 = self.adapter.x0(mixed_output(x, calls), x, level)
                    per_sample = flowmo_variance_loss(self.adapter.to_bfchw(x0), self.top_fraction)
                    (grad,) = torch.autograd.grad(per_sample.sum(), x)
                self.history.append(float(per_sample.sum()))
                new_sample = (x - self.scale * grad).detach().to(sample.dtype)
                with torch.no_grad():
                    a["model_output"] = mixed_output(new_sample, calls).to(a["model_output"].dtype)
                    x0_new = self.adapter.x0(a["model_output"].float(), new_sample.float(), level)
                    self.history_after.append(float(flowmo_variance_loss(self.adapter.to_bfchw(x0_new),
                                                                         self.top_fraction).sum()))
                a["sample"] = new_sample
            return step(*bound.args, **bound.kwargs)

        self._stack.enter_context(_patched(transformer, "forward", recording_forward))
        self._stack.enter_context(_patched(scheduler, "step", guided_step))
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._stack.__exit__(*exc)
