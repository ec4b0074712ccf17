"""``lamo cache``: encode a video dataset once into sharded safetensors (resumable)."""
from __future__ import annotations

import argparse

from ._args import COUNT, add_config_command, config_from_args, device

#: the type (valid range) of CacheConfig's numeric fields and its device
_TYPES = dict(frames=COUNT, height=COUNT, width=COUNT, stride=COUNT, shard_size=COUNT, batch_size=COUNT,
              max_sequence_length=COUNT, max_shards=COUNT, device=device)


def register(sub: argparse._SubParsersAction) -> None:
    from ..configs import CacheConfig

    p = add_config_command(sub, "cache", CacheConfig, types=_TYPES,
                           help="encode videos and prompts once with the backbone's VAE and text encoder")
    p.set_defaults(func=_cache)


def check_config(cfg) -> None:
    """Refuse a dtype and paths `lamo cache` cannot use, naming the flag (the numbers were checked by their declared
    ranges, :data:`_TYPES`, when the arguments were parsed)."""
    import os

    from ..errors import InputError, MissingInputError

    if cfg.dtype not in ("float32", "bfloat16", "float16"):
        raise InputError(f"--dtype must be float32, bfloat16 or float16, got {cfg.dtype!r}")
    if not os.path.exists(cfg.data):
        raise MissingInputError(f"--data {cfg.data}: no such file or folder")
    if os.path.exists(cfg.out) and not os.path.isdir(cfg.out):
        raise InputError(f"--out {cfg.out} is a file, not a folder")


def _cache(args: argparse.Namespace) -> int:
    from ..cache import CacheConfig, build_cache

    cfg = config_from_args(CacheConfig, args)
    check_config(cfg)
    m = build_cache(cfg)
    n = sum(s["n"] for s in m["shards"])
    skipped = sum(len(s["skipped"]) for s in m["shards"])
    print(f"{n} item(s) cached in {len(m['shards'])} shard(s), {skipped} skipped; "
          f"{'complete' if m['complete'] else 'incomplete — run again to resume'}: {cfg.out}")
    return 0
