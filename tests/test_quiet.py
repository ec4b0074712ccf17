"""Ordinary commands print no third-party notices and one progress bar per task (lamo._quiet)."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import lamo
from lamo._quiet import NOTICES, quiet_loading, silence_notices

SRC = Path(lamo.__file__).resolve().parents[1]
DEMO_BACKBONE = SRC / "lamo" / "assets" / "demo-backbone"


class _Keep(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_only_the_two_notices_are_dropped():
    silence_notices()
    silence_notices()  # idempotent: one filter per logger
    dropped = {
        "transformers.utils.import_utils": "`CLIPImageProcessor` requires torchvision (not installed); falling back to "
                                           "`CLIPImageProcessorPil` for backward compatibility. Install torchvision …",
        "diffusers.pipelines.pipeline_utils": "Expected types for vae: (<class 'diffusers.models.autoencoders."
                                              "autoencoder_kl_cogvideox.AutoencoderKLCogVideoX'>,), got <class "
                                              "'lamo.demo.autoencoder.ConvAutoencoder'>.",
    }
    kept = {
        "transformers.utils.import_utils": "something else went wrong while importing",
        "diffusers.pipelines.pipeline_utils": "Expected types for vae: (<class 'diffusers.AutoencoderKL'>,), got "
                                              "<class 'someone.else.Autoencoder'>.",
    }
    assert set(dropped) == set(NOTICES)
    for name in NOTICES:
        logger = logging.getLogger(name)
        assert sum(type(f).__name__ == "_DropNotices" for f in logger.filters) == 1
        keep = _Keep()
        logger.addHandler(keep)
        try:
            logger.warning(dropped[name])
            logger.warning(kept[name])
        finally:
            logger.removeHandler(keep)
        assert keep.messages == [kept[name]], name


def test_loading_the_demo_backbone_prints_no_notice_and_one_bar():
    """A fresh interpreter (transformers warns only once per process): importing LaMo's pipelines and loading the
    shipped demo backbone prints neither notice, and no "Loading weights" bar inside the components bar."""
    code = f"""
from lamo._quiet import quiet_loading, silence_notices
silence_notices()
from lamo.pipelines import LaMoCogVideoXPipeline
with quiet_loading():
    LaMoCogVideoXPipeline.from_pretrained({str(DEMO_BACKBONE)!r})
from transformers.utils import logging
print("bars restored:", logging.is_progress_bar_enabled())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert "bars restored: True" in out.stdout
    for notice in ("torchvision", "Expected types", "Loading weights"):
        assert notice not in out.stderr, out.stderr
    assert "Loading pipeline components" in out.stderr  # the one bar of the task is kept


def test_quiet_loading_restores_transformers_bars():
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()
    with quiet_loading():
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with quiet_loading():
            pass
        assert not hf_logging.is_progress_bar_enabled()  # left off when it was off
    finally:
        hf_logging.enable_progress_bar()


def test_the_python_api_loads_the_shipped_backbone_without_third_party_notices():
    """The README's Python quick-start path: importing lamo.pipelines is enough to keep diffusers' notice about
    LaMo's own autoencoder ("Expected types for vae") off stderr."""
    import subprocess
    import sys

    code = ("import lamo.assets\nfrom lamo.pipelines import LaMoCogVideoXPipeline\n"
            "LaMoCogVideoXPipeline.from_pretrained(lamo.assets.demo_backbone())\n")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300).stderr
    assert "Expected types" not in err and "torchvision" not in err, err
