"""Checkpoints shared by the trainers: atomic ``accelerator.save_state`` (safetensors) + ``trainer_state.json``
+ ``config.yaml``, written to a temporary folder and renamed; and resuming from the newest one."""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

__all__ = ["latest_checkpoint", "save_checkpoint", "resume_step", "checkpoint_step", "trim_jsonl_log"]

_STEP = re.compile(r"step-(\d+)$")


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """Newest complete checkpoint in ``folder`` (one with ``trainer_state.json``), or ``None``."""
    folder = Path(folder)
    found = [(int(m.group(1)), p) for p in folder.glob("step-*") if (m := _STEP.search(p.name))
             and (p / "trainer_state.json").is_file()] if folder.is_dir() else []
    return max(found)[1] if found else None


def save_checkpoint(acc: Any, out: Path, step: int, cfg: Any, state: dict) -> Path:
    """Write ``out/checkpoints/step-{step}`` atomically (all processes call it)."""
    import yaml

    final, tmp = out / "checkpoints" / f"step-{step:06d}", out / "checkpoints" / f".tmp-step-{step:06d}"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    acc.wait_for_everyone()
    acc.save_state(str(tmp), safe_serialization=True)
    if acc.is_main_process:
        (tmp / "trainer_state.json").write_text(json.dumps({"step": step, **state}))
        (tmp / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    acc.wait_for_everyone()
    return final


def resume_step(acc: Any, out: Path, resume_from: str | None) -> int:
    """Load ``resume_from`` (``"latest"`` or a folder) into the accelerator; return its step (0 if none)."""
    if not resume_from:
        return 0
    ckpt = latest_checkpoint(out / "checkpoints") if resume_from == "latest" else Path(resume_from)
    if ckpt is None:
        return 0
    if not (ckpt / "trainer_state.json").is_file():
        raise FileNotFoundError(f"checkpoint {ckpt} not found (or incomplete: no trainer_state.json)")
    acc.load_state(str(ckpt))
    step = json.loads((ckpt / "trainer_state.json").read_text())["step"]
    acc.print(f"resumed from {ckpt} at step {step}")
    return step


def checkpoint_step(ckpt: str | os.PathLike) -> int:
    """The step a checkpoint was written at (its ``trainer_state.json``)."""
    return int(json.loads((Path(ckpt) / "trainer_state.json").read_text())["step"])


def trim_jsonl_log(path: str | os.PathLike, step: int) -> int:
    """Keep the records of a JSONL step log with ``"step" ≤ step`` (a resumed run logs the later steps again);
    a line cut short by an interrupt is dropped. Rewritten atomically; returns how many records were dropped."""
    path = Path(path)
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            dropped += bool(line.strip())
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(x + "\n" for x in kept))
        os.replace(tmp, path)
    return dropped
