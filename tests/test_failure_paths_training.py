"""Failure paths of training (issue 32, items 3, 4 and 6): a crafted checkpoint cannot make a resume read or write
outside its folder; a resume refuses another recipe unless told which fields to override; a diverging run stops at
the first non-finite loss with one line, keeps its last good checkpoint and saves nothing non-finite."""
import json
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file

from lamo.cli import main


def _prior_args(cache, out, *extra):
    return ["train", "prior", "--cache", str(cache), "--out", str(out), "--preset", "tiny", "--batch-size", "2",
            "--log-with", "none", "--lr", "1e-3", "--seed", "1", *extra]


@pytest.fixture(scope="module")
def stopped_run(latent_cache, tmp_path_factory):
    """A prior run of 4 steps stopped at its step-2 checkpoint (copy it before changing it)."""
    out = tmp_path_factory.mktemp("stopped") / "r"
    assert main(_prior_args(latent_cache, out, "--steps", "4", "--save-every", "2", "--max-steps-this-run", "2")) == 0
    return out


def _copy(run, tmp_path):
    shutil.copytree(run, tmp_path / "r")
    return tmp_path / "r"


# ---------------------------------------------------------------------------------------------
# 3. Every name a checkpoint lists stays inside its folder
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../x.bin", "../../optimizer.bin", "/tmp/optimizer.bin", "sub/optimizer.bin",
                                  "model.safetensors", ""])
def test_a_crafted_pickle_free_list_is_refused(latent_cache, stopped_run, tmp_path, capsys, monkeypatch, name):
    import tempfile

    out = _copy(stopped_run, tmp_path)
    ckpt = out / "checkpoints" / "step-000002"
    for suffix in (".json", ".safetensors"):  # what the crafted name points at, so that it would be read
        shutil.copy(ckpt / f"optimizer{suffix}", out / "checkpoints" / f"x{suffix}")
    (ckpt / "pickle_free.json").write_text(json.dumps({"rewritten": ["optimizer.bin", name]}))
    (tmp_path / "t").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "t"))  # resume decodes into tmp_path/t/lamo-resume-*/
    capsys.readouterr()
    assert main(_prior_args(latent_cache, out, "--steps", "4", "--save-every", "2",
                            "--resume-from-checkpoint", "latest")) == 2
    err = capsys.readouterr().err
    assert "pickle_free.json" in err and repr(name) in err and "Traceback" not in err, err
    assert not (tmp_path / "t" / "x.bin").exists() and not (tmp_path / "x.bin").exists()  # nothing written outside
    assert not (out / "prior").exists()


def test_from_pickle_free_refuses_a_name_outside_the_folder(tmp_path):
    from lamo.errors import InputError
    from lamo.training.checkpoints import from_pickle_free

    with pytest.raises(InputError, match=r"\.\./optimizer\.bin"):
        from_pickle_free(tmp_path / "ckpt", "../optimizer.bin")


# ---------------------------------------------------------------------------------------------
# 4. A resume refuses another recipe unless told to override it
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flags, field, recorded, given", [
    (["--seed", "2"], "seed", "1", "2"),
    (["--lr", "0.01"], "lr", "0.001", "0.01"),
    (["--batch-size", "4"], "batch_size", "2", "4"),
    (["--preset", "base"], "preset", "'tiny'", "'base'"),  # was: a traceback (size mismatch) while loading
])
def test_resume_refuses_another_recipe(latent_cache, stopped_run, tmp_path, capsys, flags, field, recorded, given):
    out = _copy(stopped_run, tmp_path)
    log = (out / "loss.jsonl").read_text()
    capsys.readouterr()
    assert main(_prior_args(latent_cache, out, "--steps", "4", "--save-every", "2",
                            "--resume-from-checkpoint", "latest", *flags)) == 2
    err = capsys.readouterr().err
    assert field in err and recorded in err and given in err and "--resume-override" in err, err
    assert "Traceback" not in err and (out / "loss.jsonl").read_text() == log and not (out / "prior").exists()


def test_resume_override_accepts_the_named_fields_only(latent_cache, stopped_run, tmp_path, capsys):
    out = _copy(stopped_run, tmp_path)
    resume = ["--steps", "4", "--save-every", "2", "--resume-from-checkpoint", "latest"]
    capsys.readouterr()
    assert main(_prior_args(latent_cache, out, *resume, "--seed", "2", "--lr", "0.01",
                            "--resume-override", "seed")) == 2  # lr is not overridden
    err = capsys.readouterr().err
    assert "lr" in err and "seed" not in err.split("differ")[-1].split("--resume-override")[0], err
    assert main(_prior_args(latent_cache, out, *resume, "--seed", "2", "--resume-override", "lr")) == 2
    assert main(_prior_args(latent_cache, out, *resume, "--resume-override", "sed")) == 2  # a typo is named
    assert "sed" in capsys.readouterr().err
    assert main(_prior_args(latent_cache, out, *resume, "--seed", "2", "--lr", "0.01",
                            "--resume-override", "seed,lr")) == 0
    assert "at step 2" in capsys.readouterr().out
    recorded = yaml.safe_load((out / "checkpoints" / "step-000004" / "config.yaml").read_text())
    assert recorded["seed"] == 2 and recorded["lr"] == 0.01  # the run says what it continued with


