"""Tiny random diffusers video backbones for tests — built offline, nothing is downloaded.

Every part is the real diffusers class on the backbone's code path, shrunk to a few thousand
parameters the way diffusers' own tests do (``tests/pipelines/cogvideo/test_cogvideox.py``,
``tests/pipelines/wan/test_wan.py``). There is no tokenizer or text encoder: pass random prompt
embeddings from :func:`random_prompt_embeds` as ``prompt_embeds=`` / ``negative_prompt_embeds=``.

Factories (each returns the ``components`` dict a pipeline class takes, so the stock diffusers
pipeline and a LaMo pipeline can be built from the very same weights):

* :func:`tiny_cogvideox_components` — CogVideoX-2B style (sinusoidal positions, SNR shift 3.0) or,
  with ``rope=True``, CogVideoX-5B style (rotary embeddings, SNR shift 1.0); DDIM or DPM scheduler.
* :func:`tiny_wan_components` — Wan 2.1 style; UniPC with flow sigmas or FlowMatchEuler.
* :func:`tiny_cogvideox_i2v_components` — CogVideoX image-to-video (the transformer takes ``2·C``
  channels: latents and image latents; it predicts ``C``).
* :func:`tiny_wan_i2v_components` — Wan image-to-video: 2.1 style (a tiny CLIP image encoder and
  processor, ``image_dim`` set) or 2.2 style (no image encoder); the transformer takes ``2·C + 4``
  channels (latents, a 4-channel first-frame mask, image latents) and predicts ``C``.
* :func:`tiny_wan22_components` — Wan 2.2 A14B style: ``transformer`` and ``transformer_2`` (different
  weights) split at ``boundary_ratio``, for ``WanPipeline`` (or ``WanImageToVideoPipeline`` with
  ``image_to_video=True``).
* :func:`tiny_wan22_ti2v_components` — Wan 2.2 TI2V-5B style: 48 latent channels from a residual,
  patchifying VAE (16× spatial), ``expand_timesteps=True``; for ``WanPipeline`` and
  ``WanImageToVideoPipeline`` alike.
* :func:`tiny_hunyuan_video_components` — HunyuanVideo (guidance-distilled transformer, Llama-width and CLIP
  pooled prompt inputs: :func:`hunyuan_video_prompt_kwargs` makes them from random embeddings).
* :func:`tiny_ltx_components` — LTX-Video, for ``LTXPipeline`` and ``LTXImageToVideoPipeline`` (packed token
  latents; a VAE compressing 4× in time and space, so 8 × 8 latents; :func:`ltx_prompt_kwargs` adds masks).
* :func:`tiny_text_encoder` — a random ``T5EncoderModel`` + word-level tokenizer, for code that
  encodes prompts itself (``encode_prompt``); pass them as ``text_encoder=`` / ``tokenizer=``.
* :func:`tiny_motion_prior` — a ``MotionPrior("tiny")`` whose zero-initialised output layer is
  re-initialised to small random values, so it predicts non-zero motion (as a trained prior would).

Sizes: video ``NUM_FRAMES × HEIGHT × WIDTH`` = 13 × 32 × 32 → latents of 4 frames × 4 × 4 (both
VAEs compress 4× in time and 8× in space), prompts of ``TEXT_LEN`` tokens × ``TEXT_DIM``.
``cogvideox_call_kwargs`` / ``wan_call_kwargs`` hold the matching pipeline call arguments
(``wan22_ti2v_call_kwargs`` for TI2V's 16× VAE: ``TI2V_SIZE`` px → 4 × 4 latents); :func:`tiny_image`
is a conditioning image for the image-to-video pipelines.
"""
from __future__ import annotations

from typing import Any

import torch

