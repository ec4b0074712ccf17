"""Motion Prior Guidance inside diffusers' own denoising loop (docs/design.md §1.5, §2).

A LaMo pipeline is the stock diffusers pipeline plus :class:`MotionGuidedPipelineMixin`. For the
duration of one call with guidance on, :class:`GuidedSchedulerStep` wraps bound methods:

* ``scheduler.step`` — it receives exactly what guidance needs: the CFG-mixed model output ``o``,
  the timestep and the noisy latent ``x_t``. At guided steps the wrapper computes
  ``o ← o − λ·∇_o L_guide`` (or, ``mode="latent"``, ``x_t ← x_t − λ·∇_{x_t} L_guide``) with
  :class:`~lamo.guidance.MotionPriorGuidance` and hands the result to the real ``step``. Outside the
  window the very same tensors are passed through, so the trajectory is bit-identical there.
* ``pipe.encode_prompt`` — to capture the *conditional* prompt embeddings the transformer sees
  (after ``num_videos_per_prompt`` repetition, before CFG concatenation), which the adapter pools
  into the prior's condition.
* ``pipe.prepare_latents`` (where the pipeline has one) — to learn which latent entries are known
  rather than denoised (:meth:`MotionGuidedPipelineMixin.motion_guidance_known_latents`; Wan 2.2
  TI2V's image frame). Its output is passed on untouched.

Image-to-video pipelines feed the transformer the noisy latents *and* an image condition, but the
scheduler steps — and guidance corrects — only the ``C`` denoised channels. Wan 2.2 A14B switches from
``transformer`` to ``transformer_2`` at a boundary timestep; ``step`` receives whichever one's output,
and :class:`GuidanceRecord` names it.

The diffusers loop itself is not copied, so LaMo follows diffusers' releases. The wraps are
undone when the call ends, also on an exception. The step's index is the number of ``step`` calls so
far in this call and ``S = len(scheduler.timesteps)``; any scheduler ``step`` signature works
(``CogVideoXDPMScheduler.step(model_output, old_pred_original_sample, timestep, timestep_back,
sample, …)`` differs from DDIM's) because arguments are bound by name.

The gradient graph holds ``x̂0(o)`` and the prior only: the transformer ran under the pipeline's
``torch.no_grad()`` before ``step`` was called, so its output is a leaf without history.
"""
from __future__ import annotations

import functools
import inspect
import logging
import math
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from ..adapters.base import BackboneAdapter
from ..guidance import GUIDANCE_MODES, GUIDANCE_REDUCTIONS, GUIDANCE_SCHEDULES, WINDOW_ROUNDINGS, MotionPriorGuidance
from ..prior import MotionPrior

__all__ = ["GuidanceRecord", "GuidedSchedulerStep", "MotionGuidedPipelineMixin", "NonFiniteGuidanceError",
           "RELEASE_GUIDANCE_KWARGS", "RELEASE_SAMPLING_KWARGS"]

# The authors' sampling-time guidance (docs/design.md §8) as call arguments of a LaMo pipeline; with a
# release-architecture prior (τ = 1) it is their update to fp32 round-off (tests/test_release_parity.py).
RELEASE_GUIDANCE_KWARGS: dict[str, Any] = dict(
    motion_guidance_scale=15.0, motion_guidance_window=0.8, motion_guidance_reduction="element_mean",
    motion_guidance_window_rounding="release",
)
# ... and their sampling setting on CogVideoX-2B: 50 steps, CFG 6 with dynamic CFG, 49 frames, 720×480
# (their scheduler, DPM with trailing timesteps, is lamo.pipelines.release.use_release_sampling).
RELEASE_SAMPLING_KWARGS: dict[str, Any] = dict(num_inference_steps=50, guidance_scale=6.0, use_dynamic_cfg=True,
                                               num_frames=49, height=480, width=720, **RELEASE_GUIDANCE_KWARGS)
_log = logging.getLogger("lamo.pipelines")


