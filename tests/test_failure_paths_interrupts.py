"""Failure paths not probed before (issue 32, "Not yet probed"): two trainers in one run folder, an interrupt during
a checkpoint or the final save, a sharded run killed midway, and `lamo convert` on malformed release files. Each
test makes the failure happen for real (a live process holding the folder, KeyboardInterrupt raised inside the
save, a torchrun process that dies) and checks that nothing is lost or mislabelled and that a rerun finishes."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from lamo.cli import main


def _prior_args(cache, out, *extra):
    return ["train", "prior", "--cache", str(cache), "--out", str(out), "--preset", "tiny", "--batch-size", "2",
            "--log-with", "none", "--steps", "4", "--save-every", "2", *extra]


# ---------------------------------------------------------------------------------------------
# two trainers in one run folder
# ---------------------------------------------------------------------------------------------
def test_a_second_trainer_in_a_run_folder_is_refused(latent_cache, tmp_path, capsys):
    from lamo.training.runs import TRAIN_LOCK

    out = tmp_path / "r"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / TRAIN_LOCK).write_text(json.dumps({"pid": other.pid, "host": socket.gethostname(),
                                                  "started": "earlier", "command": "lamo train prior"}))
        for argv in (_prior_args(latent_cache, out),
                     ["train", "finetune", "--model", str(tmp_path), "--cache", str(latent_cache), "--out", str(out)]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert str(out) in err and f"pid {other.pid}" in err and "lamo train prior" in err, err
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        # the lock is the library's, not the command's: a Python caller is refused the same way
        from lamo.errors import InputError
        from lamo.training.prior import PriorTrainConfig, train_prior

        with pytest.raises(InputError, match=f"pid {other.pid}"):
            train_prior(PriorTrainConfig(cache=str(latent_cache), out=str(out), preset="tiny", batch_size=2,
                                         log_with="none", steps=4))
        assert sorted(p.name for p in out.iterdir()) == [TRAIN_LOCK]  # the other run's folder is untouched
    finally:
        other.kill()
        other.wait()
    assert main(_prior_args(latent_cache, out)) == 0  # that process is gone: its stale lock is taken over
    assert "stale" in capsys.readouterr().err
    assert (out / "prior" / "config.json").is_file() and not (out / TRAIN_LOCK).exists()  # released when done


def test_two_trainers_started_together_one_is_refused(latent_cache, tmp_path):
    """Two `lamo train prior` processes on one new folder: one trains, the other is refused (exit 2)."""
    out = tmp_path / "r"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "lamo", *_prior_args(latent_cache, out, "--steps", "6")]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 2], results
    refused = next(err for rc, err in results if rc == 2)
    assert "is in use by another lamo train prior" in refused or "already holds a run" in refused, refused
    assert (out / "prior" / "config.json").is_file()


# ---------------------------------------------------------------------------------------------
# an interrupt during a checkpoint or the final save
# ---------------------------------------------------------------------------------------------
def _losses(out):
    return [json.loads(line)["step"] for line in (out / "loss.jsonl").read_text().splitlines()]


def test_an_interrupt_during_a_checkpoint_keeps_the_last_one_and_resume_finishes(latent_cache, tmp_path, capsys,
                                                                               monkeypatch):
    import lamo.training.checkpoints as checkpoints

    out, calls = tmp_path / "r", []
    real = checkpoints.to_pickle_free

    def interrupted(folder):  # the step-4 checkpoint is half written when Ctrl-C comes
        calls.append(folder)
        if len(calls) == 2:
            real(folder)
            raise KeyboardInterrupt
        return real(folder)

    monkeypatch.setattr(checkpoints, "to_pickle_free", interrupted)
    assert main(_prior_args(latent_cache, out)) == 130
    assert "interrupted" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == ["step-000002"]  # whole, and the newest
    assert checkpoints.latest_checkpoint(out / "checkpoints").name == "step-000002"
    assert not (out / "prior").exists()  # nothing claims the run finished
    monkeypatch.setattr(checkpoints, "to_pickle_free", real)
    assert main(_prior_args(latent_cache, out, "--resume-from-checkpoint", "latest")) == 0
    assert "resumed from" in capsys.readouterr().out
    assert _losses(out) == [1, 2, 3, 4]  # each step logged once
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == ["step-000002", "step-000004"]
    from lamo.prior import MotionPrior

    assert MotionPrior.from_pretrained(out / "prior") is not None


@pytest.mark.parametrize("earlier", [False, True])
def test_an_interrupt_during_the_final_save_leaves_no_half_written_prior(latent_cache, tmp_path, capsys, monkeypatch,
                                                                         earlier):
    from lamo.prior import MotionPrior

    out = tmp_path / "r"
    if earlier:  # a finished run, then continued to more steps: its saved prior stays whole until replaced
        assert main(_prior_args(latent_cache, out)) == 0
        before = (out / "prior" / "diffusion_pytorch_model.safetensors").read_bytes()
    real = MotionPrior.save_pretrained

    def interrupted(self, folder, *args, **kwargs):
        real(self, folder, *args, **kwargs)
        with open(os.path.join(folder, "diffusion_pytorch_model.safetensors"), "r+b") as f:
            f.truncate(100)
        raise KeyboardInterrupt  # mid-save: the weights are cut short

    monkeypatch.setattr(MotionPrior, "save_pretrained", interrupted)
    extra = ["--resume-from-checkpoint", "latest", "--steps", "6", "--resume-override", "steps"] if earlier else []
    assert main(_prior_args(latent_cache, out, *extra)) == 130
    capsys.readouterr()
    if earlier:
        assert (out / "prior" / "diffusion_pytorch_model.safetensors").read_bytes() == before
    else:
        assert not (out / "prior").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith((".tmp-", ".old-"))]
    monkeypatch.setattr(MotionPrior, "save_pretrained", real)
    assert main(_prior_args(latent_cache, out, "--resume-from-checkpoint", "latest", *extra[2:])) == 0
    prior = MotionPrior.from_pretrained(out / "prior")
    assert all(torch.isfinite(p).all() for p in prior.parameters())
    assert _losses(out) == list(range(1, 7 if earlier else 5))


# ---------------------------------------------------------------------------------------------
# a sharded run killed midway
# ---------------------------------------------------------------------------------------------
KILLED = """
import os, sys
import lamo.video_io as video_io