__all__ = [
    "HEIGHT", "WIDTH", "NUM_FRAMES", "LATENT_FRAMES", "TEXT_LEN", "TEXT_DIM",
    "COGVIDEOX_LATENT_CHANNELS", "WAN_LATENT_CHANNELS",
    "tiny_cogvideox_components", "tiny_wan_components", "tiny_pipeline",
    "random_prompt_embeds", "tiny_text_encoder", "tiny_motion_prior", "cogvideox_call_kwargs", "wan_call_kwargs",
    "WAN22_TI2V_LATENT_CHANNELS", "TI2V_SIZE", "WAN22_BOUNDARY_RATIO",
    "tiny_cogvideox_i2v_components", "tiny_wan_i2v_components", "tiny_wan22_components",
    "tiny_wan22_ti2v_components", "wan22_ti2v_call_kwargs", "tiny_image",
    "HUNYUAN_LATENT_CHANNELS", "HUNYUAN_POOLED_DIM", "LTX_LATENT_CHANNELS", "tiny_hunyuan_video_components",
    "hunyuan_video_call_kwargs", "hunyuan_video_prompt_kwargs", "tiny_ltx_components", "ltx_call_kwargs",
    "ltx_prompt_kwargs", "tiny_hunyuan_video_text_encoders",
]

HEIGHT = WIDTH = 32  # pixels -> 4 × 4 latents
NUM_FRAMES = 13  # video frames -> (13 − 1) / 4 + 1 = 4 latent frames
LATENT_FRAMES = 4
TEXT_LEN = 16  # prompt tokens (CogVideoX: must equal the transformer's max_text_seq_length)
TEXT_DIM = 32  # prompt embedding width
COGVIDEOX_LATENT_CHANNELS = 4
#: `lamo sample` / `lamo cache` options giving the tiny CogVideoX's size (its config records no sample size)
SIZE_ARGS = ["--frames", str(NUM_FRAMES), "--height", str(HEIGHT), "--width", str(WIDTH),
             "--max-sequence-length", str(TEXT_LEN)]
WAN_LATENT_CHANNELS = 4
HUNYUAN_LATENT_CHANNELS = 4
HUNYUAN_POOLED_DIM = 8  # width of the tiny HunyuanVideo's CLIP pooled prompt
LTX_LATENT_CHANNELS = 8
WAN22_TI2V_LATENT_CHANNELS = 48  # Wan 2.2 TI2V-5B's VAE (z_dim 48), kept at the real size
TI2V_SIZE = 64  # pixels -> 4 × 4 latents through TI2V's 16× VAE
# with 5 UniPC steps (flow_shift 3) the timesteps are ≈ 1000, 923, 818, 667, 429: steps 0–2 run
# `transformer` (t ≥ 750), steps 3–4 `transformer_2`
WAN22_BOUNDARY_RATIO = 0.75


# ---------------------------------------------------------------------------------------- CogVideoX
def tiny_cogvideox_components(
    *,
    rope: bool = False,
    scheduler: str = "ddim",
    latent_channels: int = COGVIDEOX_LATENT_CHANNELS,
    text_dim: int = TEXT_DIM,
    seed: int = 0,
    image_to_video: bool = False,
) -> dict[str, Any]:
    """Components of a tiny random ``CogVideoXPipeline`` (tokenizer and text encoder are ``None``).

    Args:
        rope: ``False`` → CogVideoX-2B style (sinusoidal 3D positions, scheduler SNR shift 3.0);
            ``True`` → CogVideoX-5B style (``use_rotary_positional_embeddings=True``, SNR shift 1.0).
        scheduler: ``"ddim"`` (``CogVideoXDDIMScheduler``) or ``"dpm"`` (``CogVideoXDPMScheduler``,
            whose ``step`` signature differs). Both v-prediction, trailing spacing, zero-terminal-SNR
            rescaling, as in the released checkpoints' scheduler configs.
        latent_channels: ``C`` of the latent space.
        text_dim: prompt embedding width.
        seed: weights are drawn after ``torch.manual_seed(seed)``.
        image_to_video: ``True`` → for ``CogVideoXImageToVideoPipeline`` instead (what
            :func:`tiny_cogvideox_i2v_components` builds): the transformer takes ``2·C`` channels.
    """
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXDPMScheduler

    transformer = _tiny_cogvideox_transformer(latent_channels, text_dim, rope, seed, image_to_video)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=latent_channels,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    scheduler_cls = {"ddim": CogVideoXDDIMScheduler, "dpm": CogVideoXDPMScheduler}[scheduler]
    sched = scheduler_cls(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
        prediction_type="v_prediction", rescale_betas_zero_snr=True, set_alpha_to_one=True,
        snr_shift_scale=1.0 if rope else 3.0, timestep_spacing="trailing",
    )
    return dict(tokenizer=None, text_encoder=None, vae=vae.eval(), transformer=transformer, scheduler=sched)


