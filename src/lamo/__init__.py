"""LaMo: self-supervised latent motion priors for physical realism in video diffusion.

The backbone-agnostic core (docs/design.md §1):

* :func:`lag_delta`, :func:`macro_drift` — motion algebra on ``(B, F, C, H, W)`` latents;
* :func:`motion_drift_loss` — the Motion Drift Loss for fine-tuning, with :func:`signal_weight`;
* :class:`MotionPrior` — the micro motion field ``f_φ(z_i, c) ≈ Δ_τ z_i``;
* :class:`MotionPriorGuidance` — Motion Prior Guidance for sampling.

The names below load on first use (PEP 562), so ``import lamo`` — and with it the ``lamo`` command's
``--help`` — does not import torch until one of them is needed.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: public name → the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("lag_delta", "macro_drift"), ".motion"),
    **dict.fromkeys(("motion_drift_loss", "drift_loss_terms", "DriftLossOutput", "DRIFT_MODES", "LAMBDA_DRIFT"),
                    ".losses"),
    **dict.fromkeys(("predict_x0", "signal_weight", "PREDICTION_TYPES"), ".parametrization"),
    **dict.fromkeys(("MotionPrior", "PRIOR_PRESETS", "PriorLossOutput", "pool_prompt_embeds", "SAMPLING_SETTINGS_FILE",
                     "SAMPLING_KEYS", "write_sampling_settings", "read_sampling_settings"), ".prior"),
    **dict.fromkeys(("MotionPriorGuidance", "GuidanceOutput", "guidance_loss", "GUIDANCE_MODES"), ".guidance"),
}

__all__ = [
    "lag_delta", "macro_drift",
    "motion_drift_loss", "drift_loss_terms", "DriftLossOutput", "DRIFT_MODES", "LAMBDA_DRIFT",
    "predict_x0", "signal_weight", "PREDICTION_TYPES",
    "MotionPrior", "PRIOR_PRESETS", "PriorLossOutput", "pool_prompt_embeds",
    "SAMPLING_SETTINGS_FILE", "SAMPLING_KEYS", "write_sampling_settings", "read_sampling_settings",
    "MotionPriorGuidance", "GuidanceOutput", "guidance_loss", "GUIDANCE_MODES",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what static tools and IDEs read
    from .guidance import GUIDANCE_MODES, GuidanceOutput, MotionPriorGuidance, guidance_loss
    from .losses import DRIFT_MODES, LAMBDA_DRIFT, DriftLossOutput, drift_loss_terms, motion_drift_loss
    from .motion import lag_delta, macro_drift
    from .parametrization import PREDICTION_TYPES, predict_x0, signal_weight
    from .prior import (PRIOR_PRESETS, SAMPLING_KEYS, SAMPLING_SETTINGS_FILE, MotionPrior, PriorLossOutput,
                        pool_prompt_embeds, read_sampling_settings, write_sampling_settings)
