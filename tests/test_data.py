"""Video-caption datasets: every index format, frame sampling, resizing, and bad videos skipped."""
import json

import numpy as np
import pytest

from lamo.data import VideoCaptionDataset, read_index
from lamo.data.videos import resize_center_crop, sample_frame_indices
from lamo.video_io import write_video


def _clip(n, h=24, w=32, value=0):
    f = np.zeros((n, h, w, 3), np.uint8)
    for t in range(n):
        f[t, :, :, 0] = value + 10 * t  # frame index readable from the red channel
    return f


@pytest.fixture
def folder(tmp_path):
    write_video(tmp_path / "v" / "a.mp4", _clip(12))
    write_video(tmp_path / "v" / "short.mp4", _clip(3))
    (tmp_path / "v" / "broken.mp4").write_bytes(b"\x00not a video" * 10)
    return tmp_path


def test_every_index_format(folder):
    (folder / "videos.txt").write_text("v/a.mp4\nv/short.mp4\n")
    (folder / "prompts.txt").write_text("a ball\nanother\n")
    assert read_index(folder) == [(folder / "v/a.mp4", "a ball"), (folder / "v/short.mp4", "another")]
    (folder / "meta.csv").write_text("file_name,text\nv/a.mp4,from csv\n")
    assert read_index(folder / "meta.csv") == [(folder / "v/a.mp4", "from csv")]
    (folder / "meta.jsonl").write_text(json.dumps({"video": "v/a.mp4", "prompt": "from jsonl"}) + "\n")
    assert read_index(folder / "meta.jsonl") == [(folder / "v/a.mp4", "from jsonl")]
    (folder / "prompts.txt").write_text("only one\n")
    with pytest.raises(ValueError, match="line-aligned"):
        read_index(folder)
    (folder / "bad.csv").write_text("name,caption\nx,y\n")
    with pytest.raises(ValueError, match="video / file_name / path"):
        read_index(folder / "bad.csv")


def test_frame_sampling_and_resize():
    assert sample_frame_indices(12, 4).tolist() == [0, 4, 7, 11]
    assert sample_frame_indices(12, 4, stride=2).tolist() == [0, 2, 4, 6]
    with pytest.raises(ValueError, match="3 frames but 4"):
        sample_frame_indices(3, 4)
    out = resize_center_crop(np.zeros((2, 24, 32, 3), np.uint8), 16, 16)
    assert out.shape == (2, 16, 16, 3)


def test_bad_videos_are_skipped_and_counted(folder):
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"video": "v/broken.mp4", "caption": "x"}, {"video": "v/short.mp4", "caption": "y"},
        {"video": "v/missing.mp4", "caption": "z"}, {"video": "v/a.mp4", "caption": "good"}]))
    ds = VideoCaptionDataset(folder, num_frames=4, height=16, width=16)
    items = [ds[i] for i in range(len(ds))]  # a whole epoch, no crash
    assert all(it["caption"] == "good" for it in items)  # each bad item falls through to the next good one
    x = items[0]["frames"]
    assert x.shape == (4, 3, 16, 16) and -1.0 <= x.min() and x.max() <= 1.0
    reds = ((x[:, 0, 8, 8] + 1) * 127.5).round().tolist()  # frames 0, 4, 7, 11 → red 0, 40, 70, 110 (±codec)
    assert all(abs(r - e) <= 6 for r, e in zip(reds, [0, 40, 70, 110]))
    assert set(ds.skipped) == {str(folder / "v" / n) for n in ("broken.mp4", "short.mp4", "missing.mp4")}
