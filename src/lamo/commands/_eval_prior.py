"""``lamo eval prior``: is the motion prior worth sampling with? (:func:`lamo.evaluation.evaluate_prior`)

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

from ._args import COUNT, SEED, THREADS, device, one_of, plain, world_preset

__all__ = ["register_eval_prior", "run_eval_prior"]

def _counterfactuals() -> list[str]:
    from ..prior_quality import COUNTERFACTUALS

    return list(COUNTERFACTUALS)


def register_eval_prior(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``prior`` sub-command to ``subparsers`` (those of ``lamo eval``); returns its parser."""
    from ..evaluation import DEFAULT_WORLD_CLIPS  # the standard library only: --help stays fast

    p = subparsers.add_parser(
        "prior", help="prior quality: validation cosine and real-vs-counterfactual win rates (run before sampling)",
        description=plain(__doc__.split("\n\n")[1]))
    p.add_argument("--prior", required=True, help="motion prior folder (config.json + safetensors)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cache", metavar="DIR", help="a latent cache made by `lamo cache` (its clips are scored)")
    src.add_argument("--world", action="store_true", help="score clips of the physics world through --backbone")
    p.add_argument("--backbone", default=None,
                   help="with --world: the backbone folder (default: the shipped demo backbone)")
    p.add_argument("--world-preset", type=world_preset, default="tiny",
                   help="with --world: the world the backbone makes (default: tiny)")
    p.add_argument("-n", type=COUNT, default=None,
                   help=f"clips to score: with --world (default {DEFAULT_WORLD_CLIPS}); with --cache the first N rows "
                        "(default: all)")
    p.add_argument("--seed", type=SEED, default=5,
                   help="world clips of this seed (default 5: not the clips `lamo demo` trains on); shuffling")
    p.add_argument("--tau", type=COUNT, default=None, help="lag of L_guide and the cosine (default: the prior's own)")
    p.add_argument("--counterfactuals", default=None, type=one_of(_counterfactuals, "counterfactual", comma_list=True),
                   help="comma-separated subset of reversed, shuffled, frozen, dropped (2× speed), doubled (½ speed) "
                        "and, with --world, gravity_flipped, ball_hidden, teleported, restitution "
                        "(default: all that apply)")
    p.add_argument("--batch-size", type=COUNT, default=64, help="clips per batch (default 64)")
    p.add_argument("--threads", type=THREADS, default=0, help="torch CPU threads; 0: torch's choice (default: 0)")
    p.add_argument("--device", type=device, default="cpu", help="torch device (default cpu)")
    p.add_argument("--out", required=True, help="output folder: table.json and prior_quality.png")
    p.set_defaults(func=run_eval_prior)
    return p


def run_eval_prior(args: argparse.Namespace) -> int:
    """Score the prior as ``args`` say, write the files and print the table; 0 on success."""
    from ..evaluation import evaluate_prior

    names = args.counterfactuals
    if isinstance(names, str):  # a caller that built ``args`` by hand
        names = [c.strip() for c in names.split(",") if c.strip()]
    result, table, plot, seconds = evaluate_prior(
        args.prior, args.out, cache=args.cache, backbone=args.backbone, world_preset=args.world_preset, n=args.n,
        seed=args.seed, tau=args.tau, counterfactuals=names, batch_size=args.batch_size, threads=args.threads,
        device=args.device)
    print(result.table())
    print(f"\nwrote {table} and {plot}  ({seconds:.0f} s)")
    return 0