def _tiny_cogvideox_transformer(latent_channels: int, text_dim: int, rope: bool, seed: int, image_to_video: bool):
    """The tiny CogVideoX transformer, drawn after ``torch.manual_seed(seed)``. Image-to-video: it takes ``2·C``
    input channels (noisy latents and image latents concatenated along ``C``), predicts ``C``, and has no
    learned positional embeddings (as CogVideoX-5B-I2V)."""
    from diffusers import CogVideoXTransformer3DModel

    extra = dict(use_learned_positional_embeddings=False) if image_to_video else {}
    torch.manual_seed(seed)
    return CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,  # RoPE splits the head dim three ways: keep it ≥ 16
        in_channels=2 * latent_channels if image_to_video else latent_channels,  # (+ image latents)
        out_channels=latent_channels,
        time_embed_dim=4,
        text_embed_dim=text_dim,
        num_layers=1,
        sample_width=WIDTH // 8,  # latent width
        sample_height=HEIGHT // 8,  # latent height
        sample_frames=NUM_FRAMES,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=TEXT_LEN,
        use_rotary_positional_embeddings=rope,
        **extra,
    ).eval()


def cogvideox_call_kwargs(**overrides: Any) -> dict[str, Any]:
    """Call arguments matching :func:`tiny_cogvideox_components` (add ``prompt_embeds`` etc.)."""
    kw = dict(height=HEIGHT, width=WIDTH, num_frames=NUM_FRAMES, num_inference_steps=4, guidance_scale=6.0,
              max_sequence_length=TEXT_LEN, output_type="latent")
    kw.update(overrides)
    return kw


# ---------------------------------------------------------------------------------------- Wan
def tiny_wan_components(
    *,
    scheduler: str = "unipc",
    latent_channels: int = WAN_LATENT_CHANNELS,
    text_dim: int = TEXT_DIM,
    seed: int = 0,
) -> dict[str, Any]:
    """Components of a tiny random ``WanPipeline`` (tokenizer and text encoder are ``None``).

    Args:
        scheduler: ``"unipc"`` (``UniPCMultistepScheduler`` with flow sigmas, Wan 2.1's default,
            ``flow_shift=3``) or ``"euler"`` (``FlowMatchEulerDiscreteScheduler``, ``shift=3``).
        latent_channels: ``z_dim`` of the VAE; its ``latents_mean`` / ``latents_std`` are set to
            non-trivial values so the normalisation is exercised.
        text_dim: prompt embedding width.
        seed: weights are drawn after ``torch.manual_seed(seed)``.
    """
    from diffusers import (AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler,
                           WanTransformer3DModel)

    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=latent_channels,
        out_channels=latent_channels,
        text_dim=text_dim,
        freq_dim=32,
        ffn_dim=32,
        num_layers=1,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=latent_channels,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.1 * (c - latent_channels / 2) for c in range(latent_channels)],
        latents_std=[0.5 + 0.25 * c for c in range(latent_channels)],
    )
    if scheduler == "unipc":
        sched = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                        num_train_timesteps=1000, flow_shift=3.0)
    elif scheduler == "euler":
        sched = FlowMatchEulerDiscreteScheduler(shift=3.0)
    else:
        raise ValueError(f"unknown scheduler {scheduler!r}; use 'unipc' or 'euler'")
    return dict(tokenizer=None, text_encoder=None, vae=vae.eval(), transformer=transformer.eval(), scheduler=sched)


def wan_call_kwargs(**overrides: Any) -> dict[str, Any]:
    """Call arguments matching :func:`tiny_wan_components` (add ``prompt_embeds`` etc.)."""
    kw = dict(height=HEIGHT, width=WIDTH, num_frames=NUM_FRAMES, num_inference_steps=4, guidance_scale=5.0,
              max_sequence_length=TEXT_LEN, output_type="latent")
    kw.update(overrides)
    return kw


