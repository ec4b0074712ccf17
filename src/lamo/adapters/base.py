"""The one adapter contract every backbone family implements (docs/design.md §2).

Everything outside ``lamo.adapters`` (prior, losses, guidance, data, metrics, trainers) is
backbone-agnostic and talks to a backbone only through a :class:`BackboneAdapter`. An adapter knows:

* the latent layout (``to_bfchw`` / ``from_bfchw``; LaMo's own layout is ``(B, F, C, H, W)``);
* the scheduler's prediction type and noise level at a timestep (ᾱ_t or σ_t), hence ``x̂0`` and ``w(t)``;
* how prompt embeddings are pooled into the prior's condition;
* how to encode videos / prompts with the backbone's VAE / text encoder (for the latent cache);
* one training forward that returns prediction, target and ``x̂0`` (for drift-loss fine-tuning).

Implementations: :mod:`lamo.adapters.cogvideox`, :mod:`lamo.adapters.wan`, :mod:`lamo.adapters.hunyuan_video`,
:mod:`lamo.adapters.ltx` (the flow-matching ones share :class:`FlowMatchAdapter`); look one up with
:func:`lamo.adapters.get_adapter`.

Video frames given to ``encode_video`` are either what :func:`lamo.video_io.read_video` gives
(``uint8``, ``(F, H, W, 3)`` or ``(B, F, H, W, 3)``) or float tensors ``(B, F, 3, H, W)`` in ``[-1, 1]``.
"""
from __future__ import annotations

import itertools
import weakref
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..parametrization import check_prediction_type, per_sample, predict_x0, signal_weight
from ..prior import pool_prompt_embeds

__all__ = [
    "BackboneAdapter", "FlowMatchAdapter", "NoiseLevel", "TrainingForward", "frames_to_vae_input", "text_pipeline",
    "check_training_latents", "randn_like_latents", "generator_device", "on_device", "normalized_family_name",
]

# (id of a scheduler table, device) -> (weak reference to the table, its copy there, table version)
_DEVICE_COPIES: dict[tuple[int, str], tuple[weakref.ref, torch.Tensor, int]] = {}


