"""Helpers for the tests of the scripts in ``benchmarks/``: load one as a module, and a tiny world backbone
(16 px, 8 frames) trained for a few steps to run them on."""
import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
#: A small world the tiny backbones are trained and scored on.
TINY_WORLD = {"size": 16, "frames": 8, "radius": (1.5, 2.0), "gravity": 0.4}


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` as a module (registered in ``sys.modules``: its dataclasses look it up)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def tiny_world_backbone(root: Path, clips: int = 24) -> Path:
    """Simulate ``clips`` clips of :data:`TINY_WORLD` into ``root/data`` and train the ``test`` preset on them
    for 4 steps into ``root/run``; returns the saved pipeline folder."""
    from lamo.demo.train_backbone import BackboneTrainConfig, train_backbone
    from lamo.physics.dataset import write_dataset
    from lamo.physics.world import get_world_config

    write_dataset(root / "data", clips, get_world_config("tiny", **TINY_WORLD), seed=1, progress=False)
    return train_backbone(BackboneTrainConfig(data=str(root / "data"), out=str(root / "run"), preset="test", steps=4,
                                              batch_size=4, save_every=4))
