"""``lamo eval prior``: is the motion prior worth sampling with? (:mod:`lamo.prior_quality`)

Reports the prior's validation cosine to the true τ-lag change and how often it ranks a real clip above
counterfactuals of it (reversed, shuffled, frozen, 2× and ½ speed; on the physics world also flipped
gravity, a hidden ball, a teleport, another restitution), with 95 % intervals. Run it before spending
GPU hours on sampling. Writes ``OUT/table.json`` and ``OUT/prior_quality.png`` and prints the table.

* ``--cache DIR`` — clips of a latent cache made by ``lamo cache`` (no decoder, no backbone needed);
  counterfactuals are made on latent frames.
* ``--world`` — clips of the physics world, rendered, made counterfactual in pixel space and encoded by
  the backbone's VAE (default: the shipped demo backbone).

This module is not a top-level command: :func:`register_eval_prior` adds ``prior`` to the sub-commands of
``lamo eval`` (``lamo.commands.eval`` calls it); the CLI does not auto-register modules whose name starts
with an underscore.
"""
from __future__ import annotations

import argparse
import shlex
import sys

from ._args import one_of, world_preset

__all__ = ["register_eval_prior", "run_eval_prior"]

#: Clips of the physics world scored by default (``-n``).
DEFAULT_WORLD_CLIPS = 256


def _counterfactuals() -> list[str]:
    from ..prior_quality import COUNTERFACTUALS

    return list(COUNTERFACTUALS)


def register_eval_prior(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``prior`` sub-command to ``subparsers`` (those of ``lamo eval``); returns its parser."""
    p = subparsers.add_parser(
        "prior", help="prior quality: validation cosine and real-vs-counterfactual win rates (run before sampling)",
        description=__doc__.split("\n\n")[1])
    p.add_argument("--prior", required=True, help="motion prior folder (config.json + safetensors)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cache", metavar="DIR", help="a latent cache made by `lamo cache` (its clips are scored)")
    src.add_argument("--world", action="store_true", help="score clips of the physics world through --backbone")
    p.add_argument("--backbone", default=None,
                   help="with --world: the backbone folder (default: the shipped demo backbone)")
    p.add_argument("--world-preset", type=world_preset, default="tiny", help="with --world: the world the backbone makes (default: tiny)")
    p.add_argument("-n", type=int, default=None,
                   help=f"clips to score: with --world (default {DEFAULT_WORLD_CLIPS}); with --cache the first N rows "
                        "(default: all)")
    p.add_argument("--seed", type=int, default=5,
                   help="world clips of this seed (default 5: not the clips `lamo demo` trains on); shuffling")
    p.add_argument("--tau", type=int, default=None, help="lag of L_guide and the cosine (default: the prior's own)")
    p.add_argument("--counterfactuals", default=None, type=one_of(_counterfactuals, "counterfactual", comma_list=True),
                   help="comma-separated subset of reversed, shuffled, frozen, dropped (2× speed), doubled (½ speed) "
                        "and, with --world, gravity_flipped, ball_hidden, teleported, restitution "
                        "(default: all that apply)")
    p.add_argument("--batch-size", type=int, default=64, help="clips per batch (default 64)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0: torch's choice (default: 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--out", required=True, help="output folder: table.json and prior_quality.png")
    p.set_defaults(func=run_eval_prior)
    return p


def run_eval_prior(args: argparse.Namespace) -> int:
    """Score the prior as ``args`` say, write the files and print the table; 0 on success."""
    import time

    import torch

    from .. import __version__
    from ..errors import InputError, MissingInputError
    from ..prior import MotionPrior
    from ..prior_quality import GENERIC_COUNTERFACTUALS, write_prior_quality

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.n is not None and args.n < 1:
        raise InputError(f"-n must be ≥ 1, got {args.n}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    if args.cache and args.backbone:
        raise InputError("--backbone goes with --world; a cache already holds the backbone's latents")
    names = args.counterfactuals
    if isinstance(names, str):  # a caller that built ``args`` by hand
        names = [c.strip() for c in names.split(",") if c.strip()]
    prior = MotionPrior.from_pretrained(args.prior).float().to(args.device).eval()
    t0 = time.time()
    if args.cache:
        from ..cache import CachedLatentDataset

        try:
            ds = CachedLatentDataset(args.cache)
        except FileNotFoundError as e:
            raise MissingInputError(str(e)) from e
        n = len(ds) if args.n is None else min(args.n, len(ds))
        rows = [ds[i] for i in range(n)]
        latents = torch.stack([r["latents"] for r in rows]).float()  # (N, F, C, H, W)
        cond = torch.stack([r["pooled"] for r in rows]).float()  # (N, D)
        from ..prior_quality import prior_quality

        result = prior_quality(prior, latents, cond, names or tuple(GENERIC_COUNTERFACTUALS), tau=args.tau,
                               seed=args.seed, batch_size=args.batch_size,
                               source=f"latent cache {args.cache} ({n} of {len(ds)} clips)")
    else:
        from ..demo.run import DEFAULT_BACKBONE, DemoConfig, _load_pipeline
        from ..prior_quality import COUNTERFACTUALS, world_prior_quality

        cfg = DemoConfig(backbone=str(args.backbone or DEFAULT_BACKBONE), world=args.world_preset)
        try:
            pipe, _, preset, world = _load_pipeline(cfg)
        except FileNotFoundError as e:
            raise MissingInputError(str(e)) from e
        pipe = pipe.to(args.device)
        result = world_prior_quality(pipe, prior, world, DEFAULT_WORLD_CLIPS if args.n is None else args.n, args.seed,
                                     names or tuple(COUNTERFACTUALS), tau=args.tau, batch_size=args.batch_size,
                                     max_sequence_length=preset["max_text_len"], progress=True)
    seconds = time.time() - t0
    from ..demo.run import _commit

    extra = {"prior": str(args.prior), "commit": _commit(), "command": shlex.join(sys.argv),
             "lamo_version": __version__, "seconds": seconds, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
             "torch": torch.__version__, "threads": torch.get_num_threads()}
    table, plot = write_prior_quality(args.out, result, extra)
    print(result.table())
    print(f"\nwrote {table} and {plot}  ({seconds:.0f} s)")
    return 0
