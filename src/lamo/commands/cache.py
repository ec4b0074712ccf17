"""``lamo cache``: encode a video dataset once into sharded safetensors (resumable)."""
from __future__ import annotations

import argparse
from dataclasses import fields


def register(sub: argparse._SubParsersAction) -> None:
    from ..cache import CacheConfig

    p = sub.add_parser("cache", help="encode videos and prompts once with the backbone's VAE and text encoder")
    for f in fields(CacheConfig):
        flag = f"--{f.name.replace('_', '-')}"
        if f.name == "prompt_embeds":
            p.add_argument("--no-prompt-embeds", dest="prompt_embeds", action="store_false",
                           help="store only the pooled prompt (enough for training the prior)")
        elif f.name in ("model", "data", "out", "frames", "height", "width"):
            p.add_argument(flag, required=True, type=str if f.name in ("model", "data", "out") else int)
        else:
            default = f.default
            p.add_argument(flag, type=int if f.name in ("stride", "shard_size", "batch_size", "max_sequence_length",
                                                        "max_shards") else str, default=default)
    p.set_defaults(func=_cache)


def _cache(args: argparse.Namespace) -> int:
    from ..cache import CacheConfig, build_cache

    cfg = CacheConfig(**{f.name: getattr(args, f.name) for f in fields(CacheConfig)})
    m = build_cache(cfg)
    n = sum(s["n"] for s in m["shards"])
    skipped = sum(len(s["skipped"]) for s in m["shards"])
    print(f"{n} item(s) cached in {len(m['shards'])} shard(s), {skipped} skipped; "
          f"{'complete' if m['complete'] else 'incomplete — run again to resume'}: {cfg.out}")
    return 0
