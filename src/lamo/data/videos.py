"""Video-caption datasets in the formats the fine-tuning tools of this field use.

An *index* lists ``(video path, caption)`` pairs; :func:`read_index` reads any of:

* a folder with ``prompts.txt`` and ``videos.txt`` (line-aligned; video paths relative to the folder —
  the finetrainers convention);
* a CSV with a ``video`` / ``file_name`` / ``path`` column and a ``caption`` / ``text`` / ``prompt`` column;
* a JSONL file (one object per line, same keys), e.g. the ``metadata.jsonl`` of ``lamo data physics``;
* a folder holding one of those files (``metadata.jsonl``, ``metadata.csv``).

:class:`VideoCaptionDataset` decodes a video with PyAV, samples ``num_frames`` frames uniformly over the
clip (or with a fixed ``stride``), resizes the short side and centre-crops to ``height × width``, and
returns ``(F, 3, H, W)`` floats in ``[-1, 1]`` with the caption. A corrupt, unreadable or too-short
video is *skipped* — the dataset moves on to the next item, logs one line and counts it in
``skipped`` — so an epoch never crashes on bad data.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..video_io import VideoReadError, read_video

__all__ = ["read_index", "VideoCaptionDataset", "sample_frame_indices", "resize_center_crop"]

log = logging.getLogger(__name__)

VIDEO_KEYS = ("video", "file_name", "path", "videopath")
CAPTION_KEYS = ("caption", "text", "prompt")


def _pick(row: dict, keys: tuple[str, ...], where: str) -> str:
    for k in keys:
        if row.get(k) not in (None, ""):
            return str(row[k])
    raise ValueError(f"{where}: no {' / '.join(keys)} field in {sorted(row)}")


def read_index(source: str | os.PathLike) -> list[tuple[Path, str]]:
    """``(video path, caption)`` pairs of a dataset; see the module docstring for the formats."""
    source = Path(source)
    if source.is_dir():
        if (source / "prompts.txt").is_file() and (source / "videos.txt").is_file():
            prompts = (source / "prompts.txt").read_text().splitlines()
            videos = (source / "videos.txt").read_text().splitlines()
            if len(prompts) != len(videos):
                raise ValueError(f"{source}: prompts.txt has {len(prompts)} lines but videos.txt has {len(videos)}; "
                                 "they must be line-aligned")
            return [(source / v.strip(), p.strip()) for v, p in zip(videos, prompts) if v.strip()]
        for name in ("metadata.jsonl", "metadata.csv"):
            if (source / name).is_file():
                return read_index(source / name)
        raise FileNotFoundError(f"{source}: no prompts.txt + videos.txt, metadata.jsonl or metadata.csv")
    if not source.is_file():
        raise FileNotFoundError(f"dataset index {source} not found")
    base = source.parent
    if source.suffix == ".csv":
        rows = list(csv.DictReader(source.read_text().splitlines()))
    elif source.suffix in (".jsonl", ".json"):
        rows = [json.loads(x) for x in source.read_text().splitlines() if x.strip()]
    else:
        raise ValueError(f"{source}: use a .csv or .jsonl index (or a folder with prompts.txt and videos.txt)")
    return [(base / _pick(r, VIDEO_KEYS, f"{source}:{i + 1}"), _pick(r, CAPTION_KEYS, f"{source}:{i + 1}"))
            for i, r in enumerate(rows)]


def sample_frame_indices(total: int, num_frames: int, stride: int | None = None) -> np.ndarray:
    """Indices of ``num_frames`` frames of a ``total``-frame clip: every ``stride``-th from the start, or
    spread uniformly over the whole clip. Raises ``ValueError`` when the clip is too short."""
    need = (num_frames - 1) * (stride or 1) + 1
    if total < need:
        raise ValueError(f"the clip has {total} frames but {need} are needed")
    if stride:
        return np.arange(num_frames) * stride
    return np.round(np.linspace(0, total - 1, num_frames)).astype(int)


def resize_center_crop(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(T, h, w, 3)`` uint8 → ``(T, height, width, 3)``: scale so the frame covers the target, then centre-crop."""
    import cv2

    T, h, w, _ = frames.shape
    if (h, w) == (height, width):
        return frames
    s = max(height / h, width / w)
    nh, nw = max(height, round(h * s)), max(width, round(w * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    out = np.stack([cv2.resize(f, (nw, nh), interpolation=interp) for f in frames])
    y, x = (nh - height) // 2, (nw - width) // 2
    return out[:, y:y + height, x:x + width]


class VideoCaptionDataset(torch.utils.data.Dataset):
    """``(F, 3, H, W)`` clips in ``[-1, 1]`` with their captions; bad videos are skipped and counted.

    Args:
        source: a dataset folder or index file (see :func:`read_index`).
        num_frames, height, width: what each item is sampled to (the backbone's frame count and size).
        stride: take every ``stride``-th frame from the start instead of spreading over the clip.
    """

    def __init__(self, source: str | os.PathLike, num_frames: int, height: int, width: int, stride: int | None = None):
        self.items = read_index(source)
        if not self.items:
            raise ValueError(f"{source}: the dataset lists no videos")
        self.num_frames, self.height, self.width, self.stride = num_frames, height, width, stride
        self.skipped: Counter[str] = Counter()  # path -> times skipped (this process)

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> dict:
        """Decode item ``index``; raises ``VideoReadError`` / ``ValueError`` for a bad video."""
        path, caption = self.items[index]
        frames = read_video(path)  # (T, h, w, 3) uint8
        frames = frames[sample_frame_indices(len(frames), self.num_frames, self.stride)]
        frames = resize_center_crop(frames, self.height, self.width)
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (F, H, W, 3) -> (F, 3, H, W)
        return {"frames": x.float() / 127.5 - 1.0, "caption": caption, "video": str(path), "index": index}

    def __getitem__(self, index: int) -> dict:
        for k in range(len(self.items)):  # skip forward past bad videos, never crash mid-epoch
            i = (index + k) % len(self.items)
            try:
                return self.load(i)
            except (VideoReadError, ValueError) as e:
                self.skipped[str(self.items[i][0])] += 1
                log.warning("skipping video %d (%s): %s", i, self.items[i][0], e)
        raise InputError("every video in the dataset failed to load; see the warnings above")