# ---------------------------------------------------------------------------------------- image-to-video
def tiny_cogvideox_i2v_components(**kwargs: Any) -> dict[str, Any]:
    """Components of a tiny random ``CogVideoXImageToVideoPipeline``: :func:`tiny_cogvideox_components` with
    ``image_to_video=True`` (takes its other keyword arguments): the same VAE and scheduler, but the
    transformer takes ``2·C`` input channels (noisy latents and image latents concatenated along ``C``),
    predicts ``C``, and has no learned positional embeddings (as CogVideoX-5B-I2V)."""
    return tiny_cogvideox_components(image_to_video=True, **kwargs)


def _tiny_wan_transformer(in_channels: int, out_channels: int, text_dim: int, seed: int, **extra: Any):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=in_channels,
        out_channels=out_channels, text_dim=text_dim, freq_dim=32, ffn_dim=32, num_layers=1, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32, **extra,
    ).eval()


def tiny_wan_i2v_components(
    *,
    style: str = "2.1",
    scheduler: str = "unipc",
    latent_channels: int = WAN_LATENT_CHANNELS,
    text_dim: int = TEXT_DIM,
    seed: int = 0,
) -> dict[str, Any]:
    """Components of a tiny random ``WanImageToVideoPipeline`` (VAE and scheduler of :func:`tiny_wan_components`).

    The transformer takes ``2·C + 4`` channels (noisy latents, the 4-channel first-frame mask, the image
    latents) and predicts ``C``. ``style="2.1"``: a tiny ``CLIPVisionModel`` + ``CLIPImageProcessor`` and a
    transformer with ``image_dim`` (image tokens in cross-attention), as Wan 2.1 I2V; ``"2.2"``: no image
    encoder (``image_encoder=None``, ``image_processor=None``), as Wan 2.2 I2V.
    """
    if style not in ("2.1", "2.2"):
        raise ValueError(f"unknown Wan I2V style {style!r}; use '2.1' or '2.2'")
    components = tiny_wan_components(scheduler=scheduler, latent_channels=latent_channels, text_dim=text_dim,
                                     seed=seed)
    extra = dict(image_dim=4) if style == "2.1" else {}
    components["transformer"] = _tiny_wan_transformer(2 * latent_channels + 4, latent_channels, text_dim, seed,
                                                      **extra)
    image_encoder = image_processor = None
    if style == "2.1":
        from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

        torch.manual_seed(seed + 2)
        image_encoder = CLIPVisionModel(CLIPVisionConfig(
            hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=32,
            intermediate_size=16, patch_size=1,
        )).eval()
        image_processor = CLIPImageProcessor(crop_size=32, size=32)
    return dict(components, image_encoder=image_encoder, image_processor=image_processor)


def tiny_wan22_components(
    *,
    image_to_video: bool = False,
    scheduler: str = "unipc",
    boundary_ratio: float = WAN22_BOUNDARY_RATIO,
    latent_channels: int = WAN_LATENT_CHANNELS,
    text_dim: int = TEXT_DIM,
    seed: int = 0,
) -> dict[str, Any]:
    """Components of a tiny random Wan 2.2 A14B-style pipeline: ``transformer`` (high noise, ``t ≥
    boundary_ratio · 1000``) and ``transformer_2`` (low noise) with different weights.

    ``image_to_video=False``: for ``WanPipeline``; ``True``: for ``WanImageToVideoPipeline`` (2.2 style, no
    image encoder; both transformers take ``2·C + 4`` channels).
    """
    if image_to_video:
        components = tiny_wan_i2v_components(style="2.2", scheduler=scheduler, latent_channels=latent_channels,
                                             text_dim=text_dim, seed=seed)
    else:
        components = tiny_wan_components(scheduler=scheduler, latent_channels=latent_channels, text_dim=text_dim,
                                          seed=seed)
    in_channels = components["transformer"].config.in_channels
    components["transformer_2"] = _tiny_wan_transformer(in_channels, latent_channels, text_dim, seed + 7)
    return dict(components, boundary_ratio=boundary_ratio)


