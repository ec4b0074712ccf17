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


# ---------------------------------------------------------------------------------------- every registered family
def _family_cases():
    """(family, components factory, stock pipeline class name, training text inputs) of each registered family."""
    from tiny_models import (HUNYUAN_POOLED_DIM, tiny_cogvideox_components, tiny_hunyuan_video_components,
                             tiny_ltx_components, tiny_wan_components)

    return {
        "cogvideox": (tiny_cogvideox_components, "CogVideoXPipeline", lambda b: {}),
        "wan": (tiny_wan_components, "WanPipeline", lambda b: {}),
        "hunyuanvideo": (tiny_hunyuan_video_components, "HunyuanVideoPipeline",
                         lambda b: {"pooled_prompt_embeds": torch.randn(b, HUNYUAN_POOLED_DIM)}),
        "ltx": (tiny_ltx_components, "LTXPipeline", lambda b: {}),
    }


def test_every_registered_family_has_a_tiny_case_here():
    from lamo.adapters import ADAPTERS

    assert set(ADAPTERS) == set(_family_cases())


@pytest.mark.parametrize("family", ["cogvideox", "wan", "hunyuanvideo", "ltx"])
def test_each_family_trains_through_the_shared_forward(family):
    """The base class's training forward on each family's tiny transformer: x_t, x̂0 and the oracle all agree,
    and the gradient reaches the transformer."""
    from tiny_models import random_prompt_embeds

    from lamo.adapters import get_adapter

    factory, pipeline_name, text_inputs = _family_cases()[family]
    comps = factory()
    transformer, scheduler = comps["transformer"], comps["scheduler"]
    adapter = get_adapter(transformer)
    assert adapter.family == family and get_adapter(pipeline_name).family == family
    assert get_adapter({"_class_name": pipeline_name, "transformer": ["diffusers", type(transformer).__name__]}
                       ).family == family
    C = adapter.latent_channels(transformer)
    g = torch.Generator().manual_seed(0)
    latents, noise = (torch.randn(2, 4, C, 4, 4, generator=g) for _ in range(2))
    t = torch.tensor([300, 800])
    out = adapter.training_forward(transformer, scheduler, latents, random_prompt_embeds(2), noise=noise,
                                   timesteps=t, **text_inputs(2))
    assert out.pred.shape == out.target.shape == out.x0_pred.shape == out.noisy.shape == latents.shape
    torch.testing.assert_close(adapter.x0(out.target, out.noisy, out.noise_level), latents, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.x0_pred, adapter.x0(out.pred.float(), out.noisy.float(), out.noise_level))
    assert out.weight.shape == (2,) and bool((out.weight > 0).all() and (out.weight < 1).all())
    out.x0_pred.pow(2).mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in transformer.parameters())


@pytest.mark.parametrize("family", ["cogvideox", "wan", "hunyuanvideo", "ltx"])
def test_each_family_encodes_videos_to_its_latent_channels(family):
    """``encode_video`` gives ``(B, F, C, H, W)`` latents with the ``C`` the transformer denoises, normalised as the
    family's pipeline un-normalises before decoding."""
    from lamo.adapters import get_adapter

    comps = _family_cases()[family][0]()
    adapter = get_adapter(comps["transformer"])
    frames = torch.rand(1, 9, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1  # (B, F, 3, H, W)
    z = adapter.encode_video(comps["vae"], frames, sample=False)
    assert z.ndim == 5 and z.shape[0] == 1 and z.shape[2] == adapter.latent_channels(comps["transformer"])
    raw = comps["vae"].encode(frames.permute(0, 2, 1, 3, 4)).latent_dist.mode()  # (B, C, F, H, W)
    assert not torch.allclose(z, raw.permute(0, 2, 1, 3, 4))  # the family's normalisation was applied


def test_hunyuan_video_training_needs_the_pooled_prompt():
    from tiny_models import random_prompt_embeds, tiny_hunyuan_video_components

    from lamo.adapters import HunyuanVideoAdapter
    from lamo.errors import UserError

    comps = tiny_hunyuan_video_components()
    with pytest.raises(UserError, match="pooled_prompt_embeds"):
        HunyuanVideoAdapter().training_forward(comps["transformer"], comps["scheduler"], torch.randn(1, 2, 4, 4, 4),
                                               random_prompt_embeds(1), timesteps=torch.tensor([500]))


def test_ltx_packed_latents_round_trip_through_a_bound_adapter():
    """LTX steps packed ``(B, F·H·W, C)`` tokens: the adapter bound to the grid unpacks them to ``(B, F, C, H, W)``
    exactly as ``LTXPipeline._unpack_latents`` does and packs them back; unbound, it refuses packed tensors."""
    from diffusers import LTXPipeline

    from lamo.adapters import LTXAdapter

    bcfhw = torch.randn(2, 8, 3, 4, 5)  # (B, C, F, H, W)
    packed = LTXPipeline._pack_latents(bcfhw)  # (2, 60, 8)
    bound = LTXAdapter().for_grid((3, 4, 5))
    assert torch.equal(bound.to_bfchw(packed), bcfhw.permute(0, 2, 1, 3, 4))
    assert torch.equal(bound.from_bfchw(bound.to_bfchw(packed)), packed)
    assert torch.equal(LTXAdapter().to_bfchw(bcfhw), bcfhw.permute(0, 2, 1, 3, 4))  # I2V steps unpacked frames
    with pytest.raises(ValueError, match="grid"):
        LTXAdapter().to_bfchw(packed)
    patched = LTXAdapter().for_grid((3, 2, 2), patch=(1, 2))  # 2 × 2 spatial patches: 32 features per token
    packed2 = LTXPipeline._pack_latents(bcfhw[..., :4, :4].contiguous(), 2, 1)
    assert torch.equal(patched.to_bfchw(packed2), bcfhw[..., :4, :4].permute(0, 2, 1, 3, 4))


def test_family_names_ignore_case_and_separators():
    from lamo.adapters import family_of

    assert family_of("HunyuanVideo-13B") == family_of("hunyuan-video") == family_of("hunyuan_video") == "hunyuanvideo"
    assert family_of("LTX-Video-2B") == family_of("LaMoLTXPipeline") == "ltx"
    assert family_of("wan2.1-1.3b") == "wan" and family_of("CogVideoX-5b") == "cogvideox"


def test_the_commands_know_every_registered_family():
    """`lamo sample --family` (whose module imports no torch) offers each registered family, with its frame rate,
    and every family has a LaMo pipeline."""
    from lamo.adapters import ADAPTERS
    from lamo.pipelines import PIPELINES
    from lamo.sampling import DEFAULT_FPS, FAMILIES

    assert set(FAMILIES) == set(DEFAULT_FPS) == set(ADAPTERS) == set(PIPELINES)