@dataclass
class GuidanceRecord:
    """One denoising step as guidance saw it (``pipe.motion_guidance_history`` holds one per step).

    Attributes:
        step: 0-based step index ``s`` of ``S``.
        timestep: the scheduler's timestep at that step (a float once the call has finished).
        guided: whether the step was corrected (``s ≥ (1 − ρ)·S`` and ``λ > 0``).
        loss: ``(B,)`` per-sample ``L_b`` of ``x̂0`` *before* this step's correction (detached,
            on the sampling device; ``loss.sum()`` — ``loss.mean()`` with the ``"element_mean"``
            reduction — is the ``L_guide`` that λ multiplies).
        transformer: the pipeline component whose output the step received: ``"transformer"``, or
            ``"transformer_2"`` in Wan 2.2's low-noise stage (set once the call has finished).
    """

    step: int
    timestep: float
    guided: bool
    loss: torch.Tensor
    transformer: str | None = None


class NonFiniteGuidanceError(ValueError):
    """Motion prior guidance met NaN/inf; raised once the denoising loop has finished."""


@contextmanager
def _patched(obj: Any, name: str, replacement: Any) -> Iterator[None]:
    """Set ``obj.name = replacement`` (an instance attribute) and restore what was there on exit."""
    had_own = name in vars(obj)
    previous = vars(obj).get(name)
    setattr(obj, name, replacement)
    try:
        yield
    finally:
        if had_own:
            setattr(obj, name, previous)
        else:
            delattr(obj, name)


