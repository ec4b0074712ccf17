"""Latent cache: encode a video dataset once with the backbone's VAE and text encoder.

``lamo cache`` writes ``OUT/shard-00000.safetensors …`` and ``OUT/manifest.json``. Shard ``k`` holds dataset
items ``[k·S, (k+1)·S)`` that decoded cleanly:

* ``latents`` ``(n, F, C, H, W)`` — LaMo's layout, in the backbone's latent space (adapter.encode_video);
* ``pooled`` ``(n, D)`` — the pooled prompt embedding the motion prior is conditioned on;
* ``prompt_embeds`` ``(n, L, D)`` — the full prompt embeddings, for fine-tuning (``--no-prompt-embeds`` drops them);
* ``index`` ``(n,)`` — the dataset index of each row.

The manifest records the backbone family, model, shapes, and per shard its file, rows, captions and the
items it skipped (unreadable, too short). A shard is written to a temporary name and renamed, then the
manifest likewise, so an interrupted run never leaves a corrupt file, and re-running resumes after the
last finished shard. Training the prior then needs neither the VAE nor the text encoder.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .configs import CacheConfig
from .errors import InputError, MissingInputError

__all__ = ["CacheConfig", "build_cache", "CachedLatentDataset", "load_manifest", "cache_recipe", "data_identity",
           "check_text_len"]

log = logging.getLogger(__name__)


def cache_recipe(cfg: CacheConfig) -> dict:
    """What makes a cache's tensors: its options (not the device, batch size or shard budget, nor the paths as
    typed: the dataset is :func:`data_identity`'s fingerprint, a local model its absolute path) and the model's
    weights."""
    from .sampling import folder_fingerprint

    d = asdict(cfg)
    for k in ("device", "batch_size", "max_shards", "data", "out"):
        d.pop(k)
    if os.path.exists(cfg.model):
        d["model"] = str(Path(cfg.model).resolve())
    d["model_sha256"] = folder_fingerprint(cfg.model, sample=1 << 20)
    return d


def data_identity(data: str | os.PathLike, items: list | None = None) -> dict:
    """Which dataset ``data`` is, whatever directory it is named from: ``{"path": absolute resolved path,
    "sha256": fingerprint}``. The fingerprint covers each listed video's name (relative to the dataset folder),
    size and modification time, and its caption — so this dataset with videos added, removed or rewritten, or
    captions edited, has another fingerprint. ``items``: the dataset's ``(video, caption)`` list if read already."""
    import hashlib

    from .data import read_index

    root = Path(data).resolve()
    base = root if root.is_dir() else root.parent
    h = hashlib.sha256()
    for video, caption in (items if items is not None else read_index(data)):
        v = Path(video).resolve()
        try:
            name, st = v.relative_to(base).as_posix(), v.stat()
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        except ValueError:  # a video outside the dataset folder: its absolute path
            st = v.stat() if v.exists() else None
            h.update(f"{v}\0{st and st.st_size}\0{st and st.st_mtime_ns}\0".encode())
        except OSError:  # listed but missing (skipped when encoded)
            h.update(f"{video}\0missing\0".encode())
        h.update(f"{caption}\n".encode())
    return {"path": str(root), "sha256": h.hexdigest()}


def _manifest_text_len(manifest: dict, folder: str | os.PathLike | None) -> int | None:
    """The prompt length a cache's embeddings were made with: recorded, else its option, else a shard's width."""
    if manifest.get("text_len"):
        return int(manifest["text_len"])
    given = (manifest.get("recipe") or {}).get("max_sequence_length") or \
        (manifest.get("config") or {}).get("max_sequence_length")
    if given:
        return int(given)
    if folder is not None:
        for s in manifest.get("shards", []):
            if s.get("n"):
                try:
                    with safe_open(str(Path(folder) / s["file"]), framework="pt") as f:
                        if "prompt_embeds" in f.keys():
                            return int(f.get_slice("prompt_embeds").get_shape()[1])
                except (OSError, KeyError, ValueError):
                    pass
                break
    return None


def check_text_len(manifest: dict, model_sizes: dict | None = None, folder: str | os.PathLike | None = None) -> None:
    """Refuse a cache whose prompt embeddings were made at another prompt length than the model's own.

    ``model_sizes``: :func:`lamo.pipelines.settings.model_sizes` of the model trained on the cache (``lamo train
    finetune``); without it, the length of the model the cache was made with, as its manifest records
    (``lamo train prior``: the pooled prompt a prior learns from must be the one ``lamo sample`` gives it).
    ``folder``: the cache folder, named in the message (and read for the length of caches that do not record
    it). A cache that records neither length passes with a warning.
    """
    where = f"the latent cache {folder}" if folder is not None else "the latent cache"
    have = _manifest_text_len(manifest, folder)
    want = model_sizes["text_len"] if model_sizes else manifest.get("model_text_len")
    if have is None or want is None:
        log.warning("%s does not record the prompt length it was made with; rebuild it with `lamo cache` so that "
                    "it is checked against the model's", where)
        return
    if int(have) != int(want):
        raise InputError(f"{where} holds prompt embeddings of {have} tokens but the model takes {want} (as `lamo "
                         f"sample` encodes prompts): rebuild it with `lamo cache` without --max-sequence-length (the "
                         f"model's own) or with --max-sequence-length {want}, into another --out")


