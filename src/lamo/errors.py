"""The one exception type for mistakes in what the user asked for, and for pieces that are missing.

``lamo`` prints a :class:`UserError` as one line (``lamo COMMAND: error: …``) and exits with status 2;
any other exception is a bug in LaMo or in a library it calls, and shows its traceback. The subclasses
keep the built-in type a caller of the Python API would catch. :func:`require` names an optional package
that a feature needs and is not installed (:class:`MissingDependencyError`), with how to get it.
"""
from __future__ import annotations

import importlib
import re
from types import ModuleType

__all__ = ["UserError", "InputError", "MissingInputError", "MissingDependencyError", "OPTIONAL_PACKAGES", "require",
           "install_advice", "check_safetensors", "HUB_ID"]

#: ``owner/name`` on the Hugging Face Hub: how LaMo tells a hub id from a local path the user meant (``fullmatch``)
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class UserError(Exception):
    """Bad input: a flag, a file or a folder the user named. The message says what is wrong and what to do."""


class InputError(UserError, ValueError):
    """A value the user gave (a flag, a config entry, a file's contents) is not usable."""


class MissingInputError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class MissingDependencyError(UserError, ImportError):
    """An optional package that what was asked for needs is not installed. The message says how to install it."""


#: import name → how to install it: the packages LaMo uses only for some features (experiment trackers of
#: ``--log-with``; peft for LoRA, a main dependency, listed so that a broken install is named as one)
OPTIONAL_PACKAGES: dict[str, str] = {
    "peft": "pip install peft",
    "tensorboard": "pip install 'lamo[train]' (or pip install tensorboard)",
    "tensorboardX": "pip install 'lamo[train]' (or pip install tensorboard)",
    "wandb": "pip install wandb",
    "aim": "pip install aim",
    "trackio": "pip install trackio",
    "comet_ml": "pip install comet_ml",
    "mlflow": "pip install mlflow",
    "clearml": "pip install clearml",
    "dvclive": "pip install dvclive",
    "swanlab": "pip install swanlab",
}


def install_advice(package: str) -> str:
    """How to install ``package`` (an import name)."""
    return OPTIONAL_PACKAGES.get(package, f"pip install {package}")


def require(package: str, needed_for: str, instead: str = "") -> ModuleType:
    """Import and return ``package``, or raise :class:`MissingDependencyError` in one line: what needs it, how to
    install it and (``instead``) what to do without it. E.g. ``require("peft", "LoRA fine-tuning (--lora-rank > 0)",
    "or pass --lora-rank 0 for full fine-tuning")``."""
    try:
        return importlib.import_module(package)
    except ImportError as e:
        tail = f", {instead}" if instead else ""
        raise MissingDependencyError(f"{needed_for} needs the package {package}, which is not installed: "
                                     f"{install_advice(package)}{tail}") from e


def check_safetensors(path, what: str) -> dict:
    """The header of safetensors file ``path`` (``{name: {"dtype", "shape", "data_offsets"}, …}``), after checking,
    without reading the tensors, that the file is whole: a header that parses and tensors whose bytes all lie in
    the file. A missing file is :class:`MissingInputError`, a truncated or garbled one :class:`InputError`; both
    name ``what`` (e.g. ``"--prior runs/p: its weights"``) and the file."""
    import json
    import os
    import struct

    if not os.path.isfile(path):
        raise MissingInputError(f"{what}: {path} is missing")
    size = os.path.getsize(path)

    def bad(why: str) -> InputError:
        return InputError(f"{what}: {path} is not a whole safetensors file ({why}); copy or write it again")

    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise bad(f"{size} bytes")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8 or n > 100_000_000:
            raise bad(f"a header of {n} bytes in a file of {size}")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise bad(f"its header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    data = size - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise bad(f"tensor {name!r} has no valid data_offsets")
        if offsets[1] > data:
            raise bad(f"tensor {name!r} ends at byte {offsets[1]} of {data} data bytes: truncated")
    return header
