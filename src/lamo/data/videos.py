"""Video-caption datasets in the formats the fine-tuning tools of this field use.

An *index* lists ``(video path, caption)`` pairs; :func:`read_index` reads any of (through the one table reader,
:mod:`lamo.data.tables`):

* a folder with ``prompts.txt`` and ``videos.txt`` (line-aligned; video paths relative to the folder —
  the finetrainers convention);
* a CSV with a ``video`` / ``file_name`` / ``path`` / ``videopath`` column and a ``caption`` / ``text`` / ``prompt``
  column;
* a JSONL or JSON file (objects with the same keys), e.g. the ``metadata.jsonl`` of ``lamo data physics``;
* a folder holding one of those files (``metadata.jsonl``, ``metadata.csv``).

:class:`VideoCaptionDataset` decodes a video with PyAV, samples ``num_frames`` frames uniformly over the
clip (or with a fixed ``stride``), resizes the short side and centre-crops to ``height × width``, and
returns ``(F, 3, H, W)`` floats in ``[-1, 1]`` with the caption. A corrupt, unreadable or too-short
video is *skipped* — the dataset moves on to the next item, logs one line and counts it in
``skipped`` — so an epoch never crashes on bad data.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..video_io import VideoReadError, read_video
from .tables import read_video_table

__all__ = ["read_index", "VideoCaptionDataset", "sample_frame_indices", "resize_center_crop"]

log = logging.getLogger(__name__)

def read_index(source: str | os.PathLike) -> list[tuple[Path, str]]:
    """``(video path, caption)`` pairs of a dataset (:func:`lamo.data.tables.read_video_table`)."""
    return read_video_table(source)


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
