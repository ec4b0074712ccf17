"""The embedded demo: a small latent space and backbone for the physics world (DESIGN.md §3)."""
from .autoencoder import ConvAutoencoder, PatchAutoencoder

__all__ = ["ConvAutoencoder", "PatchAutoencoder"]
