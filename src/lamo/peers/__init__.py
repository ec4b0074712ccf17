"""Training-free peer methods LaMo is compared with (not part of the method itself)."""
from .flowmo import FlowMoGuidance, flowmo_variance_loss

__all__ = ["FlowMoGuidance", "flowmo_variance_loss"]