def tiny_wan22_ti2v_components(
    *,
    image_to_video: bool = False,
    scheduler: str = "unipc",
    text_dim: int = TEXT_DIM,
    seed: int = 0,
) -> dict[str, Any]:
    """Components of a tiny random Wan 2.2 TI2V-5B-style pipeline: ``WAN22_TI2V_LATENT_CHANNELS`` (48)
    latent channels from a residual VAE that patchifies 2× (16× spatial in all), one transformer taking and
    predicting 48 channels, ``expand_timesteps=True`` (one timestep per token).

    ``image_to_video=False``: for ``WanPipeline``; ``True``: for ``WanImageToVideoPipeline`` (no image
    encoder; the image's latent *is* the first latent frame, timestep 0). Use :func:`wan22_ti2v_call_kwargs`.
    """
    from diffusers import AutoencoderKLWan

    C = WAN22_TI2V_LATENT_CHANNELS
    components = tiny_wan_components(scheduler=scheduler, latent_channels=4, text_dim=text_dim, seed=seed)
    components["transformer"] = _tiny_wan_transformer(C, C, text_dim, seed)
    torch.manual_seed(seed + 1)
    components["vae"] = AutoencoderKLWan(
        base_dim=3, z_dim=C, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
        dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
        scale_factor_spatial=16, scale_factor_temporal=4,
        latents_mean=[0.05 * (c % 7 - 3) for c in range(C)], latents_std=[0.5 + 0.05 * (c % 5) for c in range(C)],
    ).eval()
    components["expand_timesteps"] = True
    if image_to_video:
        components.update(image_encoder=None, image_processor=None)
    return components


def wan22_ti2v_call_kwargs(**overrides: Any) -> dict[str, Any]:
    """Call arguments matching :func:`tiny_wan22_ti2v_components` (``TI2V_SIZE`` px, 4 latent frames)."""
    return wan_call_kwargs(**dict(dict(height=TI2V_SIZE, width=TI2V_SIZE), **overrides))


def tiny_image(size: int = HEIGHT, seed: int = 0):
    """A random RGB ``PIL.Image`` of ``size × size`` pixels, to condition the image-to-video pipelines on."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


# ---------------------------------------------------------------------------------------- HunyuanVideo, LTX-Video
def tiny_hunyuan_video_components(*, latent_channels: int = HUNYUAN_LATENT_CHANNELS, text_dim: int = TEXT_DIM,
                                  seed: int = 0, image_condition_type: str | None = None) -> dict[str, Any]:
    """Components of a tiny random ``HunyuanVideoPipeline`` (both tokenizers and text encoders ``None``), shrunk as
    diffusers' ``tests/pipelines/hunyuan_video/test_hunyuan_video.py`` does: a 1 + 1-layer transformer taking
    ``text_dim``-wide Llama embeddings and a ``HUNYUAN_POOLED_DIM``-wide CLIP vector, guidance-distilled
    (``guidance_embeds=True``); a VAE compressing 4× in time and 8× in space; FlowMatchEuler with shift 7.

    ``image_condition_type``: for ``HunyuanVideoImageToVideoPipeline`` — ``"latent_concat"`` (the transformer takes
    ``2·C + 1`` channels and has no guidance embedding, as HunyuanVideo-I2V) or ``"token_replace"`` (``C``
    channels, the image latent replacing the first frame); image processor and text encoders are ``None``."""
    from diffusers import AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler, HunyuanVideoTransformer3DModel

    torch.manual_seed(seed)
    transformer = HunyuanVideoTransformer3DModel(
        in_channels=2 * latent_channels + 1 if image_condition_type == "latent_concat" else latent_channels,
        out_channels=latent_channels, num_attention_heads=2, attention_head_dim=10, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=1, patch_size_t=1,
        guidance_embeds=image_condition_type != "latent_concat", text_embed_dim=text_dim,
        pooled_projection_dim=HUNYUAN_POOLED_DIM, rope_axes_dim=(2, 4, 4), image_condition_type=image_condition_type,
    ).eval()
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=latent_channels,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4, up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8), layers_per_block=1, act_fn="silu", norm_num_groups=4,
        scaling_factor=0.476986, spatial_compression_ratio=8, temporal_compression_ratio=4,
        mid_block_add_attention=True,
    ).eval()
    components = dict(transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
                      text_encoder=None, text_encoder_2=None, tokenizer=None, tokenizer_2=None)
    return components if image_condition_type is None else dict(components, image_processor=None)


def hunyuan_video_call_kwargs(**overrides: Any) -> dict[str, Any]:
    """Call arguments matching :func:`tiny_hunyuan_video_components` (distilled guidance 4.5, no true CFG)."""
    return wan_call_kwargs(**dict(dict(guidance_scale=4.5), **overrides))  # the same sizes and prompt length


def hunyuan_video_prompt_kwargs(positive: torch.Tensor, negative: torch.Tensor | None = None) -> dict[str, Any]:
    """``HunyuanVideoPipeline``'s prompt arguments from Llama-like embeddings: every token attended to, and a
    CLIP-like pooled vector made from each prompt's first token (deterministic, different per prompt)."""
    kw: dict[str, Any] = {}
    for prefix, embeds in (("", positive), ("negative_", negative)):
        if embeds is not None:
            kw.update({f"{prefix}prompt_embeds": embeds,
                       f"{prefix}pooled_prompt_embeds": embeds[:, 0, :HUNYUAN_POOLED_DIM].clone(),
                       f"{prefix}prompt_attention_mask": torch.ones(embeds.shape[:2], dtype=torch.long)})
    return kw


