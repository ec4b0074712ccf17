"""Checkpoints shared by the trainers: atomic ``accelerator.save_state`` + ``trainer_state.json`` + ``config.yaml``,
written to a temporary folder and renamed; and resuming from the newest one.

**No pickle on disk.** ``accelerator.save_state`` writes the weights as safetensors but the optimizer state
(``optimizer.bin``), the RNG states (``random_states_<rank>.pkl``) and a GradScaler (``scaler.pt``) with
``torch.save`` — pickle. Each of those is rewritten before the checkpoint is renamed into place as
``<name>.json`` (the structure: numbers, strings, lists, RNG tuples and arrays) plus ``<name>.safetensors``
(its tensors), listed in ``pickle_free.json``. Resuming decodes them (``json`` and ``safetensors``, nothing
unpickled from the checkpoint) and hands the objects to ``accelerator.load_state`` through a private
temporary folder. FSDP and DeepSpeed checkpoints keep their own sharded formats (``torch.distributed.checkpoint``
/ DeepSpeed files, which pickle metadata) — resume only from checkpoints you made.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

__all__ = ["latest_checkpoint", "save_checkpoint", "atomic_folder", "resume_step", "checkpoint_step", "trim_jsonl_log",
           "to_pickle_free", "from_pickle_free", "PICKLED"]

#: what ``accelerator.save_state`` writes with ``torch.save`` (pickle); rewritten as JSON + safetensors
PICKLED = re.compile(r"(optimizer(_\d+)?\.bin|scheduler(_\d+)?\.bin|random_states_\d+\.pkl|scaler\.pt)$")
_MANIFEST = "pickle_free.json"

_STEP = re.compile(r"step-(\d+)$")


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """Newest complete checkpoint in ``folder`` (one with ``trainer_state.json``), or ``None``."""
    folder = Path(folder)
    found = [(int(m.group(1)), p) for p in folder.glob("step-*") if (m := _STEP.search(p.name))
             and (p / "trainer_state.json").is_file()] if folder.is_dir() else []
    return max(found)[1] if found else None


def _pickle_free_backend(acc: Any) -> bool:
    """Whether this accelerator's checkpoints are the plain files rewritten here (not FSDP / DeepSpeed shards)."""
    kind = str(getattr(acc, "distributed_type", "NO")).rsplit(".", 1)[-1].upper()
    return kind not in ("FSDP", "DEEPSPEED", "MEGATRON_LM", "XLA")


