"""Training-free peer methods LaMo is compared with (not part of the method itself)."""
from .flowmo import FLOWMO_VARIANTS, FlowMoGuidance, flowmo_release_loss, flowmo_variance_loss, release_steps

__all__ = ["FLOWMO_VARIANTS", "FlowMoGuidance", "flowmo_release_loss", "flowmo_variance_loss", "release_steps"]
