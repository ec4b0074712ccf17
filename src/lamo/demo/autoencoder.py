"""A small, closed-form latent space for the physics-world demo: a linear space-time patch autoencoder.

Real backbones denoise a VAE's latents. The demo world is tiny (a few coloured balls on a plain
background), so a *linear* autoencoder fitted by PCA is enough and needs no training loop: each
non-overlapping ``t × p × p`` patch of RGB pixels (``D = 3·t·p²`` numbers) is projected onto the top
``C`` principal components of the world's patches::

    encode:  z = s · Uᵀ (patch − m)        (B, 3, T, H, W) -> (B, C, T/t, H/p, W/p)
    decode:  patch = U z / s + m

``U`` (D × C, orthonormal columns) and ``m`` come from :meth:`PatchAutoencoder.fit`; ``s`` scales
the latents to unit variance per element (like a VAE's ``scaling_factor``, folded in here so the
pipeline's factor is 1). Because ``t > 1`` frames are packed into one latent frame, a latent frame
carries motion (docs/design.md §7).

It quacks like diffusers' ``AutoencoderKLCogVideoX`` where ``CogVideoXPipeline`` looks:
``config.block_out_channels`` (length ``log2 p + 1`` gives the spatial factor), ``config.
temporal_compression_ratio``, ``config.scaling_factor``, ``encode(x).latent_dist.sample()`` and
``decode(z).sample``, all in diffusers' ``(B, C, F, H, W)`` VAE layout, pixels in ``[-1, 1]``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

__all__ = ["PatchAutoencoder", "ConvAutoencoder"]


@dataclass
class _Deterministic:
    """A stand-in for a VAE's latent distribution that has no spread."""

    mean: torch.Tensor

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.mean

    def mode(self) -> torch.Tensor:
        return self.mean


@dataclass
class _EncoderOutput:
    latent_dist: _Deterministic


@dataclass
class _DecoderOutput:
    sample: torch.Tensor


class _VideoAutoencoder(ModelMixin, ConfigMixin):
    """What both demo autoencoders share: the patch-size rule, the input and latent checks, no-op savers."""

    def _set_patch_config(self, patch_size: int, block_out_channels) -> int:
        """Check ``patch_size`` (a power of two) and record ``block_out_channels`` so that
        ``CogVideoXPipeline`` derives its spatial factor ``2 ** (len − 1) = p``; return ``log2 p``."""
        if patch_size < 1 or patch_size & (patch_size - 1):
            raise ValueError(f"patch_size must be a power of two, got {patch_size}")
        expected = (1,) * (int(math.log2(patch_size)) + 1)
        if block_out_channels is not None and len(block_out_channels) != len(expected):
            raise ValueError(f"block_out_channels must have {len(expected)} entries for patch_size {patch_size}")
        self.register_to_config(block_out_channels=expected)
        return len(expected) - 1

    def _check_video(self, x: torch.Tensor) -> None:
        t, p = self.config.temporal_compression_ratio, self.config.patch_size
        B, K, T, H, W = x.shape
        if K != self.config.in_channels:
            raise ValueError(f"expected {self.config.in_channels} pixel channels, got {K} (shape {tuple(x.shape)})")
        if T % t or H % p or W % p:
            raise ValueError(
                f"video of {T} frames × {H}×{W} px does not tile into {t}-frame × {p}×{p}-px patches; "
                f"use a frame count divisible by {t} and sizes divisible by {p}"
            )

    def _check_latents(self, z: torch.Tensor) -> None:
        if z.ndim != 5 or z.shape[1] != self.config.latent_channels:
            raise ValueError(
                f"expected latents (B, {self.config.latent_channels}, F, h, w), got shape {tuple(z.shape)}"
            )

    # CogVideoXPipeline may call these memory savers; these small models need neither.
    def enable_slicing(self) -> None:  # pragma: no cover - nothing to do
        pass

    def enable_tiling(self, *args, **kwargs) -> None:  # pragma: no cover - nothing to do
        pass


