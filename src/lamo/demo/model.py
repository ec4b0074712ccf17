"""The demo's backbone: a real ``CogVideoXPipeline`` at toy size, built offline (docs/design.md §3).

Every part is a genuine class on the CogVideoX code path, so sampling goes through diffusers'
own pipeline and LaMo's pipeline wrapper exactly as with CogVideoX-2B:

* tokenizer — a word-level ``PreTrainedTokenizerFast`` over the world's caption vocabulary (the world's
  captions are templated, so a closed vocabulary covers them; unknown words map to ``<unk>``);
* text encoder — a small ``T5EncoderModel`` (the same class as CogVideoX's T5-XXL), trained with the
  backbone;
* VAE — :class:`~lamo.demo.autoencoder.ConvAutoencoder`, a small learned convolutional space-time
  autoencoder (preset ``world``, the shipped one), or :class:`~lamo.demo.autoencoder.PatchAutoencoder`,
  a closed-form PCA one (presets ``demo`` and ``test``);
* transformer — ``CogVideoXTransformer3DModel`` (v-prediction, ``CogVideoXDDIMScheduler``).

Sizes are one-line presets.
"""
from __future__ import annotations

from dataclasses import dataclass

from .autoencoder import ConvAutoencoder, PatchAutoencoder

__all__ = ["DemoPreset", "DEMO_PRESETS", "build_tokenizer", "build_demo_pipeline", "caption_vocabulary"]


@dataclass(frozen=True)
class DemoPreset:
    """Sizes of the demo backbone and its latent space."""

    frames: int = 16  # video frames
    size: int = 32  # video height = width, pixels
    latent_channels: int = 32
    patch_size: int = 4  # autoencoder spatial patch
    temporal_compression: int = 2  # autoencoder frames per latent frame
    heads: int = 4
    head_dim: int = 32
    layers: int = 6
    transformer_patch: int = 2  # transformer patch on the latent grid
    text_dim: int = 64  # T5 d_model
    text_layers: int = 2
    max_text_len: int = 32
    autoencoder: str = "pca"  # "pca": PatchAutoencoder fitted in closed form; "conv": ConvAutoencoder, trained
    autoencoder_hidden: int = 32  # ConvAutoencoder width

    @property
    def latent_frames(self) -> int:
        return self.frames // self.temporal_compression

    @property
    def num_frames_arg(self) -> int:
        """The ``num_frames`` to pass ``CogVideoXPipeline`` so it makes ``latent_frames`` latent frames."""
        return (self.latent_frames - 1) * self.temporal_compression + 1


DEMO_PRESETS: dict[str, DemoPreset] = {
    "test": DemoPreset(frames=8, size=16, latent_channels=8, heads=2, head_dim=8, layers=1, text_dim=16,
                       text_layers=1, max_text_len=12),
    "test-conv": DemoPreset(frames=8, size=16, latent_channels=8, heads=2, head_dim=8, layers=1, text_dim=16,
                            text_layers=1, max_text_len=12, autoencoder="conv", autoencoder_hidden=8),
    "demo": DemoPreset(),  # the first shipped backbone (PCA latents)
    "world": DemoPreset(latent_channels=16, autoencoder="conv"),  # the shipped backbone (learned latents)
}

SPECIAL_TOKENS = {"<pad>": 0, "</s>": 1, "<unk>": 2}


def caption_vocabulary(captions) -> list[str]:
    """Sorted lower-case words of ``captions`` (whitespace and punctuation split)."""
    import re

    words = set()
    for c in captions:
        words.update(re.findall(r"[a-z0-9]+", c.lower()))
    return sorted(words)


def build_tokenizer(words: list[str]):
    """A word-level fast tokenizer with T5's special tokens (``<pad>`` = 0, ``</s>`` = 1, ``<unk>``)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = dict(SPECIAL_TOKENS)
    for w in words:
        vocab.setdefault(w, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def build_demo_pipeline(preset: DemoPreset | str, words: list[str], autoencoder=None):
    """A randomly initialised ``CogVideoXPipeline`` of the given preset (nothing downloaded)."""
    from diffusers import CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    p = DEMO_PRESETS[preset] if isinstance(preset, str) else preset
    tokenizer = build_tokenizer(words)
    text_encoder = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer), d_model=p.text_dim, d_kv=p.text_dim // 4, d_ff=2 * p.text_dim,
                 num_layers=p.text_layers, num_heads=4, dropout_rate=0.0)
    )
    if p.autoencoder not in ("pca", "conv"):
        raise ValueError(f"unknown autoencoder {p.autoencoder!r}; choose pca or conv")
    vae = autoencoder or (
        PatchAutoencoder(latent_channels=p.latent_channels, patch_size=p.patch_size,
                         temporal_compression_ratio=p.temporal_compression)
        if p.autoencoder == "pca" else
        ConvAutoencoder(latent_channels=p.latent_channels, patch_size=p.patch_size,
                        temporal_compression_ratio=p.temporal_compression, hidden=p.autoencoder_hidden)
    )
    grid = p.size // p.patch_size
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=p.heads, attention_head_dim=p.head_dim, in_channels=p.latent_channels,
        out_channels=p.latent_channels, time_embed_dim=p.heads * p.head_dim, text_embed_dim=p.text_dim,
        num_layers=p.layers, sample_width=grid, sample_height=grid, sample_frames=p.num_frames_arg,
        patch_size=p.transformer_patch, temporal_compression_ratio=p.temporal_compression,
        max_text_seq_length=p.max_text_len,
    )
    # CogVideoX's own schedule: v-prediction, zero terminal SNR, trailing spacing.
    scheduler = CogVideoXDDIMScheduler(
        prediction_type="v_prediction", timestep_spacing="trailing", rescale_betas_zero_snr=True,
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
        set_alpha_to_one=True, snr_shift_scale=1.0,
    )
    return CogVideoXPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                             scheduler=scheduler)
