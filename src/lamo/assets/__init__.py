"""The models shipped inside the package, as paths: a toy CogVideoX backbone and a motion prior trained for it.

* :func:`demo_backbone` — the demo's CogVideoX (2.4 M parameters, 16 frames of 32×32 px, with its tokenizer
  and text encoder), a diffusers pipeline folder for ``LaMoCogVideoXPipeline.from_pretrained``;
* :func:`demo_prior` — a motion prior trained on its latents (``MotionPrior.from_pretrained``), whose
  ``sampling.json`` records the λ, ρ, steps and CFG scale it was validated at.

They make the quick start run in seconds on a CPU; they are toys, not a video model for real prompts.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["ASSETS", "demo_backbone", "demo_prior"]

#: the folder holding the shipped models
ASSETS = Path(__file__).resolve().parent


def demo_backbone() -> Path:
    """The shipped toy CogVideoX pipeline folder (``src/lamo/assets/demo-backbone``)."""
    return ASSETS / "demo-backbone"


def demo_prior() -> Path:
    """The shipped motion prior folder for :func:`demo_backbone` (``src/lamo/assets/demo-prior``)."""
    return ASSETS / "demo-prior"
