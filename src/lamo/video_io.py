"""Video files in and out (PyAV), with errors that say what is wrong.

Frames are ``uint8`` arrays laid out ``(T, H, W, 3)`` (RGB) everywhere in LaMo's I/O.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import UserError

__all__ = ["VideoReadError", "read_video", "write_video", "write_gif", "to_uint8_frames", "PIX_FMTS"]


class VideoReadError(UserError, RuntimeError):
    """A video could not be read: missing, corrupt, empty or not a video. The message says which."""


def to_uint8_frames(frames) -> np.ndarray:
    """Accept ``(T, H, W, 3)`` uint8, or float in [0, 1] as numpy / torch; return ``(T, H, W, 3)`` uint8."""
    if hasattr(frames, "detach"):
        frames = frames.detach().cpu().float().numpy()
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) RGB, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if not np.isfinite(arr).all():
            raise ValueError("frames contain NaN or inf values")
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return arr


#: Pixel formats :func:`write_video` accepts: ``yuv420p`` plays everywhere (browsers, QuickTime, phones);
#: ``yuv444p`` keeps full colour resolution (High 4:4:4, which most players refuse) for data only programs read.
PIX_FMTS = ("yuv420p", "yuv444p")


def write_video(path: str | os.PathLike, frames, fps: float = 8.0, crf: int = 12, reproducible: bool = False,
                pix_fmt: str = "yuv420p") -> Path:
    """Write ``(T, H, W, 3)`` frames to an H.264 (libx264) mp4 that browsers and QuickTime play.

    ``pix_fmt``: ``"yuv420p"`` (default: H.264 High profile, plays everywhere) or ``"yuv444p"`` (full colour
    resolution, High 4:4:4 — for datasets only programs read; most players refuse it). yuv420p needs an even
    width and height: a clip with an odd one is **padded** by repeating its last column / row (never scaled,
    so no pixel of the clip changes place) — the file is then one pixel wider / taller than the frames.
    The file holds exactly ``T`` frames. It is written to a temporary name and renamed, so an interrupted
    write leaves no half file.
    ``reproducible``: make the file's bytes a function of the frames alone — one x264 thread and no
    macroblock-tree rate control. Without it the same frames were now and then encoded into other bytes: by
    x264's threads under load, and by its macroblock tree depending on what the process had encoded before
    (measured on 32×32 clips; an mbtree-free file is a little larger at the same quality).
    """
    import av

    if pix_fmt not in PIX_FMTS:
        raise ValueError(f"pix_fmt must be one of {PIX_FMTS}, got {pix_fmt!r}")
    arr = to_uint8_frames(frames)
    if pix_fmt == "yuv420p" and (arr.shape[1] % 2 or arr.shape[2] % 2):
        arr = np.pad(arr, ((0, 0), (0, arr.shape[1] % 2), (0, arr.shape[2] % 2), (0, 0)), mode="edge")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height = arr.shape[2], arr.shape[1]
        stream.pix_fmt = pix_fmt
        stream.options = {"crf": str(crf), "preset": "medium",
                          **({"threads": "1", "x264-params": "mbtree=0"} if reproducible else {})}
        for frame in arr:
            # converted here, not by the encoder: its own RGB → YUV conversion (PyAV 18) gave the same frames other
            # bytes now and then when several processes encoded at once; this one gives the same every time
            yuv = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format=stream.pix_fmt)
            for packet in stream.encode(yuv):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path


def _announced_frames(container, stream) -> tuple[int, int] | None:
    """``(frames, tolerance)`` the file's header announces: the stream's frame count when it has one (exact),
    else its duration × frame rate (± one frame or 5 %); ``None`` when it says neither."""
    if stream.frames:
        return int(stream.frames), 0
    rate = stream.average_rate or stream.guessed_rate
    if container.duration and rate:
        n = int(round(container.duration / 1e6 * float(rate)))
        return n, max(1, n // 20)
    return None


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> np.ndarray:
    """Decode a video file to ``(T, H, W, 3)`` uint8 RGB — all of it, or a clear error.

    A file that decodes part-way (corrupt or cut short) is an error, not a shorter clip: decoding must not
    fail, and the frames decoded must be those the header announces.

    Raises:
        VideoReadError: the file is missing, unreadable, corrupt, truncated, has no video stream or no frames.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path}: no such video file")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: the file is empty (0 bytes)")
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: the file has no video stream")
            stream = container.streams.video[0]
            announced = _announced_frames(container, stream)
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except VideoReadError:
        raise
    except Exception as e:  # PyAV raises many error types for corrupt input
        got = f" after {len(frames)} frame(s)" if frames else ""
        raise VideoReadError(f"{path}: could not decode the video{got} ({type(e).__name__}: {e}); "
                             "the file is corrupt or cut short") from e
    if not frames:
        raise VideoReadError(f"{path}: the video has no decodable frames")
    if announced is not None and (max_frames is None or len(frames) < max_frames):
        n, tol = announced
        if len(frames) < n - tol:
            raise VideoReadError(f"{path}: decoded {len(frames)} of the {n} frames its header announces; "
                                 "the file is truncated or corrupt")
    return np.stack(frames)


def write_gif(path: str | os.PathLike, frames, fps: float = 8.0) -> Path:
    """Write an animated GIF (loops forever) — for reports that must animate in any browser."""
    from PIL import Image

    arr = to_uint8_frames(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imgs = [Image.fromarray(f) for f in arr]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)
    return path