# ---------------------------------------------------------------------------------------------
# Pickle-free state: JSON for the structure, safetensors for the tensors
# ---------------------------------------------------------------------------------------------
def _encode(obj: Any, tensors: dict) -> Any:
    """``obj`` as JSON data; its tensors go to ``tensors`` (named ``t<k>``). Raises ``TypeError`` for anything else."""
    import numpy as np
    import torch

    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = obj.detach().cpu().contiguous()
        return {"__tensor__": name}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(x, tensors) for x in obj]}
    if isinstance(obj, list):
        return [_encode(x, tensors) for x in obj]
    if isinstance(obj, dict):  # keys may be ints (optimizer state) — kept with their type
        return {"__dict__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    raise TypeError(f"cannot store a {type(obj).__name__} without pickle")  # a bug: a new kind of training state


def _decode(obj: Any, tensors: dict) -> Any:
    import numpy as np

    if isinstance(obj, list):
        return [_decode(x, tensors) for x in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__ndarray__" in obj:
        return np.asarray(obj["__ndarray__"], dtype=obj["dtype"])
    if "__tuple__" in obj:
        return tuple(_decode(x, tensors) for x in obj["__tuple__"])
    if "__dict__" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__dict__"]}
    raise ValueError(f"unknown entry {sorted(obj)} in a pickle-free state file")


def to_pickle_free(folder: str | os.PathLike) -> list[str]:
    """Rewrite the pickled files of an ``accelerator.save_state`` folder as ``.json`` + ``.safetensors``.

    The pickles are read back right after this process wrote them (``torch.load(weights_only=False)`` on
    our own fresh files), then deleted. Returns the names rewritten (also listed in ``pickle_free.json``)."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    done = []
    for path in sorted(p for p in folder.iterdir() if PICKLED.fullmatch(p.name)):
        tensors: dict = {}
        data = _encode(torch.load(path, map_location="cpu", weights_only=False), tensors)
        stem = path.with_suffix("")
        save_file(tensors, str(stem) + ".safetensors")
        Path(str(stem) + ".json").write_text(json.dumps(data))
        path.unlink()
        done.append(path.name)
    (folder / _MANIFEST).write_text(json.dumps({"rewritten": done}, indent=1))
    return done


def _checked_name(name: Any, folder: str | os.PathLike) -> str:
    """``name`` if it is one of the plain file names ``accelerator.save_state`` pickles (``optimizer.bin``,
    ``random_states_0.pkl``, …), so that it stays inside ``folder``; an :class:`~lamo.errors.InputError` otherwise
    (a crafted ``pickle_free.json`` could name ``../x.bin``)."""
    from ..errors import InputError

    if not (isinstance(name, str) and PICKLED.fullmatch(name) and "/" not in name and "\\" not in name):
        raise InputError(f"{Path(folder) / _MANIFEST} lists {name!r}, not the name of a state file in that folder "
                         "(optimizer.bin, random_states_<rank>.pkl, …): the checkpoint is damaged or was not written "
                         "by LaMo; resume from another one")
    return name


def from_pickle_free(folder: str | os.PathLike, name: str) -> Any:
    """The object that ``name`` (e.g. ``optimizer.bin``) held, decoded from its ``.json`` + ``.safetensors`` in
    ``folder``; a name that is not a plain state-file name is refused (:class:`~lamo.errors.InputError`)."""
    from safetensors.torch import load_file

    stem = str(Path(folder) / Path(_checked_name(name, folder)).with_suffix(""))
    return _decode(json.loads(Path(stem + ".json").read_text()), load_file(stem + ".safetensors"))


class atomic_folder:  # noqa: N801 — used as ``with atomic_folder(final) as tmp:``
    """``with atomic_folder(out / "prior") as tmp: prior.save_pretrained(tmp)`` — the folder is written under a
    temporary name beside ``final`` and renamed into place only once complete: an interrupted save (Ctrl-C, a full
    disk, a crash) leaves the earlier ``final`` (or none) and no half-written one; the temporary is removed."""

    def __init__(self, final: str | os.PathLike):
        self.final = Path(final)
        self.tmp = self.final.with_name(f".tmp-{self.final.name}-{os.getpid()}")

    def __enter__(self) -> Path:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        _replace_folder(self.tmp, self.final)


def _replace_folder(tmp: Path, final: Path) -> None:
    """Put the complete folder ``tmp`` at ``final``: the old ``final`` is moved aside first and deleted only after
    the rename, so at every moment one complete folder is there (or, at the first save, none yet)."""
    old = final.with_name(f".old-{final.name}-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(acc: Any, out: Path, step: int, cfg: Any, state: dict) -> Path:
    """Write ``out/checkpoints/step-{step}`` atomically and without pickle (all processes call it)."""
    import yaml

    final, tmp = out / "checkpoints" / f"step-{step:06d}", out / "checkpoints" / f".tmp-step-{step:06d}"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    acc.wait_for_everyone()
    acc.save_state(str(tmp), safe_serialization=True)
    acc.wait_for_everyone()  # every rank's random_states_<rank>.pkl is written
    if acc.is_main_process:
        if _pickle_free_backend(acc):
            to_pickle_free(tmp)
        (tmp / "trainer_state.json").write_text(json.dumps({"step": step, **state}))
        (tmp / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
        _replace_folder(tmp, final)
    acc.wait_for_everyone()
    return final


def _read_manifest(ckpt: Path) -> list[str]:
    """The names listed in ``ckpt/pickle_free.json``, each checked to be a state-file name inside ``ckpt``."""
    from ..errors import InputError

    try:
        rewritten = json.loads((ckpt / _MANIFEST).read_text())["rewritten"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise InputError(f"{ckpt / _MANIFEST} is not a LaMo state list ({e}); resume from another checkpoint") from None
    if not isinstance(rewritten, list):
        raise InputError(f"{ckpt / _MANIFEST}: 'rewritten' must be a list of file names; resume from another checkpoint")
    return [_checked_name(name, ckpt) for name in rewritten]


def _load_state(acc: Any, ckpt: Path) -> None:
    """``accelerator.load_state(ckpt)``; a pickle-free checkpoint is decoded into a private temporary folder first."""
    import torch

    if not (ckpt / _MANIFEST).is_file():
        pickled = sorted(p.name for p in ckpt.iterdir() if PICKLED.fullmatch(p.name))
        if pickled:
            acc.print(f"note: {ckpt} holds pickled state ({', '.join(pickled)}), written before LaMo stored it "
                      "as JSON + safetensors; accelerate loads it with torch.load(weights_only=True)")
        acc.load_state(str(ckpt))
        return
    rewritten = _read_manifest(ckpt)
    with tempfile.TemporaryDirectory(prefix="lamo-resume-") as tmp:
        stems = {Path(n).with_suffix("").name for n in rewritten}
        for p in ckpt.iterdir():  # the weights and the rest, as they are; never a pickle lying beside them
            if not ((p.suffix in (".json", ".safetensors") and p.with_suffix("").name in stems)
                    or PICKLED.fullmatch(p.name) or p.name == _MANIFEST):
                os.symlink(p.resolve(), Path(tmp) / p.name)
        for name in rewritten:  # what accelerate reads with torch.load, rebuilt from JSON + safetensors
            torch.save(from_pickle_free(ckpt, name), Path(tmp) / name)
        acc.load_state(tmp)


def resume_step(acc: Any, out: Path, resume_from: str | None) -> int:
    """Load ``resume_from`` (``"latest"`` or a folder) into the accelerator; return its step (0 if none)."""
    if not resume_from:
        return 0
    ckpt = latest_checkpoint(out / "checkpoints") if resume_from == "latest" else Path(resume_from)
    if ckpt is None:
        return 0
    if not (ckpt / "trainer_state.json").is_file():
        raise FileNotFoundError(f"checkpoint {ckpt} not found (or incomplete: no trainer_state.json)")
    _load_state(acc, ckpt)
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
