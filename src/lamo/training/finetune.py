"""``lamo train finetune``: fine-tune a backbone with ``L = L_denoise + λ_drift · w(t) · L_drift`` (docs/design.md §1.3).

LoRA (peft, through diffusers' ``add_adapter``) or full fine-tuning of the transformer on a latent cache
(``lamo cache`` with prompt embeddings), under ``accelerate``. The backbone-specific part — noising,
target, RoPE, ``x̂0``, ``w(t)`` — is ``adapter.training_forward``; the drift term is
:func:`lamo.losses.drift_loss_terms` with ``weight = w(t)``. Noise and timesteps of step ``s`` on rank ``r``
come from a generator seeded by ``(seed, s, r)``, so a resumed run is the uninterrupted run.

**Joint predictor training** (``prior_preset``, e.g. ``"release"``): a :class:`~lamo.MotionPrior` is
trained in the same run on the batch's clean latents (detached from the backbone) and the pooled
prompt, with its own learning rate and schedule; the run saves ``OUT/prior`` (a LaMo prior folder)
and, for ``arch="release"`` with LoRA, ``OUT/lora/predictor.safetensors`` in the release's layout
beside the LoRA weights — :func:`lamo.convert.load_release` loads that folder into a pipeline.

**Drift weighting**: ``"per_sample"`` (LaMo: ``w(t)`` of each sample) or ``"batch_mean"`` (the
release: one weight, the batch mean of ``(1 − σ²)₊``, ``σ² = 1 − ᾱ_t`` or ``σ_t²``).

**Recipe** ``"lamo-release"`` (docs/design.md §8): LoRA rank 128, alpha 64 on q/k/v/out, lr 5e-5 constant
after a 200-step linear warm-up (``"release-constant"``), 2000 steps of batch 1, drift loss τ = 2, λ = 0.4
with batch-mean weighting, and the release predictor trained jointly (lr 5e-4, the release's
``"release-cosine"``, its prompt projection drawn from N(0, 0.02²)); AdamW with β = (0.9, 0.99), ε = 1e-8,
weight decay 1e-4 for both; each one's gradient norm clipped at 1 on its own. It replaces only values left
at their defaults. On CogVideoX it also draws the noise level as the release's trainer does
(:func:`release_timesteps`: ``σ`` uniform on the grid ``{0, 0.001, …, 0.999}``, ``t = ⌊1000·σ⌋`` in float32)
and the batch-mean drift weight is ``mean_b (1 − σ_b²)₊`` of that ``σ`` (not of ``√(1 − ᾱ_t)``). Its
denoising loss, ``1/(1 − ᾱ_t)·‖x̂0 − x0‖²`` on the predicted clean latent, is the v-prediction MSE LaMo
minimises (``x̂0 − x0 = −√(1 − ᾱ_t)·(v̂ − v)``), so it is left as it is.

**Anchor** (``anchor_weight`` β > 0): ``L += β · mean((v_θ(x_t, t, c) − v_0(x_t, t, c))²)``, ``v_0`` the frozen model
the run starts from, on the same ``x_t``, ``t`` and prompt, without gradient — a fine-tune that keeps the
backbone's behaviour where the data do not pull it away (the fair control of the drift loss). LoRA: ``v_0`` is the
same transformer with its adapters disabled (no second copy); full fine-tuning: a frozen copy of ``--model``'s
transformer, rebuilt from those weights on resume (never from the checkpoint).
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..configs import FinetuneConfig
from ..errors import InputError, require
from .checkpoints import atomic_folder, resume_step, save_checkpoint, trim_jsonl_log
from .prior import adamw_options, build_prior, lr_factor, require_tracker

__all__ = ["FinetuneConfig", "FinetuneLoss", "train_finetune", "FINETUNE_RECIPES", "DRIFT_WEIGHTINGS",
           "TIMESTEP_SAMPLINGS", "release_timesteps"]

DRIFT_WEIGHTINGS = ("per_sample", "batch_mean")
TIMESTEP_SAMPLINGS = ("uniform", "release")
FINETUNE_RECIPES: dict[str, dict[str, Any]] = {
    "lamo-release": dict(lora_rank=128, lora_alpha=64.0, lr=5e-5, lr_schedule="release-constant", steps=2000,
                         batch_size=1, drift_weight=0.4, drift_tau=2, drift_weighting="batch_mean",
                         prior_preset="release", prior_lr=5e-4, prior_lr_schedule="release-cosine"),
}


def release_timesteps(scheduler: Any, batch: int, generator: torch.Generator | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(σ (B,) float32, t (B,) long)`` drawn as the release's trainer draws them for a CogVideoX (DDIM) scheduler.

    ``u ~ U[0, 1)``; ``σ = s[⌊N·u⌋]`` with ``s`` the scheduler's training timesteps ``N−1, …, 0`` divided by ``N``
    (float32); ``t = ⌊σ·1000⌋`` computed in float32 — so ``t`` is uniform on the timesteps except where float32
    round-off moves ``σ·1000`` just under an integer. Its flag for logit-normal sampling acts only on flow-matching
    schedulers, which it never trains.
    """
    n = int(scheduler.config.num_train_timesteps)
    sigmas = torch.arange(n - 1, -1, -1, dtype=torch.int64).float() / float(n)  # the scheduler's timesteps / N
    u = torch.rand(batch, generator=generator, device=generator.device if generator is not None else "cpu").cpu()
    sigma = sigmas[(u * n).long()]
    return sigma, (sigma * 1000.0).long()


