"""The effect benchmark's set-up: :class:`DemoConfig`, its :data:`PRESETS`, the shipped assets' paths, and the
provenance every results file records."""
from __future__ import annotations

import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DemoConfig", "PRESETS", "ASSETS", "DEFAULT_BACKBONE", "DEFAULT_PRIOR", "DEFAULT_FINETUNES", "PLAIN_FT", "MDL",
           "MARKER", "provenance"]

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_BACKBONE = ASSETS / "demo-backbone"
#: The motion prior the full benchmark chose on validation prompts, with its ``selection.json``.
DEFAULT_PRIOR = ASSETS / "demo-prior"
#: Transformers fine-tuned from the demo backbone for the same steps, without and with the Motion Drift
#: Loss (``lamo demo train-backbone --init-from … [--drift-weight 0.4]``); the demo uses those present.
PLAIN_FT, MDL = "fine-tuned (no drift loss)", "MDL (drift-loss fine-tune)"
DEFAULT_FINETUNES = {PLAIN_FT: ASSETS / "demo-finetune-plain", MDL: ASSETS / "demo-finetune-mdl"}


@dataclass
class DemoConfig:
    """What the effect benchmark runs; :data:`PRESETS` holds the two named set-ups."""

    out: str = "report"
    preset: str = "demo"
    backbone: str = str(DEFAULT_BACKBONE)
    finetunes: dict = field(default_factory=lambda: {k: str(v) for k, v in DEFAULT_FINETUNES.items()})
    world: str = "tiny"
    world_overrides: dict = field(default_factory=dict)  # e.g. {"size": 16, "frames": 8} for tests
    # the motion prior: a trained folder, or "" to train one per lag in prior_taus here
    prior: str = str(DEFAULT_PRIOR)
    prior_taus: tuple[int, ...] = (2, 1)
    prior_clips: int = 512
    prior_preset: str = "small"
    prior_steps: int = 500
    prior_batch: int = 32
    prior_lr: float = 1e-3
    # the knobs: a selection.json made on validation prompts, or "" to choose them here
    selection: str = str(DEFAULT_PRIOR / "selection.json")
    val_prompts: int = 32
    val_seeds: tuple[int, ...] = (100, 101)
    sweep: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0)
    flowmo_variant: str = "release"
    flowmo_sweep: tuple[float, ...] = (1e-3, 1e-2, 1e-1)  # the peer's step size, chosen like λ
    flowmo_fraction: float = 0.24  # the peer guides the first 24 % of the steps (12 of 50 in its release)
    detection_tolerance: float = 0.01  # a knob whose validation detection rate drops more is not chosen
    # the test
    test_prompts: int = 48
    test_seeds: tuple[int, ...] = (0, 1)
    ablations: bool = False  # direct latent edit; MPG with each other prior
    steps: int = 25
    guidance_scale: float = 2.0  # classifier-free guidance; chosen on validation prompts: benchmarks/sampler_settings.py
    window: float = 0.8  # ρ when no selection says otherwise
    windows: tuple[float, ...] = ()  # the ρ values swept with λ on validation prompts; () sweeps `window` only
    seed: int = 0
    threads: int = 0
    chunk: int = 64  # clips per pipeline call
    gifs: int = 8  # side-by-side animations of the first test prompts
    n_resamples: int = 4999  # bootstrap resamples per interval


#: ``demo``: ``make demo`` (shipped prior and selection). ``full``: ``lamo bench effect`` (everything chosen here).
PRESETS: dict[str, dict] = {
    "demo": {},
    "full": dict(preset="full", prior="", selection="", val_prompts=64, test_prompts=128, test_seeds=(0, 1), ablations=True,
                 windows=(0.8, 0.5), sweep=(0.3, 1.0, 3.0, 10.0, 30.0)),
}


#: Written first into every report folder, so a later run knows the folder is a report of this command.
MARKER = ".lamo-report"


def provenance(command: str | None = None) -> dict:
    """Where a results file came from: command (default: this process's), commit, versions, date, machine."""
    import torch

    from .. import __version__

    return {"command": " ".join(sys.argv) if command is None else command, "commit": _commit(),
            "lamo_version": __version__, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads".strip()}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
