"""``lamo demo``: the embedded physics-world demo, and ``lamo demo train-backbone`` to reproduce its backbone."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ._args import (COUNT, FRACTION, LR, NON_NEGATIVE, NON_NEGATIVE_REAL, SEED, THREADS, YES_NO, Number,
                    add_config_command, config_from_args, device_or_auto, yes_no)

#: help for the options of BackboneTrainConfig's fields that carry no comment in lamo.demo.train_backbone
_BACKBONE_HELP = {
    "data": "dataset folder with metadata.jsonl (`lamo data physics`), or world:PRESET:N[:SEED] (clips simulated "
            "in memory)",
    "out": "run folder: checkpoints, loss log and the exported pipeline",
    "preset": "size and latent space of the backbone: a preset of lamo.demo.model.DEMO_PRESETS",
    "steps": "training steps",
    "batch_size": "clips per step",
    "lr": "peak learning rate",
    "warmup": "linear learning-rate warm-up steps",
    "weight_decay": "AdamW weight decay",
    "grad_clip": "gradient-norm clip",
    "caption_dropout": "fraction of captions replaced by the empty prompt (for classifier-free guidance)",
    "ema_decay": "decay of the weights' exponential moving average (the exported pipeline is the EMA)",
    "seed": "random seed (data order, noise, initial weights)",
    "save_every": "steps between checkpoints",
    "drift_tau": "lag τ (latent frames) of the Motion Drift Loss",
    "ae_batch_size": "clips per ConvAutoencoder training step",
    "ae_lr": "ConvAutoencoder learning rate",
}


#: the type (valid range) of BackboneTrainConfig's numeric fields and its device
_BACKBONE_TYPES = dict(
    steps=COUNT, batch_size=COUNT, lr=LR, warmup=NON_NEGATIVE, weight_decay=NON_NEGATIVE_REAL,
    grad_clip=NON_NEGATIVE_REAL, caption_dropout=FRACTION, ema_decay=FRACTION, seed=SEED, save_every=COUNT,
    threads=THREADS, drift_weight=NON_NEGATIVE_REAL, drift_tau=COUNT, workers=THREADS, ae_steps=NON_NEGATIVE,
    ae_batch_size=COUNT, ae_lr=LR, ae_latent_noise=NON_NEGATIVE_REAL, stop_at=NON_NEGATIVE, anchor_weight=NON_NEGATIVE_REAL,
    device=device_or_auto)


def register(sub: argparse._SubParsersAction) -> None:
    from ..configs import BackboneTrainConfig

    p = sub.add_parser("demo", help="run the physics-world demo end to end (or reproduce its backbone)",
                       description="The effect benchmark's `demo` preset: the shipped prior and knobs, 48 held-out "
                                   "prompts × 2 seeds, every variant, paired statistics; ≤ 5 minutes on 2 cores.")
    add_effect_args(p, "demo")
    p.set_defaults(func=_run_demo)
    dsub = p.add_subparsers(dest="demo_command", metavar="SUBCOMMAND")

    t = add_config_command(dsub, "train-backbone", BackboneTrainConfig, helps=_BACKBONE_HELP, required=("data",),
                           types=_BACKBONE_TYPES,
                           help="train the demo backbone from scratch (resumes from its last checkpoint)")
    t.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    t.set_defaults(func=_train_backbone)


def add_effect_args(p: argparse.ArgumentParser, preset: str) -> None:
    """The effect benchmark's options (``lamo demo`` and ``lamo bench effect``), defaults from ``preset``."""
    from ..demo.config import MDL, PLAIN_FT, PRESETS, DemoConfig

    d = DemoConfig(**PRESETS[preset])
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter  # every option's help shows its default
    p.add_argument("--out", default=d.out, help="report folder (created; an earlier report there is replaced)")
    p.add_argument("--backbone", default=d.backbone, help="demo backbone pipeline folder (default: the shipped one, %(default)s)")
    p.add_argument("--finetune-plain", default=d.finetunes[PLAIN_FT],
                   help="transformer folder fine-tuned without the drift loss (the MDL control; default: the shipped "
                        "one, %(default)s)")
    p.add_argument("--finetune-mdl", default=d.finetunes[MDL], help="transformer folder fine-tuned with the Motion Drift Loss "
                        "(default: the shipped one, %(default)s)")
    p.add_argument("--prior", default=d.prior,
                   help="trained motion prior folder (its sampling.json, when present, gives λ and ρ); '' trains one per "
                        "--prior-taus here (default: %(default)r)")
    p.add_argument("--selection", default=d.selection,
                   help="selection.json of λ / η chosen on validation prompts with --prior; '' chooses them here "
                        "(default: %(default)r)")
    p.add_argument("--prior-taus", type=COUNT, nargs="+", default=list(d.prior_taus), help="lags of the priors trained here")
    p.add_argument("--prior-steps", type=COUNT, default=d.prior_steps, help="motion prior training steps")
    p.add_argument("--steps", type=COUNT, default=d.steps, help="sampling steps")
    p.add_argument("--guidance-scale", type=Number(float, 1), default=d.guidance_scale,
                   help="classifier-free guidance scale (chosen on validation prompts: benchmarks/sampler_settings.py)")
    p.add_argument("--val-prompts", type=COUNT, default=d.val_prompts, help="validation prompts (when choosing knobs here)")
    p.add_argument("--val-seeds", type=SEED, nargs="+", default=list(d.val_seeds), help="validation seeds")
    p.add_argument("--test-prompts", type=COUNT, default=d.test_prompts, help="held-out test prompts")
    p.add_argument("--seeds", type=SEED, nargs="+", default=list(d.test_seeds), help="test seeds")
    p.add_argument("--sweep", type=NON_NEGATIVE_REAL, nargs="+", default=list(d.sweep), help="λ values tried on validation prompts")
    p.add_argument("--windows", type=Number(float, 0, 1, low_open=True), nargs="+", default=list(d.windows) or [d.window],
                   help="guidance windows ρ tried with each λ on validation prompts")
    p.add_argument("--flowmo-sweep", type=NON_NEGATIVE_REAL, nargs="+", default=list(d.flowmo_sweep),
                   help="peer step sizes tried on validation prompts")
    p.add_argument("--ablations", type=yes_no, default=d.ablations, metavar=YES_NO,
                   help="also the direct latent edit and MPG with every other prior")
    p.add_argument("--threads", type=THREADS, default=d.threads, help="torch CPU threads (0: torch's default)")
    p.set_defaults(effect_preset=preset)


