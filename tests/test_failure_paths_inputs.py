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


# ---------------------------------------------------------------------------------------------
# files that are garbled, truncated or missing: refused before the model is loaded
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tiny_models import write_tiny_sampling_inputs

    return write_tiny_sampling_inputs(tmp_path_factory.mktemp("tiny"))


def _sample(tiny, out, *extra):
    from tiny_models import SIZE_ARGS

    return ["sample", "--model", str(tiny / "model"), "--prompt-embeds", str(tiny / "p.safetensors"), "--steps", "1",
            *SIZE_ARGS, "--out", str(out), *extra]


def _spoil_prior(tiny, tmp_path, how):
    import shutil

    prior = tmp_path / "prior"
    shutil.copytree(tiny / "prior", prior)
    weights = prior / "diffusion_pytorch_model.safetensors"
    if how == "garbled config":
        (prior / "config.json").write_text('{"arch": ')
    elif how == "config not an object":
        (prior / "config.json").write_text('["tiny"]')
    elif how == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:300])
    elif how == "weights cut at the end":
        weights.write_bytes(weights.read_bytes()[:-10])
    elif how == "missing weights":
        weights.unlink()
    return prior


@pytest.mark.parametrize("how, message", [("garbled config", "config.json is not valid JSON"),
                                          ("config not an object", "config.json must hold a JSON object"),
                                          ("truncated weights", "is not a whole safetensors file"),
                                          ("weights cut at the end", "truncated"),
                                          ("missing weights", "is missing")])
def test_a_spoilt_prior_folder_is_refused_before_loading(tiny, tmp_path, capsys, monkeypatch, how, message):
    prior = _spoil_prior(tiny, tmp_path, how)
    _no_load(monkeypatch)
    assert main(_sample(tiny, tmp_path / "o", "--prior", str(prior))) == 2
    err = _err(capsys)
    assert f"--prior {prior}" in err and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_motion_prior_from_pretrained_refuses_a_spoilt_folder(tiny, tmp_path):
    from lamo.errors import InputError
    from lamo.prior import MotionPrior

    with pytest.raises(InputError, match="not a whole safetensors file"):
        MotionPrior.from_pretrained(_spoil_prior(tiny, tmp_path, "truncated weights"))


def test_prompt_embeds_garbled_or_of_another_width_are_refused_before_loading(tiny, tmp_path, capsys, monkeypatch):
    import torch

    from lamo.sampling import save_prompt_embeds

    _no_load(monkeypatch)
    (tmp_path / "g.safetensors").write_bytes(b"garbage")
    save_prompt_embeds(tmp_path / "w.safetensors", torch.randn(1, 16, 24), torch.randn(1, 16, 24), prompts=["a"])
    for file, message in (("g.safetensors", "is not a whole safetensors file"), ("w.safetensors", "24 wide")):
        argv = _sample(tiny, tmp_path / "o")
        argv[argv.index("--prompt-embeds") + 1] = str(tmp_path / file)
        assert main(argv) == 2
        err = _err(capsys)
        assert "--prompt-embeds" in err and message in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("frames", ["14", "12", "2"])
def test_a_frame_count_the_cogvideox_vae_cannot_make_is_refused_before_loading(tiny, tmp_path, capsys, monkeypatch,
                                                                               frames):
    _no_load(monkeypatch)
    argv = _sample(tiny, tmp_path / "o")
    argv[argv.index("--frames") + 1] = frames
    assert main(argv) == 2
    err = _err(capsys)
    assert f"--frames {frames}" in err and "1 + a multiple of 4" in err, err


def test_a_failed_run_is_not_left_marked_running(tiny, tmp_path, capsys, monkeypatch):
    import lamo.video_io

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(lamo.video_io, "write_video", boom)  # fails after the first video is sampled
    out = tmp_path / "o"
    assert main(_sample(tiny, out)) == 1
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed" and "out of memory" in run["error"] and run["finished"]

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lamo.video_io, "write_video", interrupt)
    assert main(_sample(tiny, out, "--overwrite")) == 130
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"


# ---------------------------------------------------------------------------------------------
# latent caches, lags, selections
# ---------------------------------------------------------------------------------------------
def _spoil_cache(cache, tmp_path, how):
    import shutil

    spoilt = tmp_path / "cache"
    shutil.copytree(cache, spoilt)
    shard = spoilt / "shard-00000.safetensors"
    if how == "garbled manifest":
        (spoilt / "manifest.json").write_text('{"shards": [')
    elif how == "manifest without shards":
        (spoilt / "manifest.json").write_text('{"family": "cogvideox"}')
    elif how == "shard outside the folder":
        m = json.loads((spoilt / "manifest.json").read_text())
        m["shards"][0]["file"] = "../shard-00000.safetensors"
        (spoilt / "manifest.json").write_text(json.dumps(m))
    elif how == "truncated shard":
        shard.write_bytes(shard.read_bytes()[:2000])
    elif how == "missing shard":
        shard.unlink()
    return spoilt