def load_manifest(folder: str | os.PathLike) -> dict:
    """The manifest of a cache folder, with a clear error when there is none."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise MissingInputError(f"{path} not found: build the cache first with `lamo cache --model … --data … --out {folder}`")
    fix = f"rebuild it with `lamo cache` into a new --out (or delete {folder} and build it again)"
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"the latent cache {folder}: manifest.json is not valid JSON ({e}); {fix}") from None
    shards = manifest.get("shards") if isinstance(manifest, dict) else None
    if not isinstance(shards, list):
        raise InputError(f"the latent cache {folder}: manifest.json lists no shards (no 'shards' list); {fix}")
    for k, s in enumerate(shards):
        ok = (isinstance(s, dict) and isinstance(s.get("file"), str) and s["file"] == Path(s["file"]).name
              and s["file"] not in ("", ".", "..") and isinstance(s.get("n"), int) and s["n"] >= 0
              and isinstance(s.get("captions"), list) and len(s["captions"]) == s["n"])
        if not ok:
            raise InputError(f"the latent cache {folder}: manifest.json's shard {k} is not a shard record (a plain "
                             f"file name, a count n ≥ 0 and n captions): {str(s)[:120]}; {fix}")
    return manifest


def check_shards(folder: str | os.PathLike, manifest: dict) -> None:
    """Refuse a cache whose listed shard files are missing, truncated or too short for their rows (one line naming
    the shard and what to do), before anything is trained on it."""
    from .errors import check_safetensors

    for s in manifest["shards"]:
        if not s["n"]:
            continue
        header = check_safetensors(Path(folder) / s["file"], f"the latent cache {folder}: shard")
        for name in ("latents", "pooled"):
            shape = (header.get(name) or {}).get("shape") if isinstance(header.get(name), dict) else None
            if not (isinstance(shape, list) and shape and shape[0] >= s["n"]):
                raise InputError(f"the latent cache {folder}: shard {s['file']} has no {name!r} tensor of "
                                 f"{s['n']} rows (found {shape}); rebuild the cache with `lamo cache` into a new --out")


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def build_cache(cfg: CacheConfig) -> dict:
    """Encode (or finish encoding) the dataset into ``cfg.out``; returns the manifest."""
    from diffusers import DiffusionPipeline
    from tqdm.auto import tqdm

    from .adapters import get_adapter
    from .data import VideoCaptionDataset
    from .pipelines import pipeline_class
    from .video_io import VideoReadError

    from .pipelines.settings import model_sizes

    out = Path(cfg.out)
    ds = VideoCaptionDataset(cfg.data, cfg.frames, cfg.height, cfg.width, cfg.stride)
    family = get_adapter(DiffusionPipeline.load_config(cfg.model)).family
    manifest = load_manifest(out) if (out / "manifest.json").is_file() else None
    data = data_identity(cfg.data, ds.items)
    if manifest and manifest.get("data"):  # the dataset by where it is and what it holds, not the path as typed
        old = manifest["data"]
        if old.get("path") != data["path"]:
            raise InputError(f"{out} caches another dataset ({old.get('path')}) than --data {cfg.data} "
                             f"({data['path']}): its shards would mix two datasets; use another --out")
        if old.get("sha256") != data["sha256"]:
            raise InputError(f"the dataset {data['path']} changed since {out} was started (videos added, removed or "
                             "rewritten, or captions edited): its shards would mix two datasets; use another --out")
    elif manifest and os.path.abspath(manifest["config"]["data"]) != os.path.abspath(cfg.data):  # made before
        raise InputError(f"{out} caches {manifest['config']['data']} with {manifest['config']['model']}; "
                         "use another --out for another dataset or model")
    from ._quiet import quiet_loading

    with quiet_loading():
        pipe = pipeline_class(family).from_pretrained(cfg.model).to(cfg.device)
    text_len = model_sizes(pipe, family)["text_len"]  # the model's own prompt length: what `lamo sample` encodes
    if cfg.max_sequence_length is None:
        from dataclasses import replace

        cfg = replace(cfg, max_sequence_length=text_len)
    elif cfg.max_sequence_length != text_len:
        log.warning("--max-sequence-length %d differs from the model's own %d: `lamo sample` encodes prompts at %d, "
                    "so `lamo train` will refuse this cache", cfg.max_sequence_length, text_len, text_len)
    recipe = cache_recipe(cfg)
    if manifest:  # resuming: every shard must be encoded the same way (same size, model weights, dtype …)
        old = manifest.get("recipe") or {k: manifest["config"].get(k) for k in recipe if k in manifest["config"]}
        changed = [k for k in recipe if k in old and old[k] != recipe[k]]
        if changed:
            raise InputError(f"{out} was cached with another {', '.join(changed)} "
                             f"({', '.join(f'{k}={old[k]!r}' for k in changed)}); a resumed cache must match: "
                             "use the same options or another --out")
    if manifest is None:
        manifest = {"family": family, "config": asdict(cfg), "recipe": recipe, "n_items": len(ds), "shards": []}
    manifest.update(data=data, text_len=cfg.max_sequence_length, model_text_len=text_len)
    out.mkdir(parents=True, exist_ok=True)
    adapter = get_adapter(pipe)
    dtype = getattr(torch, cfg.dtype)
    n_shards = (len(ds) + cfg.shard_size - 1) // cfg.shard_size
    done = {s["shard"] for s in manifest["shards"]}
    todo = [k for k in range(n_shards) if k not in done][: cfg.max_shards]
    bar = tqdm(total=sum(min(cfg.shard_size, len(ds) - k * cfg.shard_size) for k in todo), desc="lamo cache",
               unit="video", dynamic_ncols=True)
    for k in todo:
        rows, skipped = [], []
        for i in range(k * cfg.shard_size, min(len(ds), (k + 1) * cfg.shard_size)):
            try:
                rows.append(ds.load(i))
            except (VideoReadError, ValueError) as e:
                skipped.append({"index": i, "video": str(ds.items[i][0]), "error": str(e)})
                log.warning("skipping video %d: %s", i, e)
            bar.update(1)
        tensors: dict[str, list[torch.Tensor]] = {"latents": [], "pooled": [], "prompt_embeds": []}
        with torch.no_grad():
            for b in range(0, len(rows), cfg.batch_size):
                batch = rows[b : b + cfg.batch_size]
                frames = torch.stack([r["frames"] for r in batch]).to(cfg.device)  # (B, F, 3, H, W)
                tensors["latents"].append(adapter.encode_video(pipe.vae, frames, sample=False).to("cpu", dtype))
                emb = adapter.encode_prompt(pipe, [r["caption"] for r in batch],
                                            max_sequence_length=cfg.max_sequence_length)
                tensors["pooled"].append(adapter.pool_prompt(emb).to("cpu", dtype))
                if cfg.prompt_embeds:
                    tensors["prompt_embeds"].append(emb.to("cpu", dtype))
        entry = {"shard": k, "file": f"shard-{k:05d}.safetensors", "n": len(rows),
                 "captions": [r["caption"] for r in rows], "skipped": skipped}
        if rows:
            data = {name: torch.cat(v).contiguous() for name, v in tensors.items() if v}
            data["index"] = torch.tensor([r["index"] for r in rows])
            tmp = out / f".{entry['file']}.tmp"
            save_file(data, str(tmp))
            os.replace(tmp, out / entry["file"])
            manifest["latent_shape"] = list(data["latents"].shape[1:])
            manifest["text_dim"] = int(data["pooled"].shape[1])
        manifest["shards"] = sorted(manifest["shards"] + [entry], key=lambda s: s["shard"])
        _write_json(out / "manifest.json", manifest)
    bar.close()
    manifest["complete"] = len(manifest["shards"]) == n_shards
    _write_json(out / "manifest.json", manifest)
    return manifest


class CachedLatentDataset(torch.utils.data.Dataset):
    """Rows of a latent cache: ``{"latents" (F, C, H, W), "pooled" (D,), ["prompt_embeds" (L, D)], "caption"}``."""

    def __init__(self, folder: str | os.PathLike, with_prompt_embeds: bool = False):
        self.folder = Path(folder)
        self.manifest = load_manifest(folder)
        check_shards(folder, self.manifest)
        self.rows = [(s["file"], j, c) for s in self.manifest["shards"] if s["n"] for j, c in enumerate(s["captions"])]
        if not self.rows:
            raise InputError(f"{folder}: the cache holds no rows")
        self.with_prompt_embeds = with_prompt_embeds

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        file, j, caption = self.rows[i]
        names = ["latents", "pooled"] + (["prompt_embeds"] if self.with_prompt_embeds else [])
        with safe_open(str(self.folder / file), framework="pt") as f:
            item = {n: f.get_slice(n)[j] for n in names}
        item["caption"] = caption
        return item
