"""Backbone adapters: one per family, one contract (:class:`~lamo.adapters.base.BackboneAdapter`)."""
from .base import BackboneAdapter, NoiseLevel, TrainingForward

__all__ = ["BackboneAdapter", "NoiseLevel", "TrainingForward"]
