"""The authors' release's sampler for CogVideoX (docs/design.md §8), on a LaMo pipeline.

The release samples with ``CogVideoXDPMScheduler`` built from the model's scheduler config with
``timestep_spacing="trailing"``, and calls the pipeline with ``use_dynamic_cfg=True`` (in
:data:`~lamo.pipelines.RELEASE_SAMPLING_KWARGS`). Its guided denoising loop is its own, and it hands the
scheduler ``old_pred_original_sample=None`` at every step, so the DPM solver always takes its first-order
branch (one noise draw per step); diffusers' stock loop passes the previous step's ``x̂0`` and takes the
second-order branch from step 1 on. :class:`FirstOrderCogVideoXDPMScheduler` is the scheduler with that
branch fixed, so diffusers' loop — which LaMo keeps — steps exactly as the release's loop does.
The release's unguided baseline (model ``cogvideox``) uses diffusers' stock loop: pass
``first_order=False`` to :func:`use_release_sampling` for it.

The release generates with CogVideoX only (its Wan module holds the predictor, nothing samples with Wan),
so these settings are refused for a Wan pipeline.
"""
from __future__ import annotations

from typing import Any

from diffusers import CogVideoXDPMScheduler

__all__ = ["RELEASE_SCHEDULER_CONFIG", "FirstOrderCogVideoXDPMScheduler", "release_scheduler", "use_release_sampling"]

RELEASE_SCHEDULER_CONFIG: dict[str, Any] = dict(timestep_spacing="trailing")


class FirstOrderCogVideoXDPMScheduler(CogVideoXDPMScheduler):
    """``CogVideoXDPMScheduler`` whose ``step`` ignores ``old_pred_original_sample`` (always the first-order
    branch), as the release's guided loop calls it. Same config, same signature."""

    # the full signature: pipelines inspect it to decide whether to pass `eta` and `generator`
    def step(self, model_output, old_pred_original_sample, timestep, timestep_back, sample, eta=0.0,  # noqa: D102
             use_clipped_model_output=False, generator=None, variance_noise=None, return_dict=False):
        return super().step(model_output, None, timestep, timestep_back, sample, eta=eta,
                            use_clipped_model_output=use_clipped_model_output, generator=generator,
                            variance_noise=variance_noise, return_dict=return_dict)


def release_scheduler(config: Any, first_order: bool = True) -> CogVideoXDPMScheduler:
    """The release's scheduler from a pipeline's scheduler ``config``: DPM, ``timestep_spacing="trailing"``;
    first-order steps (the guided loop) unless ``first_order=False`` (the release's unguided baseline)."""
    cls = FirstOrderCogVideoXDPMScheduler if first_order else CogVideoXDPMScheduler
    return cls.from_config(config, **RELEASE_SCHEDULER_CONFIG)


def use_release_sampling(pipe: Any, first_order: bool = True) -> Any:
    """Give a CogVideoX pipeline the release's scheduler (:func:`release_scheduler`); returns ``pipe``.

    Call it as ``pipe(prompt, **RELEASE_SAMPLING_KWARGS)`` afterwards (50 steps, CFG 6 with dynamic CFG,
    49 frames, the release's guidance). A Wan pipeline is refused: the release never samples with Wan.
    """
    from ..errors import InputError

    if not any(c.__name__.startswith("CogVideoX") for c in type(pipe).__mro__):
        raise InputError(f"the release's sampler is CogVideoX's DPM scheduler with dynamic CFG; {type(pipe).__name__} "
                         "is not a CogVideoX pipeline and the release never samples with Wan, so there is no release "
                         "setting for it: keep its own scheduler")
    pipe.scheduler = release_scheduler(pipe.scheduler.config, first_order=first_order)
    return pipe
