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