def tiny_ltx_components(*, latent_channels: int = LTX_LATENT_CHANNELS, text_dim: int = TEXT_DIM,
                        seed: int = 0) -> dict[str, Any]:
    """Components of a tiny random ``LTXPipeline`` / ``LTXImageToVideoPipeline`` (tokenizer and text encoder
    ``None``), shrunk as diffusers' ``tests/pipelines/ltx/test_ltx.py`` does: a 1-layer transformer on packed
    tokens (patch 1 × 1 × 1), a VAE compressing 4× in time and space (so ``HEIGHT × WIDTH`` px → 8 × 8 latents) with
    non-trivial ``latents_mean`` / ``latents_std``, FlowMatchEuler with the released dynamic shift."""
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXVideoTransformer3DModel

    torch.manual_seed(seed)
    transformer = LTXVideoTransformer3DModel(
        in_channels=latent_channels, out_channels=latent_channels, patch_size=1, patch_size_t=1,
        num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32, num_layers=1, caption_channels=text_dim,
    ).eval()
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False), decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=1,
        patch_size_t=1, encoder_causal=True, decoder_causal=False,
    )
    with torch.no_grad():
        vae.latents_mean.copy_(torch.tensor([0.1 * (c - latent_channels / 2) for c in range(latent_channels)]))
        vae.latents_std.copy_(torch.tensor([0.5 + 0.25 * c for c in range(latent_channels)]))
    vae.use_framewise_encoding = vae.use_framewise_decoding = False
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05,
                                                base_image_seq_len=1024, max_image_seq_len=4096, shift_terminal=0.1)
    return dict(transformer=transformer, vae=vae.eval(), scheduler=scheduler, text_encoder=None, tokenizer=None)


def ltx_call_kwargs(**overrides: Any) -> dict[str, Any]:
    """Call arguments matching :func:`tiny_ltx_components` (CFG 3, as the stock default)."""
    return wan_call_kwargs(**dict(dict(guidance_scale=3.0), **overrides))  # the same sizes and prompt length


def ltx_prompt_kwargs(positive: torch.Tensor, negative: torch.Tensor | None = None) -> dict[str, Any]:
    """``LTXPipeline``'s prompt arguments: the embeddings and masks attending to every token (the stock pipeline
    requires a mask with given embeddings)."""
    kw: dict[str, Any] = {}
    for prefix, embeds in (("", positive), ("negative_", negative)):
        if embeds is not None:
            kw.update({f"{prefix}prompt_embeds": embeds,
                       f"{prefix}prompt_attention_mask": torch.ones(embeds.shape[:2], dtype=torch.bool)})
    return kw