def test_resume_with_the_same_recipe_and_other_run_controls_is_accepted(latent_cache, stopped_run, tmp_path, capsys):
    out = _copy(stopped_run, tmp_path)
    capsys.readouterr()
    assert main(_prior_args(latent_cache, out, "--steps", "4", "--save-every", "1",
                            "--resume-from-checkpoint", "latest")) == 0  # save_every is not the recipe
    assert "at step 2" in capsys.readouterr().out and (out / "prior").is_dir()


def test_resume_refuses_fewer_steps_than_the_checkpoint_ran(latent_cache, stopped_run, tmp_path, capsys):
    out = _copy(stopped_run, tmp_path)
    capsys.readouterr()
    for extra in ([], ["--resume-override", "steps"]):  # no override makes a prior of 1 step out of 2
        assert main(_prior_args(latent_cache, out, "--steps", "1", "--save-every", "2",
                                "--resume-from-checkpoint", "latest", *extra)) == 2
        err = capsys.readouterr().err
        assert "--steps 1" in err and "step 2" in err and "Traceback" not in err, err
    assert not (out / "prior").exists()


def test_finetune_resume_refuses_another_recipe(latent_cache, tmp_path, capsys):
    """A fine-tune is checked before its model is loaded (its checkpoint's config.yaml, written by hand here)."""
    from dataclasses import asdict, replace

    from lamo.configs import FinetuneConfig

    out = tmp_path / "o"
    ckpt = out / "checkpoints" / "step-000002"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"step": 2}))
    cfg = FinetuneConfig(model=str(tmp_path / "m"), cache=str(latent_cache), out=str(out), steps=4)
    (ckpt / "config.yaml").write_text(yaml.safe_dump(asdict(replace(cfg, drift_weight=0.4))))
    (tmp_path / "m").mkdir()
    args = ["train", "finetune", "--model", str(tmp_path / "m"), "--cache", str(latent_cache), "--out", str(out),
            "--steps", "4", "--resume-from-checkpoint", "latest", "--drift-weight", "0.1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "drift_weight" in err and "0.4" in err and "0.1" in err and "Traceback" not in err, err


# ---------------------------------------------------------------------------------------------
# 6. A diverging run stops at the first non-finite loss and saves nothing non-finite
# ---------------------------------------------------------------------------------------------
def _all_finite(folder):
    files = list(folder.rglob("*.safetensors"))
    return bool(files) and all(torch.isfinite(t.float()).all() for f in files for t in load_file(str(f)).values())


def test_train_prior_stops_at_a_non_finite_loss(latent_cache, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(_prior_args(latent_cache, out, "--steps", "6", "--save-every", "1", "--lr", "1e30")) == 2
    err = capsys.readouterr().err
    assert "--lr" in err and "non-finite" in err and "lower" in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if "error" in line]) == 1, err  # (besides the progress bar)
    assert not (out / "prior").exists()  # was: exit 0 and a prior of NaNs
    assert _all_finite(out / "checkpoints")
    log = [json.loads(x) for x in (out / "loss.jsonl").read_text().splitlines()]  # strict JSON: no NaN logged
    assert all(isinstance(r["loss"], float) and r["loss"] == r["loss"] for r in log)


def test_train_finetune_stops_at_a_non_finite_loss(tmp_path, capsys):
    from tiny_models import write_tiny_finetune_inputs

    write_tiny_finetune_inputs(tmp_path)
    out = tmp_path / "o"
    assert main(["train", "finetune", "--model", str(tmp_path / "model"), "--cache", str(tmp_path / "cache"), "--out",
                 str(out), "--lora-rank", "0", "--steps", "6", "--batch-size", "2", "--save-every", "1",
                 "--log-with", "none", "--drift-tau", "1", "--lr", "1e30"]) == 2
    err = capsys.readouterr().err
    assert "--lr" in err and "non-finite" in err and "Traceback" not in err, err
    assert not (out / "transformer").exists() and not (out / "lora").exists()
    ckpts = list((out / "checkpoints").glob("step-*"))
    assert not ckpts or _all_finite(out / "checkpoints")



def test_train_prior_saves_no_checkpoint_of_overflowed_weights(latent_cache, tmp_path, capsys, monkeypatch):
    """An update that takes a weight to inf while the loss was finite: the checkpoint due at that step is not written."""
    step = torch.optim.AdamW.step

    def overflowing_step(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        with torch.no_grad():
            self.param_groups[0]["params"][0].view(-1)[0] = float("inf")
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", overflowing_step)
    out = tmp_path / "r"
    assert main(_prior_args(latent_cache, out, "--steps", "3", "--save-every", "1")) == 2
    err = capsys.readouterr().err
    assert "the weights became non-finite" in err and "step 1" in err and "no checkpoint was written" in err, err
    assert not list(out.glob("checkpoints/*step-*")) and not (out / "prior").exists()


@pytest.mark.parametrize("flag", ["--lr", "--prior-lr"])
def test_a_learning_rate_beyond_float32_is_refused(latent_cache, tmp_path, capsys, flag):
    """1e39 is a finite Python float; the optimizer's float32 update overflowed with a traceback."""
    if flag == "--lr":
        args = _prior_args(latent_cache, tmp_path / "r", "--steps", "2", "--lr", "1e39")
    else:
        (tmp_path / "m").mkdir()
        args = ["train", "finetune", "--model", str(tmp_path / "m"), "--cache", str(latent_cache), "--out",
                str(tmp_path / "r"), "--prior-lr", "1e39"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{flag} must be a finite number > 0" in err and "Traceback" not in err, err