class FinetuneLoss(torch.nn.Module):
    """``forward(latents, prompt_embeds, seed) → (loss, denoise, drift, drift_error, prior_loss, prior_cosine)``.

    With ``anchor_weight`` β > 0, ``loss`` also holds ``β · mean((v_θ − v_0)²)`` against ``reference`` (a frozen
    transformer; ``None``: ``transformer`` itself with its LoRA adapters disabled); the last batch's
    ``mean((v_θ − v_0)²)`` is kept, detached, in :attr:`last_anchor` (0 with β = 0).

    ``latents`` ``(B, F, C, H, W)``, ``prompt_embeds`` ``(B, L, D)``; ``drift`` is the batch mean of
    ``w·L_drift`` (``w``: ``w(t)`` per sample, or the batch mean of ``(1 − σ²)₊`` with
    ``drift_weighting="batch_mean"``) and ``drift_error`` of the un-normalised macro-drift error. With a
    ``prior``, ``loss`` also holds its training loss on the clean latents (detached from the backbone);
    ``prior_loss`` / ``prior_cosine`` are 0 without one.
    """

    def __init__(self, transformer, scheduler, adapter, drift_weight: float, drift_mode: str, tau: int,
                 drift_weighting: str = "per_sample", prior=None, aug_noise_levels: torch.Tensor | None = None,
                 timestep_sampling: str = "uniform", anchor_weight: float = 0.0, reference=None):
        super().__init__()
        if drift_weighting not in DRIFT_WEIGHTINGS:
            raise ValueError(f"unknown drift_weighting {drift_weighting!r}; choose from {DRIFT_WEIGHTINGS}")
        if timestep_sampling not in TIMESTEP_SAMPLINGS:
            raise ValueError(f"unknown timestep_sampling {timestep_sampling!r}; choose from {TIMESTEP_SAMPLINGS}")
        # the release's draw is defined for DDPM-family (CogVideoX) schedulers only: flow models keep the adapter's
        self.release_sigmas = timestep_sampling == "release" and adapter.prediction_type(scheduler) != "flow"
        self.transformer = transformer
        self.scheduler, self.adapter = scheduler, adapter
        self.drift_weight, self.drift_mode, self.tau = drift_weight, drift_mode, tau
        self.drift_weighting = drift_weighting
        self.prior = prior
        self.aug_noise_levels = aug_noise_levels  # (T,) for a prior with noise_aug="diffusion"; not a buffer
        self.anchor_weight = float(anchor_weight)
        # not a submodule: kept out of state_dict (checkpoints), of the optimiser and of DDP; frozen
        self._reference = (reference.requires_grad_(False).eval(),) if reference is not None else None
        self.last_anchor = torch.zeros(())

    def reference_pred(self, latents: torch.Tensor, prompt_embeds: torch.Tensor, generator: torch.Generator,
                       timesteps: torch.Tensor | None) -> torch.Tensor:
        """``v_0`` of the anchor: the frozen model's prediction on the ``x_t`` and ``t`` that ``generator`` (in the
        state the trained model's forward found it) draws, no gradient."""
        with torch.no_grad():
            if self._reference is not None:
                return self.adapter.training_forward(self._reference[0], self.scheduler, latents, prompt_embeds,
                                                     generator=generator, timesteps=timesteps).pred
            self.transformer.disable_adapters()  # the LoRA run's starting model: its adapters off
            try:
                return self.adapter.training_forward(self.transformer, self.scheduler, latents, prompt_embeds,
                                                     generator=generator, timesteps=timesteps).pred
            finally:
                self.transformer.enable_adapters()

    def drift_weights(self, tf, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """``(B,)`` weight of each sample's drift loss (``sigma``: the release's σ of the batch, when drawn so)."""
        if self.drift_weighting == "per_sample":
            return tf.weight
        if sigma is not None:
            s2 = sigma.to(tf.x0_pred.device).float().pow(2)  # the release: σ as its trainer drew it
        else:
            s2 = self.adapter.noise_variance(tf.noise_level).reshape(-1).to(tf.x0_pred.device)  # (B,) or (1,)
        w = (1.0 - s2).clamp_min(0.0).mean()  # the release: one weight for the batch
        return w.expand(tf.x0_pred.shape[0])

    def forward(self, latents: torch.Tensor, prompt_embeds: torch.Tensor, seed: int):
        from ..losses import drift_loss_terms

        g = torch.Generator().manual_seed(int(seed))
        sigma = timesteps = None
        if self.release_sigmas:
            sigma, timesteps = release_timesteps(self.scheduler, latents.shape[0], g)
        g_ref = torch.Generator().set_state(g.get_state()) if self.anchor_weight > 0 else None
        tf = self.adapter.training_forward(self.transformer, self.scheduler, latents, prompt_embeds, generator=g,
                                           timesteps=timesteps)
        denoise = (tf.pred.float() - tf.target.float()).pow(2).flatten(1).mean(1)  # (B,)
        drift = drift_loss_terms(tf.x0_pred, latents, tau=self.tau, mode=self.drift_mode,
                                 weight=self.drift_weights(tf, sigma))
        loss = denoise.mean() + self.drift_weight * drift.weighted.mean()
        if self.anchor_weight > 0:
            ref = self.reference_pred(latents, prompt_embeds, g_ref, timesteps)
            anchor = (tf.pred.float() - ref.float()).pow(2).mean()
            loss = loss + self.anchor_weight * anchor
            self.last_anchor = anchor.detach()
        prior_loss = prior_cos = torch.zeros((), device=latents.device)
        if self.prior is not None:
            pooled = self.adapter.pool_prompt(prompt_embeds.detach())  # (B, L, D) -> (B, D), as at sampling
            out = self.prior.training_loss(latents.detach(), pooled, generator=torch.Generator().manual_seed(int(seed) + 1),
                                           aug_noise_levels=self.aug_noise_levels)
            prior_loss, prior_cos = out.per_sample.mean(), out.cosine.mean()
            loss = loss + prior_loss
        return (loss, denoise.mean().detach(), drift.weighted.mean().detach(), drift.drift_error.mean(),
                prior_loss.detach(), prior_cos.detach())


def train_finetune(cfg: FinetuneConfig, overwrite: bool = False) -> Path:
    """Fine-tune (or resume); save LoRA weights or the full transformer under ``cfg.out``.

    ``cfg`` is checked first and a folder holding another run is refused unless ``overwrite`` (which deletes that
    run) or ``cfg.resume_from_checkpoint``; one trainer at a time in a run folder (:func:`lamo.training.runs.training_run`).
    """
    from .runs import training_run

    with training_run(cfg, FINETUNE_RECIPES, overwrite, "lamo train finetune") as cfg:
        return _train_finetune(cfg)


def _train_finetune(cfg: FinetuneConfig) -> Path:
    """:func:`train_finetune` once the run has started: ``cfg`` checked, its recipe resolved, its folder prepared."""
    from .runs import all_finite, diverged

    import yaml
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers import DiffusionPipeline
    from tqdm.auto import tqdm

    from ..adapters import get_adapter
    from ..cache import CachedLatentDataset
    from ..pipelines import pipeline_class

    for schedule in (cfg.lr_schedule, cfg.prior_lr_schedule):
        lr_factor(schedule, 0, 1)  # an unknown schedule fails before anything is loaded
    if cfg.drift_weighting not in DRIFT_WEIGHTINGS:
        raise InputError(f"unknown drift_weighting {cfg.drift_weighting!r}; choose from {DRIFT_WEIGHTINGS}")
    require_tracker(cfg.log_with)
    if cfg.lora_rank > 0:
        require("peft", f"LoRA fine-tuning (--lora-rank {cfg.lora_rank})", "or pass --lora-rank 0 for full fine-tuning")
    out = Path(cfg.out)
    acc = Accelerator(mixed_precision=cfg.mixed_precision, log_with=None if cfg.log_with == "none" else cfg.log_with,
                      project_dir=str(out))
    set_seed(cfg.seed)
    ds = CachedLatentDataset(cfg.cache, with_prompt_embeds=True)
    family = get_adapter(DiffusionPipeline.load_config(cfg.model)).family
    if ds.manifest["family"] != family:
        raise ValueError(f"the cache was made for {ds.manifest['family']!r} but {cfg.model} is {family!r}")
    pipe_cls = pipeline_class(family)
    index = DiffusionPipeline.load_config(cfg.model)
    prompts = [p.strip() for p in cfg.validation_prompts.split("|") if p.strip()]
    validate = cfg.validation_every > 0 and bool(prompts)
    # the text encoder and VAE are loaded only when validation videos are asked for
    skip = {} if validate else {k: None for k, v in index.items()
                                if isinstance(v, list) and k in ("tokenizer", "text_encoder", "vae")}
    from .._quiet import quiet_loading

    with quiet_loading():
        pipe = pipe_cls.from_pretrained(cfg.model, **skip)
    if validate and (pipe.text_encoder is None or pipe.vae is None):
        raise ValueError(f"validation videos need {cfg.model}'s text encoder and VAE; it has none — drop --validation-every")
    transformer, scheduler, adapter = pipe.transformer, pipe.scheduler, get_adapter(pipe)
    from ..cache import check_text_len
    from ..pipelines.settings import model_sizes

    check_text_len(ds.manifest, model_sizes(pipe, family), folder=cfg.cache)  # prompts as `lamo sample` encodes them
    if cfg.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    if cfg.lora_rank > 0:
        from peft import LoraConfig

        transformer.requires_grad_(False)
        transformer.add_adapter(LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha or cfg.lora_rank,
                                           init_lora_weights=True, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    params = [p for p in transformer.parameters() if p.requires_grad]
    groups = [{"params": params, "lr": cfg.lr}]
    prior, levels = None, None
    if cfg.prior_preset:
        m = ds.manifest
        prior, levels = build_prior(cfg.prior_preset, cfg.prior_options, adapter.latent_channels(transformer),
                                    adapter.text_embed_dim(transformer), family, cache_model=cfg.model)
        groups.append({"params": list(prior.parameters()), "lr": cfg.prior_lr})
        if m.get("latent_shape") and m["latent_shape"][0] <= prior.config.tau:
            raise InputError(f"the cached clips have {m['latent_shape'][0]} latent frames; the prior's τ = "
                             f"{prior.config.tau} needs more")
    opt = torch.optim.AdamW(groups, **adamw_options(cfg))  # the release's β, ε, weight decay under its recipe
    reference = None
    if cfg.anchor_weight > 0 and cfg.lora_rank == 0:  # the full fine-tune's frozen start (LoRA: adapters disabled)
        import copy

        reference = copy.deepcopy(transformer).requires_grad_(False).to(acc.device)
    loss_module = FinetuneLoss(transformer, scheduler, adapter, cfg.drift_weight, cfg.drift_mode, cfg.drift_tau,
                               cfg.drift_weighting, prior, levels,
                               timestep_sampling="release" if cfg.recipe == "lamo-release" else "uniform",
                               anchor_weight=cfg.anchor_weight, reference=reference)
    model, opt = acc.prepare(loss_module, opt)
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
    if cfg.log_with != "none":
        acc.init_trackers("logs", config={k: v for k, v in asdict(cfg).items() if v is not None})
    step = resume_step(acc, out, cfg.resume_from_checkpoint)
    if step and acc.is_main_process:  # steps after the checkpoint are trained (and logged) again: log each once
        trim_jsonl_log(out / "loss.jsonl", step)
    per_step = cfg.batch_size * acc.num_processes
    if len(ds) < per_step:
        raise ValueError(f"the cache has {len(ds)} rows, fewer than one batch ({per_step})")
    steps_per_epoch = len(ds) // per_step

    def rows(s: int) -> list[int]:
        epoch, k = divmod(s, steps_per_epoch)
        perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(cfg.seed + 1 + epoch)).tolist()
        return perm[k * per_step:(k + 1) * per_step][acc.process_index::acc.num_processes]

    stop = cfg.steps if cfg.max_steps_this_run is None else min(cfg.steps, step + cfg.max_steps_this_run)
    log_path = out / "loss.jsonl"
    bar = tqdm(total=cfg.steps, initial=step, desc="fine-tune", unit="step", disable=not acc.is_main_process,
               dynamic_ncols=True)
    model.train()
    while step < stop:
        items = [ds[i] for i in rows(step)]
        z = torch.stack([it["latents"] for it in items]).float().to(acc.device)
        emb = torch.stack([it["prompt_embeds"] for it in items]).float().to(acc.device)
        opt.param_groups[0]["lr"] = cfg.lr * lr_factor(cfg.lr_schedule, step, cfg.steps)
        if prior is not None:
            opt.param_groups[1]["lr"] = cfg.prior_lr * lr_factor(cfg.prior_lr_schedule, step, cfg.steps)
        try:
            with acc.autocast():
                loss, denoise, drift, drift_err, prior_loss, prior_cos = model(
                    z, emb, cfg.seed * 1_000_003 + step * 97 + acc.process_index)
        except ValueError:  # the drift loss refuses a non-finite x̂0: from finite data, the weights are to blame
            if not all_finite(None, (z, emb)):
                raise
            bar.close()
            raise diverged("the model's prediction (x̂0)", step + 1, cfg) from None
        if not all_finite(acc, [loss]):  # stop before the update: the last checkpoint stays the last good state
            bar.close()
            raise diverged("the loss", step + 1, cfg)
        acc.backward(loss)
        if cfg.grad_clip:
            acc.clip_grad_norm_(params, cfg.grad_clip)
            if prior is not None:
                acc.clip_grad_norm_(groups[1]["params"], cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        bar.update(1)
        terms = {"loss": loss.item(), "denoise": denoise.item(), "drift_weighted": drift.item(),
                 "drift_error": drift_err.item()}
        if cfg.anchor_weight > 0:
            terms["anchor"] = loss_module.last_anchor.item()
        if prior is not None:
            terms.update(prior_loss=prior_loss.item(), prior_cosine=prior_cos.item())
        bar.set_postfix(loss=f"{terms['loss']:.4f}", drift=f"{terms['drift_weighted']:.3g}")
        if acc.is_main_process:
            with open(log_path, "a") as f:
                f.write(json.dumps({"step": step, **terms}) + "\n")
        if cfg.log_with != "none":
            acc.log({f"train/{k}": v for k, v in terms.items()}, step=step)
        if validate and step % cfg.validation_every == 0 and acc.is_main_process:
            _validation_videos(pipe, acc.unwrap_model(model).transformer, prompts, cfg, out / "validation" / f"step-{step:06d}",
                               latent_shape=tuple(z.shape[1:]), text_len=emb.shape[1])
        if step % cfg.save_every == 0 or step == stop:
            if not all_finite(acc, (p for p in model.parameters() if p.requires_grad)):  # an update overflowed
                bar.close()
                raise diverged("the weights", step, cfg)
            save_checkpoint(acc, out, step, cfg, terms)
    bar.close()
    result = out / "transformer"
    if step >= cfg.steps and acc.is_main_process:
        t = acc.unwrap_model(model).transformer
        if cfg.lora_rank > 0:
            from peft.utils import get_peft_model_state_dict

            # the adapter config travels with the weights, so a loader applies alpha / rank as trained
            with atomic_folder(out / "lora") as tmp:  # an interrupted save leaves no half-written weights
                pipe_cls.save_lora_weights(tmp, transformer_lora_layers=get_peft_model_state_dict(t),
                                           transformer_lora_adapter_metadata=t.peft_config["default"].to_dict())
            result = out / "lora"
        else:
            with atomic_folder(result) as tmp:
                t.save_pretrained(tmp)
        acc.print(f"saved {result}")
        if prior is not None:
            trained = acc.unwrap_model(model).prior
            with atomic_folder(out / "prior") as tmp:
                trained.save_pretrained(tmp)
            if cfg.lora_rank > 0 and trained.config.arch == "release":
                from ..convert import RELEASE_PREDICTOR_FILE, save_release_predictor

                save_release_predictor(trained, out / "lora" / RELEASE_PREDICTOR_FILE)
            acc.print(f"saved the motion prior to {out / 'prior'}")
    acc.wait_for_everyone()
    acc.end_training()
    return result



@torch.no_grad()
def _validation_videos(pipe, transformer, prompts: list[str], cfg: FinetuneConfig, folder: Path,
                       latent_shape: tuple, text_len: int) -> None:
    """Sample each validation prompt (seed 0) at the training clips' size with the transformer being
    trained; write ``folder/i.mp4``. ``latent_shape`` is ``(F, C, H, W)`` of the cached latents."""
    from ..video_io import write_video

    F, _, H, W = latent_shape
    size = dict(num_frames=(F - 1) * pipe.vae_scale_factor_temporal + 1, height=H * pipe.vae_scale_factor_spatial,
                width=W * pipe.vae_scale_factor_spatial, max_sequence_length=text_len)
    was_training = transformer.training
    transformer.eval()
    pipe.transformer = transformer
    pipe.set_progress_bar_config(disable=True)
    for i, prompt in enumerate(prompts):
        frames = pipe(prompt=prompt, num_inference_steps=cfg.validation_steps, output_type="np",
                      generator=torch.Generator().manual_seed(0), **size).frames[0]
        write_video(folder / f"{i}.mp4", frames)
    transformer.train(was_training)
