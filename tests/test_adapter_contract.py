"""What a new backbone family has to say: the abstract methods of BackboneAdapter, and nothing more.

A toy flow-matching family written against the contract gets the shared training forward
(latent checks, noise draw, x̂0, w(t), the image-to-video refusal) from the base class.
"""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lamo.adapters import BackboneAdapter, NoiseLevel

FAMILY_SPECIFIC = {"prediction_type", "noise_level", "pipeline_class", "normalize_latents", "text_embed_dim",
                   "training_noise", "denoise_for_training"}


def test_the_contract_is_the_family_specific_methods():
    assert set(BackboneAdapter.__abstractmethods__) == FAMILY_SPECIFIC


class ToyTransformer(nn.Module):
    """A 1×1×1 conv over ``(B, C, F, H, W)``, with the config fields adapters read."""

    def __init__(self, channels=3, in_channels=None):
        super().__init__()
        self.config = SimpleNamespace(in_channels=in_channels or channels, out_channels=channels)
        self.conv = nn.Conv3d(in_channels or channels, channels, 1)

    def forward(self, x):
        return self.conv(x)


class ToyFlowAdapter(BackboneAdapter):
    family = "toy"
    layout = "BCFHW"

    def prediction_type(self, scheduler):
        return "flow"

    def noise_level(self, scheduler, timestep, sample=None, step_index=None):
        return NoiseLevel("flow", sigma=torch.as_tensor(timestep).float() / 1000)

    def pipeline_class(self):
        return object

    def normalize_latents(self, vae, z):
        return z

    def text_embed_dim(self, transformer):
        return 8

    def training_noise(self, scheduler, batch, timesteps, generator, like):
        if timesteps is None:
            timesteps = torch.rand(batch, generator=generator) * 1000
        timesteps = torch.as_tensor(timesteps, device=like.device).float().expand(batch)
        return timesteps, NoiseLevel("flow", sigma=timesteps / 1000)

    def denoise_for_training(self, transformer, scheduler, latents, noise, timesteps, level, prompt_embeds):
        s = level.sigma.view(-1, 1, 1, 1, 1)
        noisy = (1 - s) * latents + s * noise  # (B, F, C, H, W)
        pred = self.to_bfchw(transformer(self.from_bfchw(noisy)))  # the transformer runs in (B, C, F, H, W)
        return noisy, pred, noise - latents


def test_a_family_written_against_the_contract_trains():
    adapter, transformer = ToyFlowAdapter(), ToyTransformer().double()
    g = torch.Generator().manual_seed(0)
    latents, noise = (torch.randn(2, 4, 3, 5, 5, generator=g, dtype=torch.float64) for _ in range(2))
    t = torch.tensor([250.0, 900.0])
    out = adapter.training_forward(transformer, None, latents, torch.zeros(2, 7, 8), noise=noise, timesteps=t)
    sigma = (t / 1000).double().view(2, 1, 1, 1, 1)
    torch.testing.assert_close(out.noisy, (1 - sigma) * latents + sigma * noise)
    torch.testing.assert_close(out.x0_pred, out.noisy - sigma * out.pred)  # x̂0 from the base class
    torch.testing.assert_close(out.weight, 1 - t / 1000)  # w = 1 − σ
    torch.testing.assert_close(adapter.x0(out.target, out.noisy, out.noise_level), latents)  # oracle → x0
    assert torch.equal(out.timesteps, t)
    out.x0_pred.pow(2).mean().backward()
    assert transformer.conv.weight.grad is not None
    # noise and timesteps are drawn with the generator when not given
    a, b = (adapter.training_forward(transformer, None, latents, None, generator=torch.Generator().manual_seed(3))
            for _ in range(2))
    assert torch.equal(a.noisy, b.noisy) and torch.equal(a.timesteps, b.timesteps)


def test_the_base_refuses_wrong_latents_and_image_to_video_for_every_family():
    adapter = ToyFlowAdapter()
    with pytest.raises(ValueError, match="channels"):
        adapter.training_forward(ToyTransformer(channels=3), None, torch.randn(1, 2, 4, 3, 3), None)
    with pytest.raises(ValueError, match="image-to-video"):
        adapter.training_forward(ToyTransformer(channels=3, in_channels=6), None, torch.randn(1, 2, 3, 3, 3), None)
