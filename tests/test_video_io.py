"""mp4s people can play: H.264 yuv420p by default, odd sizes padded, exact frame counts, reproducible bytes."""
import shutil
import subprocess

import numpy as np
import pytest

from lamo.video_io import read_video, write_video


def _clip(t=9, h=17, w=23, seed=0):
    rng = np.random.default_rng(seed)
    frames = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):  # a moving block on a noisy background: every frame differs
        frames[i] = rng.integers(0, 40, (h, w, 3))
        frames[i, 4:10, i:i + 6] = (220, 60, 30)
    return frames


def _stream(path):
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return s.codec_context.name, s.codec_context.pix_fmt, s.codec_context.profile, s.width, s.height, n


def test_default_mp4_is_h264_yuv420p_with_every_frame(tmp_path):
    frames = _clip(t=9, h=16, w=24)
    path = write_video(tmp_path / "a.mp4", frames)
    codec, pix_fmt, profile, w, h, n = _stream(path)
    assert (codec, pix_fmt, w, h, n) == ("h264", "yuv420p", 24, 16, 9)
    assert "4:4:4" not in (profile or "")  # High 4:4:4 is what browsers and QuickTime refuse
    back = read_video(path)
    assert back.shape == frames.shape and np.abs(back.astype(int) - frames).mean() < 12


def test_odd_sizes_are_padded_by_one_pixel_not_scaled(tmp_path):
    frames = _clip(t=5, h=17, w=23)
    path = write_video(tmp_path / "odd.mp4", frames)
    *_, w, h, n = _stream(path)
    assert (w, h, n) == (24, 18, 5)
    back = read_video(path)
    # the clip keeps its pixels in place (padding only at the right / bottom edge)
    assert np.abs(back[:, :17, :23].astype(int) - frames).mean() < 12


def test_yuv444p_on_request_and_unknown_formats_refused(tmp_path):
    path = write_video(tmp_path / "full.mp4", _clip(h=17), pix_fmt="yuv444p")
    assert _stream(path)[1:2] == ("yuv444p",) and _stream(path)[4] == 17  # no padding needed
    with pytest.raises(ValueError, match="pix_fmt"):
        write_video(tmp_path / "x.mp4", _clip(), pix_fmt="rgb24")


def test_reproducible_gives_identical_bytes_for_identical_frames(tmp_path):
    frames = _clip(t=12, h=32, w=32, seed=3)
    a = write_video(tmp_path / "a.mp4", frames, reproducible=True).read_bytes()
    write_video(tmp_path / "noise.mp4", _clip(t=12, h=32, w=32, seed=4))  # an encode in between changes nothing
    b = write_video(tmp_path / "b.mp4", frames, reproducible=True).read_bytes()
    assert a == b
    assert write_video(tmp_path / "c.mp4", _clip(t=12, h=32, w=32, seed=5), reproducible=True).read_bytes() != a


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe (ffmpeg) not installed")
def test_ffprobe_agrees(tmp_path):
    path = write_video(tmp_path / "a.mp4", _clip(t=7, h=17, w=23))
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                          "stream=codec_name,profile,pix_fmt,width,height,nb_read_frames", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out.split(",") == ["h264", "High", "24", "18", "yuv420p", "7"]
