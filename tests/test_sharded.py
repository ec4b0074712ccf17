"""``lamo sample`` / ``lamo eval`` sharded over processes: two CPU processes (torchrun, gloo) make exactly the files
one process makes, and a sharded run interrupted midway is finished by a run with another number of processes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from diffusers import CogVideoXPipeline
from tiny_models import (SIZE_ARGS, COGVIDEOX_LATENT_CHANNELS, random_prompt_embeds, tiny_cogvideox_components,
                         tiny_motion_prior)

from lamo.cli import main
from lamo.commands.sample import save_prompt_embeds
from lamo.sharding import Shards

LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def torchrun(argv: list[str], nproc: int = 2) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node N -m lamo ARGV`` on CPU, one thread per process."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(nproc), "-m", "lamo", *argv], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture
def one_thread():
    """The processes torchrun starts compute on one thread; the one-process reference here does too."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rows(out) -> list[dict]:
    """run.json's video rows without their timings and the run that made them."""
    return [{k: v for k, v in row.items() if k not in ("seconds", "run")}
            for row in json.loads((out / "run.json").read_text())["videos"]]


def same_videos(a, b) -> None:
    names = sorted(p.name for p in a.glob("*.mp4"))
    assert names == sorted(p.name for p in b.glob("*.mp4")) and names
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_shards_split_pairs_by_index(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    shards = Shards.from_env()
    assert (shards.rank, shards.world_size, shards.main) == (1, 3, False)
    assert [k for k in range(8) if shards.owns(k)] == [1, 4, 7]
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(ValueError, match="RANK=3 WORLD_SIZE=3"):
        Shards.from_env()
    for var in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var)
    assert Shards.from_env() == Shards(0, 1, 0)


def test_two_processes_make_the_files_of_one_and_resume_with_one(tmp_path, one_thread, capsys):
    CogVideoXPipeline(**tiny_cogvideox_components()).save_pretrained(tmp_path / "model")
    tiny_motion_prior(COGVIDEOX_LATENT_CHANNELS, backbone="cogvideox").save_pretrained(tmp_path / "prior")
    save_prompt_embeds(tmp_path / "p.safetensors", random_prompt_embeds(3, seed=1), random_prompt_embeds(1, seed=2),
                       prompts=["a red ball bounces", "two balls collide", "a ball rolls"])
    args = ["sample", "--model", str(tmp_path / "model"), "--prior", str(tmp_path / "prior"), "--prompt-embeds",
            str(tmp_path / "p.safetensors"), "--seeds", "0", "1", "--motion-guidance-scale", "0", "0.5",
            "--steps", "2", *SIZE_ARGS]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*args, "--out", str(one)]) == 0
    done = torchrun([*args, "--out", str(two)])
    # 3 prompts × 2 seeds = 6 pairs: pairs 0, 2, 4 on rank 0 and 1, 3, 5 on rank 1, each with both λ
    assert "rank 1: wrote 6 video(s)" in done.stdout
    same_videos(one, two)
    assert rows(two) == rows(one) and len(rows(one)) == 12
    run = json.loads((two / "run.json").read_text())
    assert run["status"] == "done" and run["processes"] == 2 and "shard" not in run
    assert {v["run"] for v in run["videos"]} == {run["run_id"]}  # one run, whichever process made the video
    assert not (two / ".lamo-sample.lock").exists()  # rank 0's lock, released
    assert not list(two.glob("run.rank-*"))

    # interrupted: each process recorded part of its share (rank 1 had not finished 1_1_0.5.mp4), no run.json
    part = tmp_path / "part"
    shutil.copytree(two, part)
    record = json.loads((part / "run.json").read_text())
    (part / "run.json").unlink()
    (part / "1_1_0.5.mp4").unlink()
    for rank in (0, 1):
        mine = [v for v in record["videos"] if v["file"] != "1_1_0.5.mp4" and
                (v["prompt_index"] * 2 + v["seed"]) % 2 == rank]
        shard = dict(record, status="running", shard=dict(rank=rank, run_id="earlier"), videos=mine)
        (part / f"run.rank-{rank}-of-2.json").write_text(json.dumps(shard))
    capsys.readouterr()
    assert main([*args, "--out", str(part)]) == 2  # an earlier run is there: resume or replace it, say which
    assert "run.rank-0-of-2.json" in capsys.readouterr().err
    assert main([*args, "--out", str(part), "--skip-existing"]) == 0  # one process finishes what two began
    assert "reusing 11 video(s)" in capsys.readouterr().out
    same_videos(one, part)
    assert rows(part) == rows(one) and not list(part.glob("run.rank-*"))


SAMPLE = "--height 16 --width 16 --frames 7 --max-sequence-length 12 --guidance-scale 1"


def test_eval_two_processes_write_the_rows_and_report_of_one(tmp_path, one_thread):
    from lamo.demo.model import build_demo_pipeline

    build_demo_pipeline("test", ["a", "ball", "falls", "rolls"]).save_pretrained(tmp_path / "model")
    (tmp_path / "p.csv").write_text("caption\na ball falls\na ball rolls\nthe ball\n")
    args = ["eval", "videophy", str(tmp_path / "p.csv"), "--model", str(tmp_path / "model"), "--steps", "2",
            "--seeds", "0", "1", "--sample-args", SAMPLE]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*args, "--out", str(one)]) == 0
    torchrun([*args, "--out", str(two)])
    same_videos(one / "videos", two / "videos")
    for name in ("videos.csv", "report.json"):  # the same but for the folder's name
        assert (two / name).read_text().replace(str(two), "OUT") == (one / name).read_text().replace(str(one), "OUT")
    assert len((one / "videos.csv").read_text().splitlines()) == 1 + 6
    assert json.loads((two / "report.json").read_text())["n_videos"] == 6