CACHE_SPOILS = [("garbled manifest", "manifest.json is not valid JSON"),
                ("manifest without shards", "lists no shards"),
                ("shard outside the folder", "is not a shard record"),
                ("truncated shard", "truncated"),
                ("missing shard", "is missing")]


@pytest.mark.parametrize("how, message", CACHE_SPOILS)
def test_a_spoilt_latent_cache_is_refused_by_its_readers(latent_cache, tiny, tmp_path, capsys, how, message):
    cache = _spoil_cache(latent_cache, tmp_path, how)
    for argv in (["train", "prior", "--cache", str(cache), "--out", str(tmp_path / "r"), "--preset", "tiny",
                  "--log-with", "none"],
                 ["eval", "prior", "--prior", str(tiny / "prior"), "--cache", str(cache), "--out", str(tmp_path / "e")]):
        assert main(argv) == 2
        err = _err(capsys)
        assert f"the latent cache {cache}" in err and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r").exists() and not (tmp_path / "e").exists()


@pytest.fixture(scope="module")
def finetune_inputs(tmp_path_factory):
    from tiny_models import write_tiny_finetune_inputs

    return write_tiny_finetune_inputs(tmp_path_factory.mktemp("finetune"))  # 4 latent frames


def test_a_lag_the_clips_cannot_hold_is_refused_before_training(latent_cache, finetune_inputs, tmp_path, capsys):
    assert main(["train", "prior", "--cache", str(latent_cache), "--out", str(tmp_path / "r"), "--preset", "tiny",
                 "--prior-options", "tau=5", "--log-with", "none"]) == 2
    assert "--prior-options tau=5" in (err := _err(capsys)) and "pass a lag ≤ 4" in err, err
    model, cache = finetune_inputs
    # was: "training diverged … lower the learning rate" — a wrong diagnosis
    assert main(["train", "finetune", "--model", str(model), "--cache", str(cache), "--out", str(tmp_path / "f"),
                 "--drift-tau", "4", "--lora-rank", "0", "--log-with", "none"]) == 2
    assert "--drift-tau=4" in (err := _err(capsys)) and "pass a lag ≤ 3" in err, err
    assert not (tmp_path / "r").exists() and not (tmp_path / "f").exists()


def test_demo_refuses_a_lag_before_its_priors_train(tmp_path, capsys):
    # the shipped backbone's clips have 8 latent frames
    assert main(["demo", "--prior", "", "--selection", "", "--prior-taus", "2", "8", "--out", str(tmp_path / "o")]) == 2
    err = _err(capsys)
    assert "--prior-taus 8" in err and "from 1 to 7" in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text, message", [("{", "is not valid JSON"), ("[1, 2]", "must hold a JSON object"),
                                           ('{"flowmo_eta": 0.01}', "records no λ"),
                                           ('{"lambda": "high", "flowmo_eta": 0.01}', "records no λ"),
                                           ('{"lambda": 1.0}', "records no the peer's step size")])
def test_demo_refuses_a_garbled_selection_before_anything_runs(tmp_path, capsys, text, message):
    (tmp_path / "selection.json").write_text(text)
    assert main(["demo", "--selection", str(tmp_path / "selection.json"), "--out", str(tmp_path / "o")]) == 2
    err = _err(capsys)
    assert f"--selection {tmp_path / 'selection.json'}" in err and message in err, err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
# a user's files are kept
# ---------------------------------------------------------------------------------------------
def test_eval_out_onto_a_users_file_is_refused_and_its_own_report_refreshed(tmp_path, capsys):
    assert main(["data", "physics", "--out", str(tmp_path / "d"), "-n", "1"]) == 0
    notes = tmp_path / "notes.json"
    notes.write_text("my notes\n")
    for command in ("motion", "physics"):
        assert main(["eval", command, str(tmp_path / "d"), "--out", str(notes)]) == 2
        assert "is not a report of" in _err(capsys) and notes.read_text() == "my notes\n"
    report = tmp_path / "report.json"
    assert main(["eval", "motion", str(tmp_path / "d"), "--out", str(report)]) == 0
    assert main(["eval", "motion", str(tmp_path / "d"), "--out", str(report)]) == 0  # its own report: refreshed
    assert main(["eval", "physics", str(tmp_path / "d"), "--out", str(report)]) == 2  # another command's: kept
    assert json.loads(report.read_text())["command"] == "lamo eval motion"


def test_share_card_keeps_a_hand_written_readme(tiny, tmp_path, capsys):
    import shutil

    prior = tmp_path / "prior"
    shutil.copytree(tiny / "prior", prior)
    (prior / "README.md").write_text("# My card\n")
    assert main(["share", "card", str(prior)]) == 2
    assert "is not a model card LaMo wrote" in _err(capsys) and (prior / "README.md").read_text() == "# My card\n"
    assert main(["share", "card", str(prior), "--overwrite"]) == 0
    card = (prior / "README.md").read_text()
    assert "library_name: lamo" in card
    assert main(["share", "card", str(prior)]) == 0  # a card LaMo wrote is refreshed
