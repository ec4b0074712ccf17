"""The typed configs of LaMo's jobs: what ``lamo cache``, ``lamo train prior``, ``lamo train finetune`` and
``lamo demo train-backbone`` run.

Dataclasses only, on the standard library alone, so that the command line can build its options from them (one
option per field; the comment after a field is its help) without importing torch. The jobs that read them live in
:mod:`lamo.cache`, :mod:`lamo.training.prior`, :mod:`lamo.training.finetune` and :mod:`lamo.demo.train_backbone`,
which re-export them. A run's
``config.yaml`` holds one of these with its keys named as the fields.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CacheConfig", "PriorTrainConfig", "FinetuneConfig", "BackboneTrainConfig"]


@dataclass
class CacheConfig:
    """What ``lamo cache`` encodes and how."""

    model: str  # diffusers pipeline folder or hub id whose VAE and text encoder encode the data
    data: str  # dataset: folder (videos.txt + prompts.txt, metadata.jsonl / .csv) or a CSV / JSON / JSONL index
    out: str  # cache folder (shards + manifest.json; re-running resumes)
    frames: int  # frames sampled from each video
    height: int  # video height in pixels after resize and centre crop
    width: int  # video width in pixels after resize and centre crop
    stride: int | None = None  # take every stride-th frame from the start (none: spread the frames over the clip)
    shard_size: int = 256  # items per safetensors shard
    batch_size: int = 4  # videos encoded at once
    max_sequence_length: int | None = None  # prompt tokens (none: the model's own, as `lamo sample` uses)
    prompt_embeds: bool = True  # store the full prompt embeddings (no: only the pooled prompt, enough for the prior)
    dtype: str = "float32"  # dtype the tensors are stored in
    device: str = "cpu"  # torch device of the encoders
    max_shards: int | None = None  # stop after this many new shards (for tests and partial runs)


@dataclass
class PriorTrainConfig:
    """Hyper-parameters of a prior training run (YAML keys = these names)."""

    cache: str = ""  # latent cache folder made by `lamo cache` (required)
    out: str = "runs/prior"  # run folder: checkpoints, loss.jsonl, tracker logs, the trained prior
    preset: str = "base"  # MotionPrior preset (lamo.prior.PRIOR_PRESETS)
    steps: int = 3000  # training steps
    batch_size: int = 32  # clips per step and process
    lr: float = 3e-4  # learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    grad_clip: float = 1.0  # gradient-norm clip
    seed: int = 0  # random seed (data order, noise, initial weights)
    mixed_precision: str = "no"  # no | fp16 | bf16
    val_fraction: float = 0.1  # fraction of the cache held out for validation
    save_every: int = 500  # steps between checkpoints
    log_with: str = "none"  # also to a tracker: tensorboard (pip install 'lamo[train]') | another accelerate tracker
    resume_from_checkpoint: str | None = None  # latest | a checkpoint folder: continue that run
    resume_override: str = ""  # on resume: comma-separated fields that may differ from the checkpoint's recipe (e.g. "lr,seed")
    max_steps_this_run: int | None = None  # stop early (a checkpoint is written) — for tests and time limits
    recipe: str = ""  # "" | "lamo-release" (the authors' predictor training; see lamo.training.prior)
    lr_schedule: str = "constant"  # constant | cosine (lr·½(1 + cos(π·step/steps)))
    prior_options: str = ""  # MotionPrior config overrides on the preset, e.g. "tau=1,noise_aug=diffusion"
    aug_model: str = ""  # model whose scheduler gives ᾱ_t for noise_aug="diffusion" ("": the cache's model)


@dataclass
class FinetuneConfig:
    """Hyper-parameters of a fine-tuning run (YAML keys = these names)."""

    model: str = ""  # diffusers pipeline folder or hub id of the backbone (required)
    cache: str = ""  # latent cache folder made by `lamo cache` with prompt embeddings (required)
    out: str = "runs/finetune"  # run folder: checkpoints, logs, loss.jsonl, the fine-tuned weights
    steps: int = 1000  # training steps
    batch_size: int = 1  # clips per step and process
    lr: float = 1e-4  # backbone learning rate
    lora_rank: int = 64  # 0: full fine-tuning
    drift_weight: float = 0.4  # λ_drift (0: plain denoising fine-tune)
    drift_mode: str = "normalized"  # lamo.losses.ALL_DRIFT_MODES (normalized: the paper's)
    drift_tau: int = 2  # lag τ (latent frames) of the Motion Drift Loss
    anchor_weight: float = 0.0  # β of the anchor β·mean((v_θ − v_0)²) to the frozen --model (LoRA: adapters off; 0: off)
    gradient_checkpointing: bool = False  # recompute the transformer's activations in the backward pass (less memory)
    grad_clip: float = 1.0  # gradient-norm clip
    seed: int = 0  # random seed (data order, noise, LoRA initialisation)
    mixed_precision: str = "no"  # no | fp16 | bf16
    save_every: int = 250  # steps between checkpoints
    log_with: str = "none"  # also to a tracker: tensorboard (pip install 'lamo[train]') | another accelerate tracker
    resume_from_checkpoint: str | None = None  # latest | a checkpoint folder: continue that run
    resume_override: str = ""  # on resume: comma-separated fields that may differ from the checkpoint's recipe (e.g. "lr,seed")
    max_steps_this_run: int | None = None  # stop early (a checkpoint is written) — for tests and time limits
    validation_every: int = 0  # every N steps, sample the validation prompts to OUT/validation/step-N/*.mp4 (0: off)
    validation_prompts: str = ""  # "|"-separated prompts (needs the model's text encoder and VAE)
    validation_steps: int = 25  # denoising steps of the validation videos
    recipe: str = ""  # "" | "lamo-release" (the authors' joint LoRA + predictor run; see lamo.training.finetune)
    lora_alpha: float = 0.0  # LoRA alpha (0: = lora_rank, scale 1)
    lr_schedule: str = "constant"  # backbone lr: constant | cosine
    drift_weighting: str = "per_sample"  # per_sample (w(t) per sample) | batch_mean (batch mean of (1 − σ²)₊)
    prior_preset: str = ""  # train a MotionPrior jointly ("" = none; e.g. "release")
    prior_options: str = ""  # MotionPrior config overrides, e.g. "hidden_channels=128"
    prior_lr: float = 5e-4  # learning rate of the jointly trained prior
    prior_lr_schedule: str = "cosine"  # constant | cosine


@dataclass
class BackboneTrainConfig:
    """Hyper-parameters of the demo backbone run (recorded next to every checkpoint)."""

    data: str = ""
    out: str = "runs/demo-backbone"
    preset: str = "world"  # a preset of lamo.demo.model.DEMO_PRESETS: world (the shipped backbone), demo (the first, PCA latents), test
    steps: int = 15000
    batch_size: int = 16
    lr: float = 5e-4
    warmup: int = 300
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    caption_dropout: float = 0.1
    ema_decay: float = 0.999
    seed: int = 0
    save_every: int = 500
    threads: int = 0  # torch CPU threads (0: leave torch's default)
    init_from: str = ""  # a demo pipeline folder to fine-tune instead of starting from scratch
    drift_weight: float = 0.0  # λ_drift of the Motion Drift Loss (0: plain denoising loss)
    drift_tau: int = 2
    drift_mode: str = "normalized"  # lamo.losses.ALL_DRIFT_MODES: normalized (per pair, §1.3) | batch_normalized | …
    drift_weighting: str = "per_sample"  # per_sample: w(t) = ᾱ_t per sample | batch_mean: its batch mean (the release)
    train_text_encoder: bool = True  # False: only the transformer learns (fine-tunes keep the text space)
    device: str = "auto"  # auto: cuda when available, else cpu
    precision: str = "fp32"  # fp32 | bf16 (autocast on CUDA; the weights, optimiser and EMA stay fp32)
    workers: int = 0  # processes that simulate world:… data (0: all cores)
    ae_steps: int = 3000  # ConvAutoencoder training steps (presets with autoencoder "conv")
    ae_batch_size: int = 32
    ae_lr: float = 1e-3
    ae_latent_noise: float = 0.2  # the decoder also learns to decode latents noised by this × their std
    export_steps: str = ""  # comma-separated steps at which the EMA pipeline is also saved (pipeline-step-N)
    stop_at: int = 0  # stop here (0: at `steps`) and save the pipeline; the lr schedule still spans `steps`
    anchor_weight: float = 0.0  # β of the anchor β·mean((v_θ − v_0)²) to the frozen --init-from model (0: off; needs --init-from)
