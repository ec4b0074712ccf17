"""``lamo demo``: the embedded physics-world demo, and ``lamo demo train-backbone`` to reproduce its backbone."""
from __future__ import annotations

import argparse
import logging
from dataclasses import fields


def register(sub: argparse._SubParsersAction) -> None:
    from ..demo.train_backbone import BackboneTrainConfig

    from ..demo.run import DemoConfig

    p = sub.add_parser("demo", help="run the physics-world demo end to end (or reproduce its backbone)")
    d = DemoConfig()
    p.add_argument("--out", default=d.out, help="report folder (default: report)")
    p.add_argument("--backbone", default=d.backbone, help="demo backbone pipeline folder (default: the shipped one)")
    p.add_argument("--finetune-plain", default=d.finetunes["fine-tuned (no drift loss)"],
                   help="transformer folder fine-tuned without the drift loss (the MDL control)")
    p.add_argument("--finetune-mdl", default=d.finetunes["MDL (drift-loss fine-tune)"],
                   help="transformer folder fine-tuned with the Motion Drift Loss")
    p.add_argument("--prior-steps", type=int, default=d.prior_steps, help="motion prior training steps")
    p.add_argument("--steps", type=int, default=d.steps, help="sampling steps")
    p.add_argument("--test-prompts", type=int, default=d.test_prompts, help="held-out prompts")
    p.add_argument("--seeds", type=int, nargs="+", default=list(d.test_seeds), help="sampling seeds of the test")
    p.add_argument("--sweep", type=float, nargs="+", default=list(d.sweep), help="λ values tried on validation prompts")
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (0: torch's default)")
    p.set_defaults(func=_run_demo)
    dsub = p.add_subparsers(dest="demo_command", metavar="SUBCOMMAND")

    t = dsub.add_parser("train-backbone", help="train the demo backbone from scratch (resumes from its last checkpoint)")
    defaults = BackboneTrainConfig()
    for f in fields(BackboneTrainConfig):
        value = getattr(defaults, f.name)
        t.add_argument(f"--{f.name.replace('_', '-')}", type=_yes_no if isinstance(value, bool) else type(value),
                       default=value, required=f.name == "data", metavar="yes|no" if isinstance(value, bool) else None)
    t.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    t.set_defaults(func=_train_backbone)


def _yes_no(text: str) -> bool:
    if text.lower() in ("yes", "true", "1"):
        return True
    if text.lower() in ("no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def _train_backbone(args: argparse.Namespace) -> int:
    from ..demo.train_backbone import BackboneTrainConfig, train_backbone

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = BackboneTrainConfig(**{f.name: getattr(args, f.name) for f in fields(BackboneTrainConfig)})
    path = train_backbone(cfg, resume=not args.no_resume)
    print(f"saved the demo backbone pipeline to {path}")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from ..demo.run import DemoConfig, run_demo

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    finetunes = {"fine-tuned (no drift loss)": args.finetune_plain, "MDL (drift-loss fine-tune)": args.finetune_mdl}
    cfg = DemoConfig(out=args.out, backbone=args.backbone, finetunes=finetunes, prior_steps=args.prior_steps,
                     steps=args.steps,
                     test_prompts=args.test_prompts, test_seeds=tuple(args.seeds), sweep=tuple(args.sweep),
                     threads=args.threads)
    return run_demo(cfg=cfg)