def effect_config(args: argparse.Namespace):
    """The :class:`~lamo.demo.run.DemoConfig` of parsed :func:`add_effect_args` options."""
    from ..demo.config import MDL, PLAIN_FT, PRESETS, DemoConfig
    from ..errors import InputError

    # the numbers were checked by their declared ranges (add_effect_args) when the arguments were parsed
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise InputError(f"--out {args.out} is a file; --out is the report folder: pass a new or empty folder")
    return DemoConfig(**{**PRESETS[args.effect_preset], "preset": args.effect_preset, "out": args.out,
                         "backbone": args.backbone, "finetunes": {PLAIN_FT: args.finetune_plain, MDL: args.finetune_mdl},
                         "prior": args.prior, "selection": args.selection, "prior_taus": tuple(args.prior_taus),
                         "prior_steps": args.prior_steps, "steps": args.steps, "guidance_scale": args.guidance_scale,
                         "val_prompts": args.val_prompts,
                         "val_seeds": tuple(args.val_seeds), "test_prompts": args.test_prompts,
                         "test_seeds": tuple(args.seeds), "sweep": tuple(args.sweep), "windows": tuple(args.windows),
                         "flowmo_sweep": tuple(args.flowmo_sweep), "ablations": args.ablations, "threads": args.threads})


def _train_backbone(args: argparse.Namespace) -> int:
    from ..demo.train_backbone import BackboneTrainConfig, train_backbone

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = config_from_args(BackboneTrainConfig, args)
    path = train_backbone(cfg, resume=not args.no_resume)
    print(f"saved the demo backbone pipeline to {path}")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from ..demo.run import run_demo

    _effect_logging()
    return run_demo(cfg=effect_config(args))


def _effect_logging() -> None:
    """INFO from the benchmark; the pipeline's per-call notes (every knob is passed explicitly, hundreds of
    calls) would interleave with the progress bars, so only its warnings."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("lamo.pipelines").setLevel(logging.WARNING)
