"""Backbone adapters: one per family, one contract (:class:`~lamo.adapters.base.BackboneAdapter`).

``get_adapter("cogvideox")``, ``get_adapter(pipe)`` or ``get_adapter(transformer)`` returns the
family's adapter; trainers and the latent cache use only its methods.
"""
from .base import BackboneAdapter, FlowMatchAdapter, NoiseLevel, TrainingForward, frames_to_vae_input
from .cogvideox import CogVideoXAdapter, rotary_embeddings
from .hunyuan_video import HunyuanVideoAdapter
from .ltx import LTXAdapter
from .registry import ADAPTERS, detect_family, family_of, get_adapter, register_adapter
from .wan import WanAdapter

__all__ = [
    "BackboneAdapter", "FlowMatchAdapter", "NoiseLevel", "TrainingForward", "frames_to_vae_input",
    "CogVideoXAdapter", "WanAdapter", "HunyuanVideoAdapter", "LTXAdapter", "rotary_embeddings",
    "ADAPTERS", "get_adapter", "family_of", "detect_family", "register_adapter",
]
