"""Failure paths of sampling, evaluation, data and training (issue 16): each test first reproduces the
failure — a wrong default, an interrupted write, a corrupt or truncated file, another model run into the
same folder — and then checks that LaMo refuses with a message naming the cause, or recovers without
losing or mislabelling anything."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lamo.cli import main

DEMO = Path(__file__).resolve().parents[1] / "src" / "lamo" / "assets" / "demo-backbone"


# ---------------------------------------------------------------------------------------------
# 8. The shipped model samples with its own sizes; a size it cannot make is refused up front
# ---------------------------------------------------------------------------------------------
def test_the_demo_backbone_samples_with_defaults(tmp_path):
    from lamo.video_io import read_video

    out = tmp_path / "out"
    assert main(["sample", "--model", str(DEMO), "--prompt", "a red ball is thrown to the right", "--steps", "2",
                 "--out", str(out)]) == 0  # was: RuntimeError, tensor size 354 vs 160 (226 CogVideoX tokens)
    run = json.loads((out / "run.json").read_text())
    assert run["size"] == {"frames": 15, "height": 32, "width": 32, "text_len": 32}  # from the model's configs
    assert read_video(out / "0_0_0.mp4").shape == (16, 32, 32, 3)


@pytest.mark.parametrize("flags, message", [
    (["--max-sequence-length", "226"], "hold exactly 32 prompt tokens"),
    (["--height", "30"], "--height 30 is not a multiple of 8"),
    (["--width", "100"], "--width 100 is not a multiple of 8"),
    (["--frames", "0"], "--frames must be ≥ 1"),
    (["--steps", "0"], "--steps must be ≥ 1"),
    (["--steps", "-3"], "--steps must be ≥ 1"),
    (["--window", "1.5"], "--window"),
    (["--window", "nan"], "--window"),
    (["--fps", "0"], "--fps must be > 0"),
    (["--motion-guidance-scale", "inf", "--prior", str(DEMO)], "--motion-guidance-scale"),
    (["--guidance-scale", "nan"], "--guidance-scale"),
    (["--prior", "/nonexistent/prior"], "--prior"),
])
def test_sample_refuses_what_the_model_cannot_make(tmp_path, capsys, flags, message):
    out = tmp_path / "out"
    rc = main(["sample", "--model", str(DEMO), "--prompt", "a red ball", "--steps", "2", "--out", str(out), *flags])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert not out.exists()  # refused before anything was written


# ---------------------------------------------------------------------------------------------
# 6. A bug is not disguised as bad input
# ---------------------------------------------------------------------------------------------
def _fake_command(monkeypatch, exc: BaseException):
    """Make `lamo data physics` raise ``exc`` (as a bug deep inside would)."""
    import lamo.physics.dataset as dataset

    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(dataset, "write_dataset", boom)


@pytest.mark.parametrize("exc", [TypeError("unsupported operand type(s) for +: 'int' and 'str'"),
                                 KeyError("latents"), RuntimeError("CUDA error"), AttributeError("x"),
                                 ZeroDivisionError("division by zero")])
def test_a_bug_shows_its_traceback_and_says_so(tmp_path, capsys, monkeypatch, exc):
    _fake_command(monkeypatch, exc)
    rc = main(["data", "physics", "--out", str(tmp_path / "d"), "-n", "1"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "Traceback" in err and "this is a bug" in err and type(exc).__name__ in err


def test_a_value_error_from_inside_a_library_is_a_bug(tmp_path, capsys, monkeypatch):
    import numpy as np

    def boom(*args, **kwargs):
        np.stack([])  # ValueError raised by numpy, not by LaMo: not the user's fault

    import lamo.physics.dataset as dataset

    monkeypatch.setattr(dataset, "write_dataset", boom)
    assert main(["data", "physics", "--out", str(tmp_path / "d"), "-n", "1"]) == 1
    assert "this is a bug" in capsys.readouterr().err


def test_a_user_error_is_one_line(tmp_path, capsys, monkeypatch):
    from lamo.errors import InputError, MissingInputError, UserError

    assert issubclass(InputError, ValueError) and issubclass(MissingInputError, FileNotFoundError)
    for exc in (InputError("--foo must be ≥ 1"), MissingInputError("no such file x"), UserError("bad")):
        _fake_command(monkeypatch, exc)
        assert main(["data", "physics", "--out", str(tmp_path / "d"), "-n", "1"]) == 2
        err = capsys.readouterr().err
        assert err == f"lamo data: error: {exc}\n"


def test_an_interrupt_exits_130(tmp_path, capsys, monkeypatch):
    _fake_command(monkeypatch, KeyboardInterrupt())
    assert main(["data", "physics", "--out", str(tmp_path / "d"), "-n", "1"]) == 130
    assert "interrupted" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# 3. A half-decodable video is an error for that clip, not a short clip
# ---------------------------------------------------------------------------------------------
def _write_streamable(path: Path, frames, options: dict | None = None) -> bytes:
    """A video whose frames come before the end of the file (faststart mp4, mkv), so a cut-short copy opens."""
    import av

    with av.open(str(path), mode="w", options=options or {}) as c:
        s = c.add_stream("libx264", rate=8)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path.read_bytes()


@pytest.mark.parametrize("name, options", [("clip.mp4", {"movflags": "faststart"}), ("clip.mkv", None)])
@pytest.mark.parametrize("keep", [0.5, 0.8])
def test_a_truncated_video_is_an_error_not_a_short_clip(tmp_path, name, options, keep):
    import numpy as np

    from lamo.video_io import VideoReadError, read_video

    frames = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3), dtype=np.uint8)
    data = _write_streamable(tmp_path / name, frames, options)
    assert read_video(tmp_path / name).shape == (16, 32, 32, 3)
    assert read_video(tmp_path / name, max_frames=4).shape[0] == 4  # asking for fewer is fine
    (tmp_path / name).write_bytes(data[: int(len(data) * keep)])  # the file is cut short
    with pytest.raises(VideoReadError, match="truncated|cut short"):
        read_video(tmp_path / name)  # was: returned the 5–12 frames it decoded


def test_eval_scores_the_others_when_one_clip_is_truncated(tmp_path, capsys):
    import numpy as np

    from lamo.physics.render import render
    from lamo.physics.world import WORLD_PRESETS, simulate

    tiny = WORLD_PRESETS["tiny"]
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(3):
        data = _write_streamable(folder / f"{i}.mp4", render(simulate(tiny, i), tiny), {"movflags": "faststart"})
    (folder / "2.mp4").write_bytes(data[: len(data) // 2])
    assert main(["eval", "physics", str(folder), "--preset", "tiny"]) == 0
    report = json.loads((folder / "eval_physics.json").read_text())
    by_name = {c["video"]: c for c in report["clips"]}
    assert "metrics" in by_name["0.mp4"] and "metrics" in by_name["1.mp4"]
    assert "cut short" in by_name["2.mp4"]["error"] and report["n_scored"] == 2
    assert main(["eval", "physics", str(folder), "--preset", "tiny", "--strict"]) == 1


def test_evaluate_clip_refuses_a_clip_shorter_than_the_world(tmp_path):
    from lamo.physics.metrics import ClipError, evaluate_clip
    from lamo.physics.render import render
    from lamo.physics.world import WORLD_PRESETS, simulate

    tiny = WORLD_PRESETS["tiny"]
    frames = render(simulate(tiny, 0), tiny)
    evaluate_clip(frames, tiny)
    with pytest.raises(ClipError, match="has 10 frames but the world's clips have 16"):
        evaluate_clip(frames[:10], tiny)


# ---------------------------------------------------------------------------------------------
# 4. Overwrites: a dataset is replaced whole or not at all
# ---------------------------------------------------------------------------------------------
def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_data_refuses_a_non_empty_out_and_an_interrupt_leaves_the_old_dataset(tmp_path, capsys, monkeypatch):
    import lamo.physics.dataset as dataset

    out = tmp_path / "d"
    assert main(["data", "physics", "--out", str(out), "-n", "2", "--preset", "tiny"]) == 0
    before = _snapshot(out)
    assert main(["data", "physics", "--out", str(out), "-n", "3", "--preset", "small"]) == 2
    assert "--overwrite" in capsys.readouterr().err and _snapshot(out) == before

    real, made = dataset.make_clip, []

    def interrupted(*args, **kwargs):  # Ctrl-C while the second clip of the new dataset is made
        if len(made) == 1:
            raise KeyboardInterrupt
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(dataset, "make_clip", interrupted)
    assert main(["data", "physics", "--out", str(out), "-n", "3", "--preset", "small", "--overwrite"]) == 130
    assert _snapshot(out) == before  # was: world.json of "small" beside the old "tiny" metadata and videos
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no temporary folder left behind

    monkeypatch.setattr(dataset, "make_clip", real)
    assert main(["data", "physics", "--out", str(out), "-n", "3", "--preset", "small", "--overwrite"]) == 0
    assert json.loads((out / "world.json").read_text())["preset"] == "small"
    assert len((out / "metadata.jsonl").read_text().splitlines()) == 3 and len(list(out.glob("videos/*"))) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


@pytest.mark.parametrize("argv, message", [
    (["-n", "0"], "-n/--num-clips must be ≥ 1"),
    (["-n", "-4"], "-n/--num-clips must be ≥ 1"),
])
def test_data_refuses_bad_numbers(tmp_path, capsys, argv, message):
    assert main(["data", "physics", "--out", str(tmp_path / "d"), *argv]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "d").exists()


def test_data_refuses_a_file_as_out(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["data", "physics", "--out", str(tmp_path / "f"), "-n", "1"]) == 2
    assert "is a file" in capsys.readouterr().err
