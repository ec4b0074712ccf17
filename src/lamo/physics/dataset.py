"""Clips with captions, and datasets of them on disk.

On-disk format (what ``lamo data physics`` writes and the training code reads)::

    DIR/world.json          the WorldConfig (plus "preset" and "units")
    DIR/metadata.jsonl      one JSON object per clip, one per line:
                            {"video": "videos/000000.mp4", "caption": "...", "scenario": "throw",
                             "seed": 7000000, "index": 0, "frames": T, "size": S,
                             "states": Trajectory.to_json()}   # exact ground truth per frame
    DIR/videos/000000.mp4   H.264, yuv444p (lamo.video_io.write_video)

Captions are templated from the scenario and from what actually happened (the contact events), e.g.
"a red ball is thrown to the right, bounces off the wall and bounces on the floor".
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .render import render
from .world import WORLD_PRESETS, Trajectory, WorldConfig, get_world_config, simulate

__all__ = ["Clip", "caption", "make_clip", "clip_seed", "write_dataset", "read_metadata", "load_world_config"]


@dataclass
class Clip:
    """One clip: ground truth, frames and caption."""

    trajectory: Trajectory
    frames: np.ndarray  # (T, S, S, 3) uint8 RGB
    caption: str


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------


def _ball(colour: str) -> str:
    return f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} ball"


def _join(base: str, clauses: list[str]) -> str:
    if not clauses:
        return base
    if len(clauses) == 1:
        return f"{base} and {clauses[0]}"
    return f"{base}, {', '.join(clauses[:-1])} and {clauses[-1]}"


def caption(traj: Trajectory) -> str:
    """A templated caption of what happens in ``traj`` (only events that happen in the clip)."""
    names = [_ball(c) for c in traj.colours]
    subject = " and ".join(names)
    plural = len(names) > 1
    verb = lambda one, many: many if plural else one  # noqa: E731
    first = {}  # kind -> time of its first impact
    for ev in traj.events:
        first.setdefault(ev.kind, ev.time)
    phrases = {
        "ball": "collide" if plural else "hits another ball",
        "wall": verb("bounces off the wall", "bounce off the wall"),
        "floor": verb("bounces on the floor", "bounce on the floor"),
    }
    clauses = [phrases[k] for k in sorted(first, key=first.get)]
    vx0 = traj.velocity[0, 0, 0]
    side = "right" if vx0 > 0 else "left"
    if traj.scenario == "drop":
        base = f"{subject} {verb('is', 'are')} dropped"
        clauses = clauses or [verb("falls", "fall")]
    elif traj.scenario == "throw":
        base = f"{subject} is thrown to the {side}"
    elif traj.scenario == "roll":
        base = f"{subject} rolls to the {side}"
        clauses = [c for c in clauses if "floor" not in c]  # it is on the floor all along
        if traj.friction > 0:
            stopped = np.all(np.abs(traj.velocity[-1]) < 1e-9)
            clauses.append("comes to a stop" if stopped else "slows down")
    elif traj.scenario == "collide":
        how = "roll" if traj.variant == "floor" else "fly"
        base = f"{subject} {how} toward each other"
        if traj.variant == "floor":
            clauses = [c for c in clauses if "floor" not in c]
    elif traj.scenario == "pass":
        base = f"{subject} flies across from {'left to right' if vx0 > 0 else 'right to left'}"
        if not traj.visible[-1].any():
            clauses.append("leaves the scene")
    else:
        base = f"{subject} moves"
    return _join(base, clauses)


# ---------------------------------------------------------------------------------------------
# Clips and datasets
# ---------------------------------------------------------------------------------------------


def clip_seed(seed: int, index: int) -> int:
    """The simulator seed of clip ``index`` of a dataset made with ``seed`` (recorded in the metadata)."""
    return int(seed) * 1_000_000 + int(index)


def make_clip(cfg: WorldConfig, seed: int, scenario: str | None = None) -> Clip:
    """Simulate, render and caption one clip (deterministic in ``seed``)."""
    traj = simulate(cfg, seed, scenario)
    return Clip(traj, render(traj, cfg), caption(traj))


def write_dataset(
    out: str | os.PathLike,
    n: int,
    cfg: WorldConfig | str = "tiny",
    seed: int = 0,
    progress: bool = True,
    preset_name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``n`` clips to ``out`` in the format above; returns the path of ``metadata.jsonl``.

    The dataset is written to a temporary folder beside ``out`` and moved into place when complete, so an
    interrupted run leaves ``out`` as it was: never a mix of two datasets. A non-empty ``out`` is refused
    unless ``overwrite`` (then it is replaced as a whole, once the new dataset is complete).
    """
    import shutil

    from tqdm.auto import tqdm

    from ..errors import InputError
    from ..video_io import write_video

    if isinstance(cfg, str):
        preset_name, cfg = cfg, get_world_config(cfg)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"the number of clips (-n) must be an integer ≥ 1, got {n!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file, not a folder; pass another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out} is not empty; pass --overwrite to replace it (the new dataset takes its place only "
                         "once complete) or another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "videos").mkdir(parents=True)
    try:
        world = {"preset": preset_name, "units": "pixels and frames (gravity in px/frame²)", **cfg.to_dict()}
        (tmp / "world.json").write_text(json.dumps(world, indent=2) + "\n")
        with open(tmp / "metadata.jsonl", "w") as f:
            for i in tqdm(range(n), desc="physics clips", unit="clip", disable=not progress):
                s = clip_seed(seed, i)
                clip = make_clip(cfg, s)
                rel = f"videos/{i:06d}.mp4"
                write_video(tmp / rel, clip.frames, fps=cfg.fps, pix_fmt="yuv444p")  # data for programs: full colour
                record = {"video": rel, "caption": clip.caption, "scenario": clip.trajectory.scenario, "seed": s,
                          "index": i, "frames": cfg.frames, "size": cfg.size, "states": clip.trajectory.to_json()}
                f.write(json.dumps(record) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.is_dir():
        os.replace(out, old)  # an empty or (with overwrite) replaced dataset
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    return out / "metadata.jsonl"


def read_metadata(folder: str | os.PathLike) -> list[dict]:
    """The records of ``folder/metadata.jsonl`` (blank lines skipped; a bad line is an error naming it)."""
    from ..data.tables import read_rows

    return [row.values for row in read_rows(Path(folder) / "metadata.jsonl", what="dataset metadata")]


def load_world_config(path: str | os.PathLike) -> WorldConfig:
    """Read a ``world.json`` (or the one inside a dataset folder) back into a :class:`WorldConfig`."""
    from ..errors import InputError, MissingInputError

    path = Path(path)
    if path.is_dir():
        path = path / "world.json"
    if not path.is_file():
        raise MissingInputError(f"world file {path} not found")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(d, dict):
        raise InputError(f"{path}: a world.json holds one JSON object, got {type(d).__name__}")
    d.pop("units", None)
    preset = d.pop("preset", None)
    if not d and preset in WORLD_PRESETS:
        return get_world_config(preset)
    return WorldConfig.from_dict(d)
