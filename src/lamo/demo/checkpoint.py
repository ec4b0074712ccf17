"""Atomic, pickle-free training checkpoints for the demo backbone trainer.

A checkpoint is a folder ``step-000500/`` holding ``model.safetensors`` (every trained tensor, EMA
included, by name), ``optimizer.safetensors`` (Adam moments, by ``param_index.key``),
``trainer_state.json`` (step, optimizer hyper-parameters, RNG state as a list of bytes) and the
run's ``config.json``. It is written to a temporary folder and renamed into place, so an
interruption mid-save leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint"]

_STEP = re.compile(r"step-(\d+)$")


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The highest-step complete checkpoint in ``folder`` (``None`` when there is none)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP.match(p.name)) and (p / "trainer_state.json").is_file()]
    return max(found)[1] if found else None


def save_checkpoint(folder: str | os.PathLike, step: int, tensors: dict[str, torch.Tensor],
                    optimizer: torch.optim.Optimizer, config: dict, rng: torch.Tensor, keep: int = 2) -> Path:
    """Write ``folder/step-{step:06d}`` atomically and keep the newest ``keep`` checkpoints."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:06d}"
    tmp = folder / f".tmp-step-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    unique, aliases, seen = {}, {}, {}
    for k, v in tensors.items():  # tied weights (e.g. T5's shared embedding) are stored once
        ptr = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
        if ptr in seen:
            aliases[k] = seen[ptr]
        else:
            seen[ptr] = k
            unique[k] = v.detach().cpu().contiguous()
    save_file(unique, tmp / "model.safetensors")
    opt_state = optimizer.state_dict()
    flat = {f"{i}.{k}": v.detach().cpu().contiguous() for i, st in opt_state["state"].items() for k, v in st.items()
            if isinstance(v, torch.Tensor)}
    save_file(flat, tmp / "optimizer.safetensors")
    state = {"step": step, "param_groups": opt_state["param_groups"], "rng": rng.tolist(), "aliases": aliases}
    (tmp / "trainer_state.json").write_text(json.dumps(state))
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    done = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP.match(p.name)))
    for _, old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | os.PathLike, optimizer: torch.optim.Optimizer) -> tuple[int, dict[str, torch.Tensor], torch.Tensor]:
    """Load a checkpoint into ``optimizer``; return ``(step, tensors, rng_state)``."""
    path = Path(path)
    if not (path / "trainer_state.json").is_file():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (trainer_state.json is missing)")
    state = json.loads((path / "trainer_state.json").read_text())
    flat = load_file(path / "optimizer.safetensors")
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in flat.items():
        i, k = key.split(".", 1)
        per_param.setdefault(int(i), {})[k] = v
    optimizer.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
    tensors = load_file(path / "model.safetensors")
    for alias, name in state.get("aliases", {}).items():
        tensors[alias] = tensors[name]
    return int(state["step"]), tensors, torch.tensor(state["rng"], dtype=torch.uint8)
