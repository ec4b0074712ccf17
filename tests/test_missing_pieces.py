"""A missing piece is named as missing, in one line with exit status 2 — not a traceback saying it is a bug: an
optional package that is not installed, a Hub id that cannot be fetched, a model folder that is not one."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import lamo
from lamo.cli import main, missing_piece
from lamo.configs import FinetuneConfig, PriorTrainConfig
from lamo.errors import MissingDependencyError, require

SRC = Path(lamo.__file__).resolve().parents[1]


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "bug" not in err, err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_lora_fine_tune_without_peft_says_so(latent_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "peft", None)  # as if not installed
    args = ["train", "finetune", "--model", str(tmp_path), "--cache", str(latent_cache), "--out", str(tmp_path / "r")]
    assert main(args) == 2
    _one_line_error(capsys, "LoRA fine-tuning (--lora-rank 64)", "peft", "pip install peft", "--lora-rank 0")
    assert not (tmp_path / "r").exists()  # refused before anything was loaded or written


def test_tensorboard_logger_without_tensorboard_says_so(latent_cache, tmp_path, monkeypatch, capsys):
    for name in ("tensorboard", "tensorboardX"):
        monkeypatch.setitem(sys.modules, name, None)
    args = ["train", "prior", "--cache", str(latent_cache), "--out", str(tmp_path / "r"), "--preset", "tiny",
            "--batch-size", "2", "--steps", "1", "--log-with", "tensorboard"]
    assert main(args) == 2
    _one_line_error(capsys, "--log-with tensorboard", "pip install 'lamo[train]'", "--log-with none")


def test_the_default_run_needs_no_tracker_and_logs_every_step(latent_cache, tmp_path, monkeypatch):
    """The defaults work after a plain install: no tracker package needed, the losses in OUT/loss.jsonl."""
    assert PriorTrainConfig().log_with == "none" and FinetuneConfig().log_with == "none"
    for name in ("tensorboard", "tensorboardX"):
        monkeypatch.setitem(sys.modules, name, None)
    out = tmp_path / "r"
    assert main(["train", "prior", "--cache", str(latent_cache), "--out", str(out), "--preset", "tiny",
                 "--batch-size", "2", "--steps", "3", "--save-every", "2"]) == 0
    log = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert all(r["loss"] > 0 for r in log) and {"val_loss", "val_cosine"} <= set(log[1]) <= set(log[2])


def test_require_names_the_package_and_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(MissingDependencyError, match=r"--log-with wandb needs the package wandb, which is not "
                                                     r"installed: pip install wandb, or pass"):
        require("wandb", "--log-with wandb", "or pass --log-with none")
    assert require("json", "reading JSON").loads("1") == 1


def test_an_optional_package_missing_deep_inside_a_command_is_one_line(monkeypatch, tmp_path, capsys):
    import lamo.commands.share as share

    def fails(args):
        import tensorboard  # noqa: F401 — raises: hidden below

    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setattr(share, "_card", fails)
    assert main(["share", "card", str(tmp_path)]) == 2
    _one_line_error(capsys, "tensorboard is not installed", "pip install 'lamo[train]'")

    def bug(args):  # a package LaMo does not know as optional: still a bug, with its traceback
        raise ModuleNotFoundError("No module named 'somethingelse'", name="somethingelse")

    monkeypatch.setattr(share, "_card", bug)
    assert main(["share", "card", str(tmp_path)]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_a_folder_that_is_no_model_is_named(tmp_path):
    e = OSError(f"Error no file named model_index.json found in directory {tmp_path}.")
    assert missing_piece(e) == (f"{tmp_path} has no model_index.json: not a diffusers model folder (one saved with "
                                "save_pretrained, or downloaded from the Hub)")
    assert missing_piece(ValueError("something else")) is None


@pytest.mark.parametrize("command", [
    ["cache", "--model", "owner/name", "--data", "{tmp}", "--out", "{tmp}/c", "--frames", "4", "--height", "8",
     "--width", "8"],
    ["sample", "--model", "THUDM/CogVideoX-2b", "--prompt", "a red ball", "--out", "{tmp}/s"],
])
def test_a_hub_id_with_no_network_is_one_line(command, tmp_path):
    """HF_HUB_OFFLINE=1 and an empty Hub cache: the model cannot be fetched — say so, exit 2 (a fresh interpreter:
    huggingface_hub reads HF_HUB_OFFLINE when it is imported)."""
    (tmp_path / "videos.txt").write_text("a.mp4\n")
    (tmp_path / "prompts.txt").write_text("a ball\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in command]
    out = subprocess.run([sys.executable, "-m", "lamo", *argv], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
                              "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"})
    err = out.stderr.strip()
    assert out.returncode == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    model = argv[argv.index("--model") + 1]
    assert f"--model {model}: no such local folder" in err and "HF_HUB_OFFLINE is set" in err, err
    assert f"hf download {model}" in err