def on_device(table: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A scheduler table (``alphas_cumprod``, ``sigmas``) on ``device``, copied once and then reused.

    Schedulers keep these tables on the CPU; looking a step's value up there from a GPU timestep, or
    moving it to the GPU each step, makes the host wait for the device at every step. The copy is
    reused while the table is the same tensor, unmodified (``set_timesteps`` replaces ``sigmas``,
    which makes a new copy).
    """
    device = torch.device(device)
    if table.device == device:
        return table
    key = (id(table), str(device))
    hit = _DEVICE_COPIES.get(key)
    if hit is not None and hit[0]() is table and hit[2] == table._version:
        return hit[1]
    for k in [k for k, (ref, _, _) in _DEVICE_COPIES.items() if ref() is None]:
        del _DEVICE_COPIES[k]  # tables that no longer exist
    copy = table.to(device)
    _DEVICE_COPIES[key] = (weakref.ref(table), copy, table._version)
    return copy


@dataclass
class NoiseLevel:
    """A step's noise level: ``alpha_bar`` (ᾱ_t, DDPM family) or ``sigma`` (σ_t, flow), scalar or ``(B,)``."""

    prediction_type: str
    alpha_bar: torch.Tensor | None = None
    sigma: torch.Tensor | None = None

    def kwargs(self) -> dict[str, Any]:
        return {"alpha_bar": self.alpha_bar} if self.sigma is None else {"sigma": self.sigma}


@dataclass
class TrainingForward:
    """One fine-tuning forward pass, all latents in ``(B, F, C, H, W)``.

    Attributes:
        pred: backbone output (what the denoising loss compares to ``target``).
        target: denoising target for ``pred`` (ε, v or flow velocity).
        x0_pred: clean latent implied by ``pred`` (carries gradient; for the drift loss).
        weight: ``(B,)`` signal weight ``w(t)`` of each sample's noise level.
        noise_level: the sampled noise levels.
        noisy: the noisy input ``x_t`` the transformer saw (no gradient).
        timesteps: ``(B,)`` the timesteps given to the transformer.
    """

    pred: torch.Tensor
    target: torch.Tensor
    x0_pred: torch.Tensor
    weight: torch.Tensor
    noise_level: NoiseLevel
    noisy: torch.Tensor | None = None
    timesteps: torch.Tensor | None = None


def frames_to_vae_input(frames: Any, vae: Any) -> torch.Tensor:
    """Video frames → the ``(B, 3, F, H, W)`` tensor in ``[-1, 1]`` a video VAE encodes.

    Accepts ``uint8`` frames ``(F, H, W, 3)`` / ``(B, F, H, W, 3)`` (numpy or torch, as
    :func:`lamo.video_io.read_video` returns them) or a float tensor ``(B, F, 3, H, W)`` already in
    ``[-1, 1]``. The result is on the VAE's device, in its dtype.
    """
    param = next(itertools.chain(vae.parameters(), vae.buffers()))  # a VAE may hold buffers only
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames must be a numpy array or torch tensor, got {type(frames).__name__}")
    if frames.dtype == torch.uint8:
        if frames.ndim == 4:
            frames = frames[None]  # (F, H, W, 3) -> (1, F, H, W, 3)
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(
                f"uint8 frames must be (F, H, W, 3) or (B, F, H, W, 3) RGB, got shape {tuple(frames.shape)}"
            )
        x = frames.to(param.device).permute(0, 4, 1, 2, 3)  # (B, F, H, W, 3) -> (B, 3, F, H, W)
        return (x.float() / 127.5 - 1.0).to(param.dtype)
    if not torch.is_floating_point(frames) or frames.ndim != 5 or frames.shape[2] != 3:
        raise ValueError(
            "frames must be uint8 (F, H, W, 3) / (B, F, H, W, 3), or float (B, F, 3, H, W) in [-1, 1]; "
            f"got {frames.dtype} of shape {tuple(frames.shape)}"
        )
    return frames.to(param.device, param.dtype).permute(0, 2, 1, 3, 4)  # (B, F, 3, H, W) -> (B, 3, F, H, W)


def text_pipeline(pipeline_cls: type, text_source: Any, tokenizer: Any) -> Any:
    """A pipeline whose ``encode_prompt`` can run: ``text_source`` itself, or one built around a text encoder."""
    if hasattr(text_source, "encode_prompt") and hasattr(text_source, "text_encoder"):
        if getattr(text_source, "text_encoder", None) is None or getattr(text_source, "tokenizer", None) is None:
            raise ValueError(
                f"{type(text_source).__name__} has no text encoder / tokenizer (a model saved without them); "
                "encode prompts with a pipeline that has them, or pass the text encoder and tokenizer"
            )
        return text_source
    if tokenizer is None:
        raise ValueError("encode_prompt: pass a pipeline, or a text encoder together with its tokenizer")
    kwargs = dict(tokenizer=tokenizer, text_encoder=text_source, vae=None, transformer=None, scheduler=None)
    return pipeline_cls(**kwargs)


def check_training_latents(latents: torch.Tensor, channels: int, family: str) -> tuple[int, ...]:
    """Raise a clear ``ValueError`` unless ``latents`` is ``(B, F, C, H, W)`` with ``C == channels``.

    Returns the shape ``(B, F, C, H, W)``.
    """
    if not isinstance(latents, torch.Tensor) or latents.ndim != 5:
        shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise ValueError(f"{family} training_forward: latents must be (B, F, C, H, W), got {shape}")
    if latents.shape[2] != channels:
        raise ValueError(
            f"{family} training_forward: latents have {latents.shape[2]} channels (dim 2 of (B, F, C, H, W)) but "
            f"the transformer denoises {channels}; check the layout and that the latents come from this backbone's VAE"
        )
    return tuple(latents.shape)


def normalized_family_name(name: str) -> str:
    """A backbone name as family names are compared: lower case, without LaMo's prefix, ``-``, ``_`` or spaces."""
    return "".join(c for c in name.strip().lower() if c not in "-_ ").removeprefix("lamo")


def generator_device(generator: torch.Generator | None) -> torch.device:
    """Where a draw with ``generator`` happens: its own device (CPU without one), so a seed gives the same
    numbers whatever device the model runs on."""
    return generator.device if generator is not None else torch.device("cpu")


def randn_like_latents(shape: torch.Size, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Gaussian noise of ``shape`` on ``like``'s device and dtype, drawn with ``generator`` (``randn_tensor``)."""
    from diffusers.utils.torch_utils import randn_tensor

    return randn_tensor(shape, generator=generator, device=like.device, dtype=like.dtype)


class BackboneAdapter(ABC):
    """Backbone-specific knowledge behind one interface. Subclasses set ``family`` and ``layout``.

    Adapters hold no state: one instance serves any number of pipelines of its family (an LTX-Video adapter
    bound to a latent grid, :meth:`lamo.adapters.ltx.LTXAdapter.for_grid`, is a value made per call).
    """

    family: str = ""
    layout: str = "BFCHW"  # the backbone's own latent layout: "BFCHW" or "BCFHW"
    # diffusers class-name prefixes of the family's pipelines / transformers (for get_adapter)
    class_prefixes: tuple[str, ...] = ()
    default_max_sequence_length: int = 226  # prompt tokens the family's pipeline encodes

    # ---------------------------------------------------------------- layout
    def to_bfchw(self, latents: torch.Tensor) -> torch.Tensor:
        """Backbone layout → LaMo's ``(B, F, C, H, W)``."""
        if self.layout == "BCFHW":
            return latents.permute(0, 2, 1, 3, 4)  # (B, C, F, H, W) -> (B, F, C, H, W)
        return latents

    def from_bfchw(self, latents: torch.Tensor) -> torch.Tensor:
        """LaMo's ``(B, F, C, H, W)`` → the backbone's layout."""
        if self.layout == "BCFHW":
            return latents.permute(0, 2, 1, 3, 4)  # (B, F, C, H, W) -> (B, C, F, H, W)
        return latents

    # ---------------------------------------------------------------- noise levels
    @abstractmethod
    def prediction_type(self, scheduler: Any) -> str:
        """``"epsilon"``, ``"v_prediction"`` or ``"flow"`` for this scheduler."""

    @abstractmethod
    def noise_level(
        self,
        scheduler: Any,
        timestep: torch.Tensor | float,
        sample: torch.Tensor | None = None,
        step_index: int | None = None,
    ) -> NoiseLevel:
        """The noise level the scheduler uses at ``timestep`` (after any SNR shift).

        ``step_index``: for schedulers that index their noise levels by step (flow matching, UniPC)
        the index into ``scheduler.sigmas``; by default the scheduler's current step, i.e. the step
        its next ``step()`` call will take. ``sample``: tensors are put on its device.
        """

    def x0(self, model_output: torch.Tensor, sample: torch.Tensor, level: NoiseLevel) -> torch.Tensor:
        """``x̂0`` from the scheduler's own parametrisation (tensors in any one layout)."""
        return predict_x0(model_output, sample, level.prediction_type, **level.kwargs())

    def sample_for_x0(self, model_output: torch.Tensor, x0: torch.Tensor, level: NoiseLevel) -> torch.Tensor:
        """The noisy sample ``x_t`` at which ``model_output`` implies the clean latent ``x0`` (inverts :meth:`x0`).

        ``x̂0`` is affine in ``x_t``: flow ``x_t = x0 + σ·v``; v-prediction ``x_t = (x0 + √(1−ᾱ)·v) / √ᾱ``;
        ε-prediction ``x_t = √ᾱ·x0 + √(1−ᾱ)·ε``. Used where part of the latent is known rather than
        denoised (Wan 2.2 TI2V image-to-video keeps the image's latent frame clean), so ``x̂0`` there is the
        known latent. Tensors broadcast; the noise level is a scalar or ``(B,)``.
        """
        pt = check_prediction_type(level.prediction_type)
        like = torch.broadcast_tensors(model_output, x0)[0]
        if pt == "flow":
            return x0 + per_sample(level.sigma, like) * model_output
        a = per_sample(level.alpha_bar, like)
        if pt == "v_prediction":
            return (x0 + (1 - a).sqrt() * model_output) / a.sqrt()
        return a.sqrt() * x0 + (1 - a).sqrt() * model_output

    def signal_weight(self, level: NoiseLevel) -> torch.Tensor:
        """``w(t)``: ᾱ_t (DDPM family) or 1 − σ_t (flow)."""
        return signal_weight(level.prediction_type, **level.kwargs())

    @staticmethod
    def noise_variance(level: NoiseLevel) -> torch.Tensor:
        """``σ²`` of the noise in ``x_t``: ``1 − ᾱ_t`` (DDPM family) or ``σ_t²`` (flow)."""
        if level.sigma is not None:
            return torch.as_tensor(level.sigma).float().pow(2)
        return 1.0 - torch.as_tensor(level.alpha_bar).float()

    def training_noise_stds(self, scheduler: Any) -> torch.Tensor:
        """``(T,)`` noise std of ``x_t`` at each of the scheduler's training timesteps, in ``[0, 1]``:
        ``√(1 − ᾱ_t)`` (DDPM family) or ``σ_t`` (flow). The release's predictor augmentation draws
        from this table (``σ_aug = 0.3·√(1 − ᾱ_t)``, ``t`` uniform)."""
        raise NotImplementedError(f"{type(self).__name__} has no training noise table")

    # ---------------------------------------------------------------- text
    def prompt_mask(self, prompt_embeds: torch.Tensor) -> torch.Tensor | None:
        """``(B, L)`` mask of the tokens that count when pooling, or ``None`` for all of them."""
        return None

    def pool_prompt(self, prompt_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L, D)`` prompt embeddings → ``(B, D)`` prior condition (masked mean, in ≥ fp32).

        Without ``attention_mask`` the family's own :meth:`prompt_mask` decides which tokens count.
        """
        embeds = prompt_embeds.to(torch.promote_types(prompt_embeds.dtype, torch.float32))
        if attention_mask is None:
            attention_mask = self.prompt_mask(prompt_embeds)
        return pool_prompt_embeds(embeds, attention_mask)

    @abstractmethod
    def pipeline_class(self) -> type:
        """The family's diffusers pipeline class (its ``encode_prompt`` defines the prompt embeddings)."""

    def encode_prompt(
        self,
        text_source: Any,
        prompts: str | Sequence[str],
        tokenizer: Any = None,
        max_sequence_length: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Prompts → ``(B, L, D)`` prompt embeddings exactly as the family's pipeline feeds its transformer.

        ``text_source`` is a pipeline of the family (its ``encode_prompt`` is used) or a text encoder,
        then with ``tokenizer``. ``max_sequence_length`` defaults to the pipeline's own default.
        """
        import inspect

        pipe = text_pipeline(self.pipeline_class(), text_source, tokenizer)
        kwargs = dict(
            prompt=[prompts] if isinstance(prompts, str) else list(prompts),
            do_classifier_free_guidance=False,  # only where the family's encode_prompt takes it
            num_videos_per_prompt=1,
            max_sequence_length=max_sequence_length or self.default_max_sequence_length,
            device=device,
            dtype=dtype,
        )
        takes = inspect.signature(pipe.encode_prompt).parameters
        out = pipe.encode_prompt(**{k: v for k, v in kwargs.items() if k in takes})
        return out[0]  # (B, L, D): every family's encode_prompt returns the prompt embeddings first

    # ---------------------------------------------------------------- latents
    @torch.no_grad()
    def encode_video(
        self, vae: Any, frames: Any, generator: torch.Generator | None = None, sample: bool = True
    ) -> torch.Tensor:
        """Video frames → ``(B, F, C, H, W)`` latents in the space the transformer denoises.

        ``frames``: see :func:`frames_to_vae_input`. ``sample``: draw from the VAE's posterior
        (with ``generator``) rather than take its mode. The family's :meth:`normalize_latents` maps the
        VAE's output to the transformer's latent space.
        """
        x = frames_to_vae_input(frames, vae)  # (B, 3, F, H, W) in [-1, 1]
        dist = vae.encode(x).latent_dist
        z = dist.sample(generator) if sample else dist.mode()  # (B, C, F', H', W')
        z = self.normalize_latents(vae, z)
        return z.permute(0, 2, 1, 3, 4).contiguous()  # (B, C, F, H, W) -> (B, F, C, H, W)

    @abstractmethod
    def normalize_latents(self, vae: Any, z: torch.Tensor) -> torch.Tensor:
        """The VAE's ``(B, C, F, H, W)`` output → the transformer's latent space (same shape)."""

    # ---------------------------------------------------------------- training
    def training_forward(
        self,
        transformer: Any,
        scheduler: Any,
        latents_bfchw: torch.Tensor,
        prompt_embeds: torch.Tensor,
        noise: torch.Tensor | None = None,
        timesteps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **text_inputs: Any,
    ) -> TrainingForward:
        """One fine-tuning forward: noise clean latents, run the transformer, return pred / target / ``x̂0``.

        Args:
            transformer: the family's transformer (gradients flow through it).
            scheduler: the family's scheduler (its training noise schedule is used).
            latents_bfchw: ``(B, F, C, H, W)`` clean latents (as :meth:`encode_video` gives them).
            prompt_embeds: ``(B, L, D)`` prompt embeddings (as :meth:`encode_prompt` gives them).
            noise: ``(B, F, C, H, W)`` Gaussian noise; drawn with ``generator`` when ``None``.
            timesteps: ``(B,)`` timesteps in the scheduler's units (``[0, num_train_timesteps)``);
                drawn with ``generator`` when ``None``.
            generator: RNG for the draws.
            text_inputs: what else the family's transformer takes from the text encoders (HunyuanVideo:
                ``pooled_prompt_embeds``, ``prompt_attention_mask``; LTX-Video: ``prompt_attention_mask``).

        What every family shares happens here — the latent checks, the noise draw, ``x̂0`` from the
        prediction (in ≥ fp32: bf16 loses small drifts) and the weight ``w(t)``; the family says what
        differs in :meth:`training_noise` (which noise levels) and :meth:`denoise_for_training` (how
        ``x_t`` is made, how the transformer is called, what it is trained towards).
        """
        latents = latents_bfchw
        B = check_training_latents(latents, self.latent_channels(transformer), self.family)[0]
        if self.is_image_to_video(transformer):
            raise ValueError(
                f"{type(self).__name__}: the transformer takes {transformer.config.in_channels} input channels "
                f"({latents.shape[2]} latent + {self.condition_channels(transformer)} condition channels): "
                "image-to-video models are not supported by training_forward"
            )
        if noise is None:
            noise = randn_like_latents(latents.shape, generator, latents)
        timesteps, level = self.training_noise(scheduler, B, timesteps, generator, like=latents)
        noisy, pred, target = self.denoise_for_training(transformer, scheduler, latents, noise, timesteps, level,
                                                        prompt_embeds, **text_inputs)
        dtype = torch.promote_types(pred.dtype, torch.float32)  # x̂0 in ≥ fp32 (bf16 loses small drifts)
        x0_pred = self.x0(pred.to(dtype), noisy.to(dtype), level)
        return TrainingForward(pred=pred, target=target, x0_pred=x0_pred, weight=self.signal_weight(level),
                               noise_level=level, noisy=noisy, timesteps=timesteps)

    @abstractmethod
    def training_noise(
        self, scheduler: Any, batch: int, timesteps: torch.Tensor | None, generator: torch.Generator | None,
        like: torch.Tensor,
    ) -> tuple[torch.Tensor, NoiseLevel]:
        """``(timesteps (B,), their NoiseLevel)`` for a training batch, on ``like``'s device: the given
        ``timesteps`` (scheduler units), or a draw from the family's training distribution with ``generator``
        (on the generator's device, see :func:`generator_device`)."""

    @abstractmethod
    def denoise_for_training(
        self, transformer: Any, scheduler: Any, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
        level: NoiseLevel, prompt_embeds: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_t, pred, target)``, each ``(B, F, C, H, W)``: noise ``latents`` to ``level``, run the transformer
        as the family's pipeline does, and give the denoising target ``pred`` is trained towards."""

    # ---------------------------------------------------------------- priors
    def check_prior(self, prior: Any, transformer: Any) -> None:
        """Raise a ``ValueError`` (``TypeError`` for a non-prior) unless ``prior`` fits this backbone.

        Checked: latent channels (the ``C`` the transformer denoises, :meth:`latent_channels`; an
        image-to-video transformer's concatenated condition channels do not count), prompt embedding
        width, and the family named in ``prior.config.backbone`` (when set; a name starting with
        :attr:`family` counts as it).
        """
        from ..prior import MotionPrior

        if not isinstance(prior, MotionPrior):
            raise TypeError(f"motion prior must be a lamo.MotionPrior, got {type(prior).__name__}")
        # A prior names its backbone freely ("cogvideox", "cogvideox-2b", "wan2.1-1.3b"): any name that
        # starts with this family's name belongs to it; channel and text-width checks do the rest.
        trained_for = normalized_family_name(prior.config.backbone or "")
        same_family = not trained_for or trained_for.startswith(self.family)
        prior.check_compatible(self.latent_channels(transformer), self.text_embed_dim(transformer),
                               None if same_family else self.family)

    # ---------------------------------------------------------------- dims
    def latent_channels(self, transformer: Any) -> int:
        """Latent channel count ``C`` the backbone denoises: what it *predicts* (its ``out_channels``).

        The prior, the drift loss and guidance act on these ``C`` channels only — also for image-to-video
        transformers, which take more input channels (see :meth:`condition_channels`).
        """
        return int(transformer.config.out_channels or transformer.config.in_channels)

    def input_channels(self, transformer: Any) -> int:
        """Channels the transformer takes: ``C``, plus any condition concatenated to the noisy latent."""
        return int(transformer.config.in_channels)

    def condition_channels(self, transformer: Any) -> int:
        """Channels of the condition an image-to-video transformer takes beside the ``C`` noisy ones (0 for
        text-to-video): CogVideoX I2V ``C`` (the image latents, ``in_channels = 2·C``); Wan 2.1 / 2.2 I2V
        ``C + 4`` (a 4-channel first-frame mask and the image latents, ``in_channels = 2·C + 4``). Wan 2.2
        TI2V-5B puts its image in the first latent frame instead (``expand_timesteps``): 0 here."""
        return self.input_channels(transformer) - self.latent_channels(transformer)

    def is_image_to_video(self, transformer: Any) -> bool:
        """Whether the transformer takes a concatenated image condition (:meth:`condition_channels` > 0)."""
        return self.condition_channels(transformer) > 0

    @abstractmethod
    def text_embed_dim(self, transformer: Any) -> int:
        """Width ``D`` of the prompt embeddings the backbone takes."""


class FlowMatchAdapter(BackboneAdapter):
    """What the flow-matching families (Wan, HunyuanVideo, LTX-Video) share.

    * **Prediction**: flow velocity ``v = ε − x0`` with ``x_t = (1 − σ)·x0 + σ·ε``, so ``x̂0 = x_t − σ_t·v``.
    * **Noise level**: ``σ_t = scheduler.sigmas[step_index]`` — flow schedulers (``FlowMatchEulerDiscreteScheduler``,
      UniPC with flow sigmas) index their shifted sigmas by step, and compute ``x̂0`` from exactly that σ in
      ``step``. The step index is the scheduler's own counter (``step_index``; before its first step,
      ``begin_index`` or the timestep's position, as the scheduler itself would initialise it).
    * **Training**: ``σ = s·u / (1 + (s − 1)·u)``, ``u ~ U(0, 1)`` with the scheduler's shift ``s``, timestep
      ``σ·N``; ``x_t = (1 − σ)·x0 + σ·ε`` (:meth:`flow_noisy`), target ``ε − x0``.
    """

    def prediction_type(self, scheduler: Any) -> str:
        pt = scheduler.config.get("prediction_type")
        if pt is None or "FlowMatch" in type(scheduler).__name__:
            return "flow"  # flow-matching schedulers have no prediction_type: they integrate a velocity
        raise ValueError(f"{type(self).__name__}: {type(scheduler).__name__} is not a flow-matching scheduler "
                         f"(prediction_type {pt!r}); use FlowMatchEulerDiscreteScheduler, the family's own")

    def step_index(self, scheduler: Any, timestep: torch.Tensor | float) -> int:
        """The index into ``scheduler.sigmas`` its next ``step(…, timestep, …)`` call will use."""
        if getattr(scheduler, "step_index", None) is not None:
            return int(scheduler.step_index)
        if getattr(scheduler, "begin_index", None) is not None:
            return int(scheduler.begin_index)
        if not hasattr(scheduler, "index_for_timestep"):
            raise ValueError(f"cannot tell which step {type(scheduler).__name__} is at; pass step_index=")
        t = torch.as_tensor(timestep).to(scheduler.timesteps.device)
        return int(scheduler.index_for_timestep(t))

    def noise_level(self, scheduler: Any, timestep: torch.Tensor | float, sample: torch.Tensor | None = None,
                    step_index: int | None = None) -> NoiseLevel:
        """``σ_t = scheduler.sigmas[step_index]`` (flow); for a non-flow sigma scheduler, ``ᾱ_t = 1 / (1 + σ²)``."""
        pt = self.prediction_type(scheduler)
        if step_index is None:
            step_index = self.step_index(scheduler, timestep)
        sigmas = scheduler.sigmas if sample is None else on_device(scheduler.sigmas, sample.device)
        sigma = sigmas[step_index].float()  # a Python index: no host sync
        if pt == "flow":
            return NoiseLevel(pt, sigma=sigma)
        return NoiseLevel(pt, alpha_bar=1.0 / (1.0 + sigma**2))  # VE σ = √((1−ᾱ)/ᾱ)

    def training_shift(self, scheduler: Any) -> float:
        """The σ shift ``s`` the sampler applies (UniPC ``flow_shift`` / FlowMatchEuler ``shift``; 1 = none)."""
        cfg = scheduler.config
        if cfg.get("use_flow_sigmas", False):
            return float(cfg.get("flow_shift", 1.0))
        return float(cfg.get("shift", 1.0))

    def training_noise_stds(self, scheduler: Any) -> torch.Tensor:
        """``σ_t`` on the grid ``u = 1/N … 1`` with the sampler's shift (``training_forward``'s σ law)."""
        n = int(scheduler.config.num_train_timesteps)
        u = torch.arange(1, n + 1, dtype=torch.float64) / n
        s = self.training_shift(scheduler)
        return (s * u / (1 + (s - 1) * u)).float()

    def training_noise(
        self, scheduler: Any, batch: int, timesteps: torch.Tensor | None, generator: torch.Generator | None,
        like: torch.Tensor,
    ) -> tuple[torch.Tensor, NoiseLevel]:
        """``σ = s·u/(1+(s−1)·u)``, ``u ~ U(0, 1)`` with the sampler's shift ``s`` (timestep ``σ·N``), or
        ``σ = t / N`` for given ``timesteps`` in ``[0, N]``."""
        num_train = scheduler.config.num_train_timesteps
        if timesteps is None:
            u = torch.rand(batch, generator=generator, device=generator_device(generator)).to(like.device)  # (B,)
            s = self.training_shift(scheduler)
            sigma = s * u / (1 + (s - 1) * u)
            timesteps = sigma * num_train
        else:
            timesteps = torch.as_tensor(timesteps, device=like.device).float().expand(batch)  # (B,)
            sigma = timesteps / num_train
        return timesteps, NoiseLevel("flow", sigma=sigma.float())

    @staticmethod
    def flow_noisy(x0: torch.Tensor, noise: torch.Tensor, level: NoiseLevel) -> torch.Tensor:
        """``x_t = (1 − σ)·x0 + σ·ε`` with a ``(B,)`` σ, in any 5-D layout."""
        s_b = level.sigma.to(x0.dtype).view(x0.shape[0], 1, 1, 1, 1)
        return (1 - s_b) * x0 + s_b * noise