real, made = video_io.write_video, []


def write_video(*args, **kwargs):
    if os.environ.get("RANK") == "1" and len(made) == 1:
        raise RuntimeError("rank 1 killed")  # after its first video: one of its two is made
    made.append(args[0])
    return real(*args, **kwargs)


video_io.write_video = write_video
from lamo.cli import main

sys.exit(main(sys.argv[1:]))
"""


def test_a_sharded_run_killed_midway_is_finished_without_losing_or_repeating_videos(tmp_path, capsys):
    from test_sharded import LAUNCHER_VARS, rows, same_videos
    from tiny_models import SIZE_ARGS, random_prompt_embeds, write_tiny_sampling_inputs

    from lamo.sampling import save_prompt_embeds

    tiny = write_tiny_sampling_inputs(tmp_path)
    save_prompt_embeds(tmp_path / "p2.safetensors", random_prompt_embeds(2, seed=1), random_prompt_embeds(1, seed=2),
                       prompts=["a red ball bounces", "two balls collide"])
    args = ["sample", "--model", str(tiny / "model"), "--prior", str(tiny / "prior"), "--prompt-embeds",
            str(tmp_path / "p2.safetensors"), "--seeds", "0", "1", "--motion-guidance-scale", "0.5", "--steps", "2",
            *SIZE_ARGS]
    one, part = tmp_path / "one", tmp_path / "part"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main([*args, "--out", str(one)]) == 0
        (tmp_path / "killed.py").write_text(KILLED)
        env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
        env.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
        done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                               str(tmp_path / "killed.py"), *args, "--out", str(part)], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode != 0 and "rank 1 killed" in done.stdout + done.stderr, done.stderr[-3000:]
        assert not (part / "run.json").exists() and list(part.glob("run.rank-*"))  # each process's share recorded
        shard = json.loads((part / "run.rank-1-of-2.json").read_text())
        assert shard["status"] == "failed" and "rank 1 killed" in shard["error"] and len(shard["videos"]) == 1
        made = {p.name for p in part.glob("*.mp4")}
        assert 1 <= len(made) < 4
        capsys.readouterr()
        assert main([*args, "--out", str(part), "--skip-existing"]) == 0  # one process finishes what two began
        assert f"reusing {len(made)} video(s)" in capsys.readouterr().out
    finally:
        torch.set_num_threads(threads)
    same_videos(one, part)
    assert rows(part) == rows(one) and len(rows(one)) == 4  # every video once, none lost
    assert not list(part.glob("run.rank-*")) and json.loads((part / "run.json").read_text())["status"] == "done"


# ---------------------------------------------------------------------------------------------
# lamo convert on malformed release files
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how, message", [
    ("garbled", "is not a whole safetensors file"),
    ("truncated", "truncated"),
    ("empty", "(0 bytes)"),
    ("missing key", "missing key(s) ['physical_lamo.input_proj.weight']"),
    ("wrong shape", "physical_lamo.input_proj.weight (16,) (a 4-D weight expected)"),
    ("wrong size", "shape mismatch"),
    ("garbled lora", "the release's LoRA weights"),
    ("out is a file", "is a file"),
])
def test_convert_refuses_malformed_release_files(tmp_path, capsys, how, message):
    from test_convert import release_like, write_release

    ref = release_like()
    rename = {"wrong shape": lambda k, v: (k, torch.zeros(16) if k == "input_proj.weight" else v),
              "wrong size": lambda k, v: (k, torch.zeros(32, 9) if k == "blocks.0.film.weight" else v)}.get(how)
    src = write_release(ref, tmp_path / "release", rename=rename, drop={"input_proj.weight"} if how == "missing key"
                        else ())
    file = src / "predictor.safetensors"
    data = file.read_bytes()
    out = tmp_path / "out"
    if how == "garbled":
        file.write_bytes(b"not a safetensors file")
    elif how == "truncated":
        file.write_bytes(data[:len(data) // 2])
    elif how == "empty":
        file.write_bytes(b"")
    elif how == "garbled lora":
        (src / "pytorch_lora_weights.safetensors").write_bytes(data[:50])
    elif how == "out is a file":
        out.write_text("mine\n")
    assert main(["convert", "release-predictor", str(src), str(out)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert message in err and "Traceback" not in captured.out + err and len(err.splitlines()) == 1, err
    assert out.read_text() == "mine\n" if how == "out is a file" else not out.exists()
