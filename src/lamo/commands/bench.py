"""``lamo bench effect``: the full effect benchmark on the physics world (:mod:`lamo.demo.run`)."""
from __future__ import annotations

import argparse

from .demo import _effect_logging, add_effect_args, effect_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks: the effect of MPG / MDL on the physics world")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    e = bsub.add_parser("effect", help="the full effect benchmark: priors trained, knobs chosen on validation, 256 test clips",
                        description="Trains a motion prior per lag, chooses the prior, λ and the peer's step size on "
                                    "64 validation prompts × 2 seeds (128 clips; whether each seed alone would choose the same is "
                                    "checked and reported), then samples 128 held-out prompts × 2 seeds under "
                                    "every variant (and the ablations) and reports paired effects with 95 % intervals, "
                                    "Holm-corrected tests and verdicts; writes the chosen λ, ρ, steps and guidance scale into the "
                                    "chosen prior's sampling.json (OUT/prior-tauN), which `lamo sample --prior` and "
                                    "`lamo demo --prior` then use; every test clip is read by both readouts. "
                                    "About 45 minutes on 2 CPU cores (44–47 min measured with --threads 1).")
    add_effect_args(e, "full")
    e.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..demo.run import run_demo

    _effect_logging()
    return run_demo(cfg=effect_config(args))