# ---------------------------------------------------------------------------------------- helpers
def tiny_pipeline(pipeline_cls: type, components: dict[str, Any]):
    """``pipeline_cls(**components)`` on CPU with the progress bar off (any CogVideoX / Wan pipeline class)."""
    pipe = pipeline_cls(**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def random_prompt_embeds(
    batch: int = 1,
    seq_len: int = TEXT_LEN,
    dim: int = TEXT_DIM,
    seed: int = 0,
    true_lengths: list[int] | None = None,
) -> torch.Tensor:
    """Random prompt embeddings ``(batch, seq_len, dim)``.

    With ``true_lengths`` the tokens past each prompt's length are zero, as ``WanPipeline`` pads
    its T5 output (CogVideoX keeps the T5 outputs of its padding tokens, so leave it ``None`` there).
    """
    g = torch.Generator().manual_seed(seed)
    embeds = torch.randn(batch, seq_len, dim, generator=g)
    if true_lengths is not None:
        for b, n in enumerate(true_lengths):
            embeds[b, n:] = 0
    return embeds


def tiny_text_encoder(dim: int = TEXT_DIM, words: tuple[str, ...] = (), seed: int = 0):
    """``(text_encoder, tokenizer)``: a random 1-layer ``T5EncoderModel`` of width ``dim`` and a word-level
    fast tokenizer with T5's special tokens (``<pad>`` 0, ``</s>`` 1 appended, ``<unk>`` 2).

    The vocabulary is ``words`` plus a few physics-caption words; other words map to ``<unk>``.
    """
    from transformers import T5Config, T5EncoderModel

    tokenizer = _word_tokenizer(words)
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(tokenizer), d_model=dim, d_kv=8, d_ff=2 * dim, num_layers=1, num_heads=2,
                      dropout_rate=0.0)
    return T5EncoderModel(config).eval(), tokenizer


