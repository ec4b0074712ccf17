"""Find the adapter for a backbone: :func:`get_adapter` takes a family name, a pipeline, a transformer
(any object of a family's diffusers classes) or a model folder / hub id with a ``model_index.json``.

New families register with :func:`register_adapter`; nothing else in LaMo needs to change.
"""
from __future__ import annotations

import json
import os
from typing import Any

from .base import BackboneAdapter, normalized_family_name
from .cogvideox import CogVideoXAdapter
from .hunyuan_video import HunyuanVideoAdapter
from .ltx import LTXAdapter
from .wan import WanAdapter

__all__ = ["ADAPTERS", "register_adapter", "get_adapter", "family_of", "detect_family", "normalized_family_name"]

ADAPTERS: dict[str, type[BackboneAdapter]] = {}


def register_adapter(cls: type[BackboneAdapter]) -> type[BackboneAdapter]:
    """Register an adapter class under its ``family`` name (usable as a decorator)."""
    if not cls.family:
        raise ValueError(f"{cls.__name__} must set `family`")
    ADAPTERS[cls.family] = cls
    return cls


register_adapter(CogVideoXAdapter)
register_adapter(WanAdapter)
register_adapter(HunyuanVideoAdapter)
register_adapter(LTXAdapter)


def _family_of_class_name(name: str) -> str | None:
    name = name.removeprefix("LaMo")
    for family, cls in ADAPTERS.items():
        if any(name.startswith(prefix) for prefix in cls.class_prefixes):
            return family
    return None


def family_of(obj: Any) -> str:
    """Family name (``"cogvideox"``, ``"wan"``, ``"hunyuanvideo"``, ``"ltx"``) of a name, pipeline, transformer or
    ``model_index.json`` dict.

    A string is a family name or any name starting with one (``"CogVideoX-2b"``, ``"WanPipeline"``,
    ``"HunyuanVideo-13B"``; ``-``, ``_`` and spaces are ignored: ``"hunyuan-video"``). Objects are recognised by
    their diffusers class names (``CogVideoX…``, ``Wan…``, ``HunyuanVideoPipeline``, ``LTXPipeline``, with or
    without LaMo's ``LaMo`` prefix, subclasses included); a pipeline also by its transformer.
    """
    if isinstance(obj, str):
        # a family name, or any name that starts with one: "CogVideoX-2b", "WanPipeline", "LaMoWanPipeline"
        key = normalized_family_name(obj)
        for family in sorted(ADAPTERS, key=len, reverse=True):
            if key.startswith(family):
                return family
        raise ValueError(f"unknown backbone family {obj!r}; LaMo has adapters for {sorted(ADAPTERS)}")
    if isinstance(obj, dict):  # a model_index.json
        components = [v[1] for v in obj.values() if isinstance(v, list) and len(v) == 2 and v[1]]
        names = [obj.get("_class_name", "")] + components
        for name in names:
            family = _family_of_class_name(str(name))
            if family:
                return family
        raise ValueError(
            f"model_index.json of a {obj.get('_class_name', 'pipeline')!r} names no class of a family LaMo knows; "
            f"pass the family explicitly (one of {sorted(ADAPTERS)})"
        )
    adapter = getattr(obj, "adapter", None)
    if isinstance(adapter, BackboneAdapter):
        return adapter.family
    for klass in type(obj).__mro__:
        family = _family_of_class_name(klass.__name__)
        if family:
            return family
    for attr in ("transformer", "transformer_2"):
        sub = getattr(obj, attr, None)
        if sub is not None:
            return family_of(sub)
    raise ValueError(
        f"cannot tell the backbone family of a {type(obj).__name__}; pass the family name "
        f"(one of {sorted(ADAPTERS)})"
    )


def get_adapter(pipe_or_name: Any) -> BackboneAdapter:
    """The :class:`BackboneAdapter` for a family name, pipeline, transformer or ``model_index.json`` dict."""
    adapter = getattr(pipe_or_name, "adapter", None)
    if isinstance(adapter, BackboneAdapter):
        return adapter
    return ADAPTERS[family_of(pipe_or_name)]()


def detect_family(model: str | os.PathLike) -> str:
    """Family of a saved pipeline (local folder or hub id) from its ``model_index.json``."""
    path = os.fspath(model)
    index = os.path.join(path, "model_index.json")
    if os.path.isdir(path):
        if not os.path.isfile(index):
            raise FileNotFoundError(f"{path} has no model_index.json: it is not a saved diffusers pipeline")
        with open(index) as f:
            return family_of(json.load(f))
    from diffusers import DiffusionPipeline

    return family_of(dict(DiffusionPipeline.load_config(path)))
