"""The embedded demo: a small latent space and backbone for the physics world (docs/design.md §3).

The autoencoders load on first use (PEP 562), so that ``lamo.demo.config`` — and with it ``lamo demo --help`` —
does not import torch.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ConvAutoencoder", "PatchAutoencoder"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(".autoencoder", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