class GuidedSchedulerStep:
    """Context manager that guides every ``pipe.scheduler.step`` call of one pipeline call.

    Args:
        pipe: a diffusers pipeline with ``scheduler`` and ``encode_prompt``.
        adapter: the backbone's adapter (layout, noise level, prompt pooling).
        guidance: the configured :class:`~lamo.guidance.MotionPriorGuidance` (λ may be 0 with ``record``).
        record: also measure ``L_guide`` (without changing anything) at steps that are not guided.
        history: list that receives one :class:`GuidanceRecord` per measured step.
    """

    def __init__(
        self,
        pipe: Any,
        adapter: BackboneAdapter,
        guidance: MotionPriorGuidance,
        record: bool = False,
        history: list[GuidanceRecord] | None = None,
    ):
        self.pipe = pipe
        self.adapter = adapter
        self.scheduler = pipe.scheduler
        self.guidance = guidance
        self.record = record
        self.history = [] if history is None else history
        self.calls = 0
        self.prompt_embeds: torch.Tensor | None = None
        self._cond: torch.Tensor | None = None
        # (denoised, values) in (B, F, C, H, W), broadcastable: latent entries that are known, not denoised
        self.known: tuple[torch.Tensor, torch.Tensor] | None = None
        self._finite: list[tuple[int, torch.Tensor]] = []  # (step, device-side verdict), read after the loop
        self._stack = ExitStack()

    # ---------------------------------------------------------------- install / restore
    def __enter__(self) -> "GuidedSchedulerStep":
        step = self.scheduler.step  # the bound method diffusers would call
        signature = inspect.signature(step)
        missing = {"model_output", "timestep", "sample"} - set(signature.parameters)
        if missing:
            raise TypeError(
                f"{type(self.scheduler).__name__}.step has no {sorted(missing)} argument(s); motion guidance "
                "needs a scheduler whose step takes model_output, timestep and sample"
            )
        encode_prompt = self.pipe.encode_prompt

        # functools.wraps keeps the signature visible (inspect follows __wrapped__): pipelines inspect
        # it to decide whether to pass `eta` / `generator`, and must decide exactly as without LaMo.
        @functools.wraps(step)
        def guided_step(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            self._guide(bound.arguments)
            return step(*bound.args, **bound.kwargs)

        @functools.wraps(encode_prompt)
        def capturing_encode_prompt(*args: Any, **kwargs: Any) -> Any:
            out = encode_prompt(*args, **kwargs)
            if self.prompt_embeds is None:
                self.prompt_embeds = out[0]  # conditional prompt embeddings (B·n, L, D)
            return out

        self._stack.enter_context(_patched(self.scheduler, "step", guided_step))
        self._stack.enter_context(_patched(self.pipe, "encode_prompt", capturing_encode_prompt))
        known_latents = getattr(self.pipe, "motion_guidance_known_latents", None)
        prepare_latents = getattr(self.pipe, "prepare_latents", None)
        if known_latents is not None and prepare_latents is not None:
            @functools.wraps(prepare_latents)
            def capturing_prepare_latents(*args: Any, **kwargs: Any) -> Any:
                out = prepare_latents(*args, **kwargs)
                known = known_latents(out)  # backbone layout, or None
                if known is not None:
                    denoised, values = known
                    self.known = (self.adapter.to_bfchw(denoised).bool(), self.adapter.to_bfchw(values))
                return out

            self._stack.enter_context(_patched(self.pipe, "prepare_latents", capturing_prepare_latents))
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        suppress = self._stack.__exit__(*exc)
        self._finish(raise_errors=exc[0] is None)
        return suppress

    def _finish(self, raise_errors: bool) -> None:
        """After the loop: the host reads what the steps left on the device, in one go.

        Timesteps become floats, and the deferred NaN/inf verdicts of the guided steps are checked —
        so a guided step itself never waits for the device.
        """
        pending = [r for r in self.history if isinstance(r.timestep, torch.Tensor)]
        if pending:
            values = torch.stack([r.timestep.reshape(-1)[0].float() for r in pending]).tolist()  # one sync
            for record, value in zip(pending, values):
                record.timestep = value
        denoiser = getattr(self.pipe, "motion_guidance_denoiser", None)
        for record in self.history:
            if record.transformer is None and denoiser is not None:
                record.transformer = denoiser(record.timestep)
        if self._finite and raise_errors:
            flags = torch.stack([f for _, f in self._finite]).tolist()  # one sync
            bad = [step for (step, _), ok in zip(self._finite, flags) if not ok]
            self._finite = []
            if bad:
                raise NonFiniteGuidanceError(
                    f"motion prior guidance met NaN/inf in its loss or gradient at denoising step(s) {bad} "
                    f"of {len(self.scheduler.timesteps)}; the video is not usable. Check the inputs and the "
                    "dtype (fp16 overflows easily; prefer bf16 or fp32), or lower motion_guidance_scale."
                )

    # ---------------------------------------------------------------- one step
    def condition(self, batch: int, device: torch.device) -> torch.Tensor | None:
        """``(B, D)`` pooled conditional prompt embedding, one row per latent in the batch."""
        if self._cond is None:
            if self.prompt_embeds is None:
                warnings.warn("motion guidance: the pipeline did not call encode_prompt; the prior uses its "
                              "learned null condition", stacklevel=3)
                return None
            pooled = self.adapter.pool_prompt(self.prompt_embeds)  # (B_p, L, D) -> (B_p, D)
            if batch % pooled.shape[0]:
                raise ValueError(
                    f"motion guidance: {pooled.shape[0]} prompt embeddings for a batch of {batch} latents"
                )
            # diffusers repeats each prompt num_videos_per_prompt times consecutively
            self._cond = pooled.repeat_interleave(batch // pooled.shape[0], dim=0).to(device)  # (B, D)
        return self._cond

    def _guide(self, arguments: dict[str, Any]) -> None:
        """Guide one ``step`` call in place on its bound ``arguments`` (``model_output`` or ``sample``)."""
        step_index, num_steps = self.calls, len(self.scheduler.timesteps)
        self.calls += 1
        active = self.guidance.is_active(step_index, num_steps)
        if not (active or self.record):
            return  # pass the very same tensors through
        output, timestep, sample = arguments["model_output"], arguments["timestep"], arguments["sample"]
        level = self.adapter.noise_level(self.scheduler, timestep, sample=sample)  # before step() advances
        cond = self.condition(output.shape[0], output.device)
        o = self.adapter.to_bfchw(output)  # backbone layout -> (B, F, C, H, W)
        x = self.adapter.to_bfchw(sample)  # backbone layout -> (B, F, C, H, W)
        x_guide = x
        if self.known is not None:
            # where the latent is known, read x̂0 as the known value: the x_t at which o implies it there
            denoised, values = self.known
            with torch.no_grad():
                at_known = self.adapter.sample_for_x0(o.float(), values.to(o.device).float(), level)
            x_guide = torch.where(denoised.to(x.device), x.float(), at_known)  # (B, F, C, H, W), fp32
        if active:
            result = self.guidance(o, x_guide, step_index=step_index, num_steps=num_steps,
                                   prediction_type=level.prediction_type, cond=cond, **level.kwargs())
            loss = result.loss
            if result.finite is not None:
                self._finite.append((step_index, result.finite))
            if self.guidance.mode == "output":
                new = result.model_output
                if self.known is not None:  # known entries are not denoised: leave their output alone
                    new = torch.where(self.known[0].to(o.device), new, o)
                arguments["model_output"] = self.adapter.from_bfchw(new).contiguous()
            else:
                new = result.sample
                if self.known is not None:
                    new = torch.where(self.known[0].to(x.device), new, x).to(x.dtype)
                arguments["sample"] = self.adapter.from_bfchw(new).contiguous()
        else:
            with torch.no_grad():
                loss = self.guidance.loss(o, x_guide, level.prediction_type, cond=cond, **level.kwargs())
        # a tensor timestep is read back after the loop (float() here would wait for the device)
        timestep = timestep.detach() if isinstance(timestep, torch.Tensor) else float(timestep)
        self.history.append(GuidanceRecord(step_index, timestep, active, loss.detach()))


# ---------------------------------------------------------------------------------------- mixin
class MotionGuidedPipelineMixin:
    """Adds Motion Prior Guidance to a diffusers video pipeline without touching its loop.

    Subclasses list this mixin first and set :attr:`adapter`, e.g.
    ``class LaMoCogVideoXPipeline(MotionGuidedPipelineMixin, CogVideoXPipeline)``. Construction,
    ``from_pretrained`` / ``save_pretrained`` and every call argument are the parent's; the prior is not
    a pipeline component (it is neither saved nor moved by ``.to()``; each call moves it to the
    execution device).
    """

    adapter: BackboneAdapter
    _motion_prior: MotionPrior | None = None

    # ---------------------------------------------------------------- the prior
    @property
    def backbone_transformers(self) -> dict[str, Any]:
        """The pipeline's denoisers by component name: ``transformer`` and, for Wan 2.2 A14B, ``transformer_2``."""
        found = {name: getattr(self, name, None) for name in ("transformer", "transformer_2")}
        return {name: module for name, module in found.items() if module is not None}

    @property
    def backbone_transformer(self) -> Any:
        """The transformer whose dims the prior must match (Wan 2.2 may only have ``transformer_2``)."""
        return next(iter(self.backbone_transformers.values()), None)

    def check_motion_prior(self, prior: MotionPrior) -> None:
        """Raise a ``ValueError`` naming the mismatch if ``prior`` was trained for another backbone.

        Checked against every denoiser the pipeline holds (both of Wan 2.2 A14B's): guidance may act on
        either one's output.
        """
        transformers = self.backbone_transformers
        if not transformers:
            raise ValueError(f"{type(self).__name__} has no transformer to check the motion prior against")
        for transformer in transformers.values():
            self.adapter.check_prior(prior, transformer)

    def motion_guidance_denoiser(self, timestep: float) -> str:
        """Name of the component that denoises at ``timestep``: diffusers' Wan 2.2 rule (``transformer`` at
        ``t ≥ boundary_ratio · num_train_timesteps``, ``transformer_2`` below), else ``transformer``."""
        boundary_ratio = self.config.get("boundary_ratio")
        if boundary_ratio is None:
            return "transformer"
        boundary = boundary_ratio * self.scheduler.config.num_train_timesteps
        return "transformer" if timestep >= boundary else "transformer_2"

    def motion_guidance_known_latents(self, prepared: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Latent entries that are given, not denoised, from what ``prepare_latents`` returned.

        ``None`` (the default): every entry is denoised. Otherwise ``(denoised, values)`` in the
        backbone's layout, broadcastable to the latents: ``denoised`` is 1 where the latent is denoised
        and 0 where it is ``values``; guidance then reads ``x̂0 = values`` there and leaves those entries'
        output alone.
        """
        return None

    @property
    def motion_prior(self) -> MotionPrior | None:
        """The default prior used when a call passes no ``motion_prior=`` (checked when set)."""
        return self._motion_prior

    @motion_prior.setter
    def motion_prior(self, prior: MotionPrior | None) -> None:
        if prior is not None:
            self.check_motion_prior(prior)
        self._motion_prior = prior

    def load_motion_prior(self, path: str, *, transformer_loaded: bool = False, **kwargs: Any) -> MotionPrior:
        """Load a prior saved with ``MotionPrior.save_pretrained``, check it fits, and make it the default.

        Without ``torch_dtype=`` the prior runs in bf16 beside a bf16 transformer (measured fastest on
        a GPU: benchmarks/README.md) and in fp32 otherwise; guidance itself is taken in fp32 either way.
        A folder that also holds a fine-tuned ``transformer/`` (the release's full fine-tune) is refused — it
        would load the prior alone — unless ``transformer_loaded`` (what :func:`lamo.convert.load_release`
        passes once it has put that transformer into the pipeline).
        """
        from pathlib import Path

        folder = Path(str(path))
        if not transformer_loaded and (folder / "transformer").is_dir() and ((folder / "predictor.safetensors").is_file()
                                                  or (folder / "config.json").is_file()):
            from ..errors import InputError

            raise InputError(f"{folder} holds a fine-tuned transformer ({folder / 'transformer'}) beside its motion "
                             "prior; load_motion_prior would load the prior alone. Load both with "
                             "lamo.convert.load_release(pipe, folder), or pass a pipeline folder holding that "
                             "transformer as the model")
        if "torch_dtype" not in kwargs and "dtype" not in kwargs:
            bf16 = getattr(self.backbone_transformer, "dtype", None) == torch.bfloat16
            kwargs["torch_dtype"] = torch.bfloat16 if bf16 else torch.float32
        prior = MotionPrior.from_pretrained(path, **kwargs)
        self.motion_prior = prior
        return prior

    def enable_memory_savings(self, cpu_offload: str = "none", vae_slicing: bool = False, vae_tiling: bool = False,
                              device: Any = None) -> Any:
        """Model / sequential CPU offload and VAE slicing / tiling through diffusers' own switches
        (:func:`lamo.pipelines.settings.configure_memory`); returns the pipeline. Guidance follows the offload."""
        from .settings import configure_memory

        return configure_memory(self, cpu_offload=cpu_offload, vae_slicing=vae_slicing, vae_tiling=vae_tiling,
                                device=device)

    @property
    def motion_guidance_history(self) -> list[GuidanceRecord]:
        """:class:`GuidanceRecord` of each guided (or, with ``motion_guidance_record``, each) step of the last call."""
        return self.__dict__.setdefault("_motion_guidance_history", [])

    @property
    def motion_guidance_settings(self) -> dict[str, dict[str, Any]]:
        """What the last call sampled with: ``{"values": {...}, "sources": {...}}``.

        ``values`` holds λ, ρ, ``num_inference_steps``, ``guidance_scale`` (:data:`~lamo.prior.SAMPLING_KEYS`),
        the sizes (``num_frames``, ``height``, ``width``, ``max_sequence_length``) and the other guidance
        options; ``sources`` says for each of the first ones and the sizes where it came from: ``"caller"``,
        ``"prior"`` (its ``sampling.json``), ``"config"`` (the model's config) or ``"default"``.
        """
        return self.__dict__.setdefault("_motion_guidance_settings", {"values": {}, "sources": {}})

    def _motion_guidance_fill(self, prior: MotionPrior | None, args: tuple, kwargs: dict[str, Any],
                              scale: float | None, window: float | None) -> dict[str, Any]:
        """The stock call's kwargs with what the caller left out filled in (steps and CFG from the prior, sizes
        from the model's config); records :attr:`motion_guidance_settings` and logs it."""
        from .settings import describe_settings, model_sizes, pipeline_family, resolve_sampling_settings, stock_call

        parameters = list(inspect.signature(stock_call(self)).parameters)[1:]  # without self
        passed = set(kwargs) | set(parameters[:len(args)])

        def given(name: str) -> Any:
            return kwargs.get(name) if name in kwargs else (args[parameters.index(name)] if name in passed else None)

        values, sources = resolve_sampling_settings(
            self, prior, motion_guidance_scale=scale, motion_guidance_window=window,
            num_inference_steps=given("num_inference_steps"), guidance_scale=given("guidance_scale"))
        kwargs = dict(kwargs)
        for name in ("num_inference_steps", "guidance_scale"):
            if sources[name] == "prior":
                kwargs[name] = values[name]
        sizes = {"num_frames": "frames", "height": "height", "width": "width", "max_sequence_length": "text_len"}
        config_sizes = model_sizes(self) if pipeline_family(self) == "cogvideox" else None
        stock_defaults = {k: v.default for k, v in inspect.signature(stock_call(self)).parameters.items()}
        for name, key in sizes.items():
            if name not in parameters:
                continue
            if name in passed and given(name) is not None:
                values[name], sources[name] = given(name), "caller"
            elif config_sizes is not None:
                kwargs[name] = values[name] = config_sizes[key]
                sources[name] = "config"
            else:
                values[name], sources[name] = stock_defaults[name], "default"
        self.__dict__["_motion_guidance_settings"] = {"values": values, "sources": sources}
        # what the call filled in itself is worth a line; a call that gave everything (a sweep's) is not
        level = logging.INFO if set(sources.values()) - {"caller"} else logging.DEBUG
        _log.log(level, "%s sampling with %s", type(self).__name__, describe_settings(values, sources))
        return kwargs

    # ---------------------------------------------------------------- the call
    def __call__(
        self,
        *args: Any,
        motion_prior: MotionPrior | None = None,
        motion_guidance_scale: float | None = None,
        motion_guidance_window: float | None = None,
        motion_guidance_mode: str = "output",
        motion_guidance_record: bool = False,
        motion_guidance_activation_gib: float | None = 2.0,
        motion_guidance_reduction: str = "sum",
        motion_guidance_window_rounding: str = "ceil",
        motion_guidance_stop_gradient: bool = False,
        motion_guidance_schedule: str = "constant",
        motion_guidance_more_priors: tuple[MotionPrior, ...] | list[MotionPrior] = (),
        **kwargs: Any,
    ) -> Any:
        """The parent pipeline's call (same arguments, same output) with Motion Prior Guidance.

        Args:
            motion_prior: the :class:`~lamo.MotionPrior` to guide with; defaults to ``self.motion_prior``.
            motion_guidance_scale: λ ≥ 0; 0 turns guidance off (the output is the stock pipeline's, bit for
                bit). ``None`` (the default): the prior's recorded value (``prior.sampling_settings``), else
                1.0 with a prior and 0 without. λ is defined per sample and per latent element so it means
                the same at any batch size and resolution; see :mod:`lamo.guidance`.
            motion_guidance_window: ρ ∈ [0, 1]; steps ``s ≥ (1 − ρ)·S`` are guided (0.8 skips the
                noisiest 20 %). ``None`` (the default): the prior's recorded value, else 0.8.
            motion_guidance_mode: ``"output"`` (correct the model output, the method) or ``"latent"``
                (correct ``x_t``, the paper's direct-latent-edit ablation).
            motion_guidance_record: also measure ``L_guide`` at unguided steps (all steps when λ = 0),
                without changing the output — for baselines and plots.
            motion_guidance_activation_gib: most GiB of prior activations held at once; the τ-pairs go
                through the prior in as few calls as fit (``None``: one call). Same result either way;
                fewer calls are faster on a GPU, more hold less memory.
            motion_guidance_reduction: ``"sum"`` (λ means the same at any batch and latent size) or
                ``"element_mean"`` (the authors' release: one mean over every element of the batch).
            motion_guidance_window_rounding: ``"ceil"`` (first guided step ``⌈(1 − ρ)·S⌉``), ``"floor"``
                (``⌊(1 − ρ)·S⌋``) or ``"release"`` (the authors' ``int((1.0 − ρ)·S)`` in floating point: from
                step 9 of 50 at ρ = 0.8).
            motion_guidance_stop_gradient: ``True``: the one-sided residual
                ``sg(x̂0_i + f_φ(x̂0_i)) − x̂0_{i+τ}`` (the prior's prediction is a fixed target; only the later
                frame of each pair is pulled); ``False`` (the default): both sides move.
            motion_guidance_schedule: ``"constant"`` (the default: λ at every guided step) or ``"noise"``
                (``λ·√(1 − ᾱ_t)``, ``λ·σ_t`` for flow models: the correction fades as the sample gets clean).
            motion_guidance_more_priors: further priors (each trained for this backbone, each at a lag of its
                own) guiding in the same steps: several lags at once, their losses summed under one λ.

        Settings the caller leaves out come from the prior, then from defaults
        (:func:`lamo.pipelines.settings.resolve_sampling_settings`): λ and ρ as above, and — whenever a prior
        is given, λ = 0 included, so a λ = 0 baseline is sampled like its guided arm — ``num_inference_steps``
        and ``guidance_scale`` from the prior's ``sampling.json`` (else the stock pipeline's defaults).
        ``num_frames``, ``height``, ``width`` and ``max_sequence_length`` left out come from the model's
        own config (:func:`~lamo.pipelines.settings.model_sizes`; for the published CogVideoX checkpoints
        these are the stock defaults, for other sizes the stock defaults would not fit the model). After
        the call, :attr:`motion_guidance_settings` holds the values used and where each came from
        (``"caller"``, ``"prior"``, ``"config"``, ``"default"``); they are also logged (logger ``lamo.pipelines``)
        at INFO level when the call filled any of them in, else at DEBUG level.

        ``pipe(prompt, **RELEASE_SAMPLING_KWARGS)`` with a release prior (:func:`lamo.convert.load_release`)
        is the authors' sampling setting.

        A guided step makes no host sync: NaN/inf in guidance is detected on the device and reported
        (:class:`NonFiniteGuidanceError`) once, when the denoising loop has finished.

        After the call, :attr:`motion_guidance_history` holds one :class:`GuidanceRecord` per guided
        (or recorded) step.
        """
        if motion_prior is not None:
            self.check_motion_prior(motion_prior)
        prior = motion_prior if motion_prior is not None else self.motion_prior
        kwargs = self._motion_guidance_fill(prior, args, kwargs, motion_guidance_scale, motion_guidance_window)
        values = self.motion_guidance_settings["values"]
        motion_guidance_scale, motion_guidance_window = values["motion_guidance_scale"], values["motion_guidance_window"]
        values.update(motion_guidance_mode=motion_guidance_mode, motion_guidance_reduction=motion_guidance_reduction,
                      motion_guidance_window_rounding=motion_guidance_window_rounding,
                      motion_guidance_stop_gradient=motion_guidance_stop_gradient,
                      motion_guidance_schedule=motion_guidance_schedule,
                      motion_guidance_more_priors=len(motion_guidance_more_priors or ()))
        if not (isinstance(motion_guidance_scale, (int, float)) and math.isfinite(motion_guidance_scale)
                and motion_guidance_scale >= 0):
            raise ValueError(f"motion_guidance_scale (λ) must be a finite number ≥ 0, got {motion_guidance_scale!r}")
        if motion_guidance_mode not in GUIDANCE_MODES:
            raise ValueError(f"unknown motion_guidance_mode {motion_guidance_mode!r}; expected one of {GUIDANCE_MODES}")
        if motion_guidance_reduction not in GUIDANCE_REDUCTIONS:
            raise ValueError(f"unknown motion_guidance_reduction {motion_guidance_reduction!r}; expected one of "
                             f"{GUIDANCE_REDUCTIONS}")
        if motion_guidance_window_rounding not in WINDOW_ROUNDINGS:
            raise ValueError(f"unknown motion_guidance_window_rounding {motion_guidance_window_rounding!r}; expected "
                             f"one of {WINDOW_ROUNDINGS}")
        if not isinstance(motion_guidance_stop_gradient, bool):
            raise ValueError(f"motion_guidance_stop_gradient must be True or False, got "
                             f"{motion_guidance_stop_gradient!r}")
        if motion_guidance_schedule not in GUIDANCE_SCHEDULES:
            raise ValueError(f"unknown motion_guidance_schedule {motion_guidance_schedule!r}; expected one of "
                             f"{GUIDANCE_SCHEDULES}")
        more_priors = tuple(motion_guidance_more_priors or ())
        for extra in more_priors:
            if not isinstance(extra, MotionPrior):
                raise TypeError(f"motion_guidance_more_priors must hold lamo.MotionPrior objects, got "
                                f"{type(extra).__name__}")
            self.check_motion_prior(extra)
        self._motion_guidance_history = []
        if prior is None:
            if motion_guidance_scale > 0 or motion_guidance_record:
                raise ValueError(
                    "motion guidance needs a motion prior: pass motion_prior=, set pipe.motion_prior or call "
                    "pipe.load_motion_prior(path)"
                )
            return super().__call__(*args, **kwargs)
        if motion_guidance_scale == 0 and not motion_guidance_record:
            return super().__call__(*args, **kwargs)  # off: nothing is wrapped

        prior.to(self._execution_device)
        for extra in more_priors:
            extra.to(self._execution_device)
        guidance = MotionPriorGuidance(prior, scale=motion_guidance_scale, window=motion_guidance_window,
                                       more_priors=more_priors,
                                       mode=motion_guidance_mode, check_finite="deferred",
                                       activation_budget_gib=motion_guidance_activation_gib,
                                       reduction=motion_guidance_reduction,
                                       window_rounding=motion_guidance_window_rounding,
                                       stop_gradient=motion_guidance_stop_gradient,
                                       schedule=motion_guidance_schedule)
        with GuidedSchedulerStep(self, self.adapter, guidance, record=motion_guidance_record,
                                 history=self._motion_guidance_history):
            return super().__call__(*args, **kwargs)