def _word_tokenizer(words: tuple[str, ...] = ()):
    """A word-level fast tokenizer with T5's special tokens (``<pad>`` 0, ``</s>`` 1 appended, ``<unk>`` 2) over
    ``words`` plus a few physics-caption words."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for w in ("a", "the", "red", "blue", "ball", "balls", "two", "bounces", "falls", "rolls", "collide", "on",
              "floor", *words):
        vocab.setdefault(w.lower(), len(vocab))
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def tiny_hunyuan_video_text_encoders(words: tuple[str, ...] = (), seed: int = 0) -> dict[str, Any]:
    """HunyuanVideo's two text encoders, tiny and random, with word-level tokenizers: a 2-layer ``LlamaModel`` of
    width ``TEXT_DIM`` (``text_encoder``; the pipeline reads its third-to-last hidden state) and a ``CLIPTextModel``
    of width ``HUNYUAN_POOLED_DIM`` (``text_encoder_2``; its pooled output). Add them to
    :func:`tiny_hunyuan_video_components`."""
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    tokenizer = _word_tokenizer(words)
    n = len(tokenizer)
    torch.manual_seed(seed)
    llama = LlamaModel(LlamaConfig(vocab_size=n, hidden_size=TEXT_DIM, intermediate_size=37, num_attention_heads=4,
                                   num_hidden_layers=2, pad_token_id=0, bos_token_id=0, eos_token_id=1)).eval()
    torch.manual_seed(seed + 1)
    clip = CLIPTextModel(CLIPTextConfig(vocab_size=n, hidden_size=HUNYUAN_POOLED_DIM, intermediate_size=37,
                                        num_attention_heads=4, num_hidden_layers=2, pad_token_id=0, bos_token_id=0,
                                        eos_token_id=1, projection_dim=HUNYUAN_POOLED_DIM)).eval()
    return dict(text_encoder=llama, tokenizer=tokenizer, text_encoder_2=clip, tokenizer_2=_word_tokenizer(words))


def tiny_motion_prior(
    latent_channels: int,
    text_dim: int = TEXT_DIM,
    backbone: str = "",
    seed: int = 0,
    output_std: float = 0.05,
    tau: int | None = None,
):
    """A ``MotionPrior`` (preset ``"tiny"``, lag ``tau`` or the preset's) that predicts non-zero motion.

    The prior zero-initialises its output conv (an untrained prior predicts no motion); here that
    conv and the FiLM layers are re-drawn from ``N(0, output_std²)`` so the field depends on the
    latent and the prompt, like a trained prior's.
    """
    from lamo import MotionPrior

    torch.manual_seed(seed)
    prior = MotionPrior.from_preset("tiny", latent_channels=latent_channels, text_embed_dim=text_dim,
                                    backbone=backbone, **({} if tau is None else {"tau": tau}))
    with torch.no_grad():
        prior.conv_out.weight.normal_(0, output_std)
        prior.conv_out.bias.normal_(0, output_std)
        for block in prior.blocks:
            block.film.weight.normal_(0, output_std)
    return prior.eval()


def write_tiny_latent_cache(root: Path) -> Path:
    """A tiny `lamo cache` folder at ``root``: 8 clips of 5 × 4 × 8 × 8 latents, prompt embeddings of 6 × 8."""
    import json

    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    emb = torch.randn(8, 6, 8, generator=g)
    save_file({"latents": torch.randn(8, 5, 4, 8, 8, generator=g), "pooled": emb.mean(1), "prompt_embeds": emb,
               "index": torch.arange(8)}, str(root / "shard-00000.safetensors"))
    (root / "manifest.json").write_text(json.dumps({
        "family": "cogvideox", "latent_shape": [5, 4, 8, 8], "text_dim": 8,
        "shards": [{"shard": 0, "file": "shard-00000.safetensors", "n": 8, "captions": ["x"] * 8, "skipped": []}]}))
    return root


def write_tiny_finetune_inputs(root: Path) -> tuple[Path, Path]:
    """A tiny CogVideoX pipeline (``root/model``) and a 4-clip latent cache of its sizes with prompt embeddings
    (``root/cache``): what `lamo train finetune` reads. Returns ``(model, cache)``."""
    import json

    from diffusers import CogVideoXPipeline
    from safetensors.torch import save_file

    tiny_pipeline(CogVideoXPipeline, tiny_cogvideox_components()).save_pretrained(root / "model")
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(4, TEXT_LEN, TEXT_DIM, generator=g)
    (root / "cache").mkdir()
    save_file({"latents": torch.randn(4, 4, 4, 4, 4, generator=g), "pooled": emb.mean(1), "prompt_embeds": emb,
               "index": torch.arange(4)}, str(root / "cache" / "shard-00000.safetensors"))
    (root / "cache" / "manifest.json").write_text(json.dumps({
        "family": "cogvideox", "latent_shape": [4, 4, 4, 4], "text_dim": TEXT_DIM,
        "shards": [{"shard": 0, "file": "shard-00000.safetensors", "n": 4, "captions": [""] * 4, "skipped": []}]}))
    return root / "model", root / "cache"


def write_tiny_drifting_cache(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """A tiny CogVideoX pipeline (``root/model``) and an 8-clip latent cache of its sizes (``root/cache``) whose
    clips' channel means drift steadily — a macro motion for the drift loss to learn. Returns ``(latents,
    prompt_embeds)`` as written."""
    import json

    from diffusers import CogVideoXPipeline
    from safetensors.torch import save_file

    tiny_pipeline(CogVideoXPipeline, tiny_cogvideox_components()).save_pretrained(root / "model")
    g = torch.Generator().manual_seed(0)
    base = torch.randn(8, 1, 4, 4, 4, generator=g)
    t = torch.arange(LATENT_FRAMES).view(1, LATENT_FRAMES, 1, 1, 1).float()
    latents = base + 0.8 * t * torch.randn(8, 1, 4, 1, 1, generator=g)  # (8, 4, 4, 4, 4)
    embeds = torch.randn(8, TEXT_LEN, TEXT_DIM, generator=g)
    (root / "cache").mkdir()
    save_file({"latents": latents, "pooled": embeds.mean(1), "prompt_embeds": embeds, "index": torch.arange(8)},
              str(root / "cache" / "shard-00000.safetensors"))
    (root / "cache" / "manifest.json").write_text(json.dumps({
        "family": "cogvideox", "latent_shape": list(latents.shape[1:]), "text_dim": TEXT_DIM,
        "shards": [{"shard": 0, "file": "shard-00000.safetensors", "n": 8, "captions": [""] * 8, "skipped": []}]}))
    return latents, embeds


def write_tiny_sampling_inputs(root: Path) -> Path:
    """What `lamo sample` tests read under ``root``: a tiny CogVideoX pipeline (``model``), a prior trained for it
    (``prior``) and one prompt's embeddings with negatives (``p.safetensors``). Returns ``root``."""
    from diffusers import CogVideoXPipeline

    from lamo.sampling import save_prompt_embeds

    CogVideoXPipeline(**tiny_cogvideox_components()).save_pretrained(root / "model")
    tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox").save_pretrained(root / "prior")
    save_prompt_embeds(root / "p.safetensors", random_prompt_embeds(1, seed=1), random_prompt_embeds(1, seed=2),
                       prompts=["a red ball bounces"])
    return root
