"""Failure paths of hostile inputs (issue 32, "Tracebacks"): each input was a traceback (exit 1, "this is a bug") or a
refusal only after the model was loaded; now a one-line error naming the input and what to do (exit 2), before
anything is loaded or written."""
from __future__ import annotations

import json

import pytest

from lamo.cli import main


def _err(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err, captured.err
    return captured.err.strip()


def _no_load(monkeypatch):
    """Loading a pipeline or a prior fails the test: the refusals below come before any of it."""
    import lamo.sampling

    def boom(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was refused")

    monkeypatch.setattr(lamo.sampling.SampleRun, "_load", boom)


# ---------------------------------------------------------------------------------------------
# numbers and devices: refused by the options' declared types (lamo.commands._args), one line each
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["data", "physics", "--out", "{tmp}/d", "-n", "1", "--seed", "-1"], "--seed must be from 0 to 4294967295"),
    (["train", "prior", "--cache", "{tmp}", "--out", "{tmp}/r", "--seed", "1e20"],
     "--seed must be a whole number from 0 to 4294967295, got '1e20'"),
    (["sample", "--model", "{tmp}", "--prompt", "x", "--seeds", "1", str(10**23)], "--seeds must be from 0 to"),
    (["sample", "--model", "{tmp}", "--prompt", "x", "--activation-gib", "inf"], "--activation-gib must be"),
    (["sample", "--model", "{tmp}", "--prompt", "x", "--fps", "1e300"], "--fps must be a finite number in [1, 1000]"),
    (["sample", "--model", "{tmp}", "--prompt", "x", "--device", "bogus"], "--device must be a torch device"),
    (["eval", "prior", "--prior", "{tmp}", "--cache", "{tmp}", "--out", "{tmp}/o", "--threads", "-1"],
     "--threads must be from 0 to 4096"),
    (["demo", "--sweep", "-1", "--out", "{tmp}/o"], "--sweep must be a finite number ≥ 0"),
    (["demo", "--threads", "-1", "--out", "{tmp}/o"], "--threads must be from 0 to 4096"),
    (["cache", "--model", "m", "--data", "d", "--out", "o", "--frames", "1", "--height", "8", "--width", "8",
      "--device", "nope"], "--device must be a torch device"),
    (["demo", "train-backbone", "--data", "d", "--device", "nope"], "--device must be a torch device"),
])
def test_bad_numbers_and_devices_are_one_line(tmp_path, capsys, monkeypatch, argv, message):
    _no_load(monkeypatch)
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = _err(capsys)
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "d").exists() and not (tmp_path / "r").exists() and not (tmp_path / "o").exists()


def test_cuda_without_a_gpu_is_refused_naming_the_device(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # this machine's real case; also on a GPU one
    for argv in (["sample", "--model", str(tmp_path), "--prompt", "x", "--device", "cuda"],
                 ["eval", "prior", "--prior", "p", "--cache", "c", "--out", "o", "--device", "cuda:0"]):
        assert main(argv) == 2
        err = _err(capsys)
        assert "--device must be a device this machine has" in err and "no CUDA GPU" in err and "--device cpu" in err


# ---------------------------------------------------------------------------------------------
# text files that are not UTF-8
# ---------------------------------------------------------------------------------------------
def test_a_config_file_that_is_not_utf8_is_refused(tmp_path, capsys):
    (tmp_path / "c.yaml").write_bytes(b"steps: 2\nlog_with: none\n\xff\xfe bad\n")
    assert main(["train", "prior", "--cache", str(tmp_path), "--out", str(tmp_path / "r"), "--config",
                 str(tmp_path / "c.yaml")]) == 2
    err = _err(capsys)
    assert f"--config {tmp_path / 'c.yaml'} is not UTF-8" in err and "save it as UTF-8" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", ["p.txt", "p.csv", "p.jsonl"])
def test_a_prompts_file_that_is_not_utf8_is_refused(tmp_path, capsys, monkeypatch, name):
    _no_load(monkeypatch)
    (tmp_path / name).write_bytes(b"prompt\na ball\n\xff\xfe\n")
    assert main(["sample", "--model", str(tmp_path), "--prompts-file", str(tmp_path / name),
                 "--out", str(tmp_path / "o")]) == 2
    err = _err(capsys)
    assert str(tmp_path / name) in err and "UTF-8" in err, err
    assert not (tmp_path / "o").exists()