class PatchAutoencoder(_VideoAutoencoder):
    """Linear space-time patch autoencoder (PCA), drop-in for the VAE of ``CogVideoXPipeline``.

    Args:
        in_channels: pixel channels (3).
        latent_channels: ``C``, principal components kept.
        patch_size: spatial patch ``p`` (a power of two).
        temporal_compression_ratio: frames ``t`` packed into one latent frame.
        scaling_factor: kept at 1.0 (the latent scale is folded into the weights); present because
            ``CogVideoXPipeline`` reads it.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        latent_channels: int = 16,
        patch_size: int = 4,
        temporal_compression_ratio: int = 2,
        scaling_factor: float = 1.0,
        block_out_channels: tuple[int, ...] | None = None,
    ):
        super().__init__()
        self._set_patch_config(patch_size, block_out_channels)
        d = in_channels * temporal_compression_ratio * patch_size**2
        if latent_channels > d:
            raise ValueError(f"latent_channels ({latent_channels}) cannot exceed the patch dimension ({d})")
        self.register_buffer("components", torch.zeros(d, latent_channels))  # U, (D, C)
        self.register_buffer("patch_mean", torch.zeros(d))  # m, (D,)
        self.register_buffer("latent_scale", torch.ones(()))  # s

    # ------------------------------------------------------------------ patches
    def _to_patches(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` → ``(B, F, h, w, D)``."""
        self._check_video(x)
        t, p = self.config.temporal_compression_ratio, self.config.patch_size
        B, K, T, H, W = x.shape
        x = x.reshape(B, K, T // t, t, H // p, p, W // p, p)  # (B, 3, F, t, h, p, w, p)
        x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # -> (B, F, h, w, 3, t, p, p)
        return x.reshape(B, T // t, H // p, W // p, -1)  # (B, F, h, w, D)

    def _from_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """``(B, F, h, w, D)`` → ``(B, 3, T, H, W)``."""
        t, p, K = self.config.temporal_compression_ratio, self.config.patch_size, self.config.in_channels
        B, F, h, w, _ = patches.shape
        x = patches.reshape(B, F, h, w, K, t, p, p)  # (B, F, h, w, 3, t, p, p)
        x = x.permute(0, 4, 1, 5, 2, 6, 3, 7)  # -> (B, 3, F, t, h, p, w, p)
        return x.reshape(B, K, F * t, h * p, w * p)

    # ------------------------------------------------------------------ fit / encode / decode
    @torch.no_grad()
    def fit(self, videos: torch.Tensor, max_patches: int = 200_000, seed: int = 0) -> "PatchAutoencoder":
        """Fit ``U``, ``m``, ``s`` by PCA on ``(B, 3, T, H, W)`` videos in ``[-1, 1]``. Returns self."""
        patches = self._to_patches(videos.double()).reshape(-1, self.components.shape[0])  # (N, D)
        if patches.shape[0] > max_patches:
            g = torch.Generator().manual_seed(seed)
            patches = patches[torch.randperm(patches.shape[0], generator=g)[:max_patches]]
        mean = patches.mean(0)
        centred = patches - mean
        cov = centred.T @ centred / max(1, centred.shape[0] - 1)  # (D, D)
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        top = evecs[:, evals.argsort(descending=True)[: self.config.latent_channels]]  # (D, C)
        top = top * torch.sign(top.sum(0, keepdim=True) + 1e-12)  # a fixed sign per component
        z = centred @ top  # (N, C)
        self.components.copy_(top.float())
        self.patch_mean.copy_(mean.float())
        self.latent_scale.copy_(1.0 / z.std().clamp_min(1e-8).float())
        return self

    def encode(self, x: torch.Tensor) -> _EncoderOutput:
        """``(B, 3, T, H, W)`` pixels in ``[-1, 1]`` → latents ``(B, C, T/t, H/p, W/p)`` (in ``.latent_dist``)."""
        patches = self._to_patches(x.to(self.components.dtype))  # (B, F, h, w, D)
        z = (patches - self.patch_mean) @ self.components * self.latent_scale  # (B, F, h, w, C)
        return _EncoderOutput(_Deterministic(z.permute(0, 4, 1, 2, 3)))  # -> (B, C, F, h, w)

    def decode(self, z: torch.Tensor, return_dict: bool = True):
        """Latents ``(B, C, F, h, w)`` → pixels ``(B, 3, F·t, h·p, w·p)`` in about ``[-1, 1]``."""
        self._check_latents(z)
        zc = z.to(self.components.dtype).permute(0, 2, 3, 4, 1)  # (B, C, F, h, w) -> (B, F, h, w, C)
        patches = zc / self.latent_scale @ self.components.T + self.patch_mean  # (B, F, h, w, D)
        out = self._from_patches(patches)
        return _DecoderOutput(out) if return_dict else (out,)


class ConvAutoencoder(_VideoAutoencoder):
    """A learned nonlinear space-time patch autoencoder, drop-in for the VAE of ``CogVideoXPipeline``.

    Same latent layout as :class:`PatchAutoencoder` — each latent frame holds ``t`` video frames, so a
    latent frame carries motion, and nothing mixes latent frames — but the maps are small
    convolutional networks on each ``t``-frame group (its ``3·t`` pixel channels stacked)::

        encode:  z = s · (E(x) − μ)          (B, 3, T, H, W) -> (B, C, T/t, H/p, W/p)
        decode:  x = clamp(D(z / s + μ), −1, 1)

    ``E`` downsamples by ``p`` with strided convolutions, ``D`` upsamples back (nearest + conv). The
    decoder is trained on noised latents as well as clean ones (:meth:`loss`), so a latent that a
    denoiser leaves slightly off the encoder's image decodes to a clean picture rather than the
    PCA decoder's speckle: its output stays on the world's image manifold. ``μ`` (per channel) and
    ``s`` are set after training (:meth:`calibrate`) so latents have zero mean and unit variance, like
    a VAE's ``scaling_factor`` (folded in here, so the pipeline's factor is 1).

    Args:
        in_channels: pixel channels (3).
        latent_channels: ``C``.
        patch_size: spatial downsampling ``p`` (a power of two).
        temporal_compression_ratio: frames ``t`` per latent frame.
        hidden: width of the first convolutions (doubled after each downsampling).
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        latent_channels: int = 16,
        patch_size: int = 4,
        temporal_compression_ratio: int = 2,
        hidden: int = 64,
        scaling_factor: float = 1.0,
        block_out_channels: tuple[int, ...] | None = None,
    ):
        super().__init__()
        levels = self._set_patch_config(patch_size, block_out_channels)
        nn = torch.nn
        k = in_channels * temporal_compression_ratio
        enc: list[nn.Module] = [nn.Conv2d(k, hidden, 3, padding=1), nn.GELU()]
        w = hidden
        for _ in range(levels):
            enc += [nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.GELU(), nn.Conv2d(2 * w, 2 * w, 3, padding=1),
                    nn.GELU()]
            w *= 2
        enc.append(nn.Conv2d(w, latent_channels, 1))
        dec: list[nn.Module] = [nn.Conv2d(latent_channels, w, 3, padding=1), nn.GELU(), nn.Conv2d(w, w, 3, padding=1),
                                nn.GELU()]
        for _ in range(levels):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w, w // 2, 3, padding=1), nn.GELU(),
                    nn.Conv2d(w // 2, w // 2, 3, padding=1), nn.GELU()]
            w //= 2
        dec.append(nn.Conv2d(w, k, 3, padding=1))
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)
        self.register_buffer("latent_mean", torch.zeros(latent_channels))  # μ, (C,)
        self.register_buffer("latent_scale", torch.ones(()))  # s

    # ------------------------------------------------------------------ frame groups
    def _groups(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` → ``(B·F, 3·t, H, W)``."""
        self._check_video(x)
        t = self.config.temporal_compression_ratio
        B, K, T, H, W = x.shape
        x = x.reshape(B, K, T // t, t, H, W).permute(0, 2, 1, 3, 4, 5)  # -> (B, F, 3, t, H, W)
        return x.reshape(B * (T // t), K * t, H, W)

    def _ungroup(self, y: torch.Tensor, B: int) -> torch.Tensor:
        """``(B·F, 3·t, H, W)`` → ``(B, 3, T, H, W)``."""
        t, K = self.config.temporal_compression_ratio, self.config.in_channels
        _, _, H, W = y.shape
        y = y.reshape(B, -1, K, t, H, W).permute(0, 2, 1, 3, 4, 5)  # -> (B, 3, F, t, H, W)
        return y.reshape(B, K, -1, H, W)

    def _latents(self, x: torch.Tensor) -> torch.Tensor:
        """Raw (uncalibrated) latents ``(B, C, F, h, w)``."""
        B = x.shape[0]
        z = self.encoder(self._groups(x))  # (B·F, C, h, w)
        return z.reshape(B, -1, *z.shape[1:]).permute(0, 2, 1, 3, 4)  # -> (B, C, F, h, w)

    def _pixels(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latents ``(B, C, F, h, w)`` → pixels ``(B, 3, T, H, W)`` (not clamped)."""
        B, C = z.shape[:2]
        y = self.decoder(z.permute(0, 2, 1, 3, 4).reshape(-1, C, *z.shape[3:]))  # (B·F, 3·t, H, W)
        return self._ungroup(y, B)

    # ------------------------------------------------------------------ training
    def loss(self, x: torch.Tensor, latent_noise: float = 0.2, object_weight: float = 10.0,
             background: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruction loss of videos ``x`` (``(B, 3, T, H, W)`` in ``[-1, 1]``).

        MSE of clean and of noised latents' reconstructions (noise ``latent_noise``·std of the batch's
        latents), with pixels away from ``background`` (``(3,)`` in ``[-1, 1]``; the objects, a few % of
        the frame) weighted ``1 + object_weight`` so small balls are not traded for the background.
        """
        z = self._latents(x)
        noisy = z + latent_noise * z.detach().std() * torch.randn_like(z)
        w = torch.ones_like(x[:, :1])
        if background is not None:
            w = 1 + object_weight * ((x - background.view(1, 3, 1, 1, 1)).abs().amax(1, keepdim=True) > 0.05).float()
        err = (self._pixels(z) - x) ** 2 + (self._pixels(noisy) - x) ** 2
        return (err * w).mean() / 2

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> "ConvAutoencoder":
        """Set ``μ`` and ``s`` so latents of videos ``x`` have zero mean per channel and unit variance."""
        z = self._latents(x.to(self.latent_mean.device))
        mu = z.mean(dim=(0, 2, 3, 4))
        self.latent_mean.copy_(mu)
        self.latent_scale.copy_(1.0 / (z - mu.view(1, -1, 1, 1, 1)).std().clamp_min(1e-8))
        return self

    # ------------------------------------------------------------------ the VAE interface
    def encode(self, x: torch.Tensor) -> _EncoderOutput:
        """``(B, 3, T, H, W)`` pixels in ``[-1, 1]`` → latents ``(B, C, T/t, H/p, W/p)`` (in ``.latent_dist``)."""
        dtype = self.latent_mean.dtype
        z = (self._latents(x.to(dtype)) - self.latent_mean.view(1, -1, 1, 1, 1)) * self.latent_scale
        return _EncoderOutput(_Deterministic(z))

    def decode(self, z: torch.Tensor, return_dict: bool = True):
        """Latents ``(B, C, F, h, w)`` → pixels ``(B, 3, F·t, h·p, w·p)`` in ``[-1, 1]``."""
        self._check_latents(z)
        raw = z.to(self.latent_mean.dtype) / self.latent_scale + self.latent_mean.view(1, -1, 1, 1, 1)
        out = self._pixels(raw).clamp(-1, 1)
        return _DecoderOutput(out) if return_dict else (out,)
