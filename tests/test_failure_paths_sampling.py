"""Failure paths of sampling, the latent cache and prior loading (issue 32 items 1, 2, 5, 6, 7, 8).

Each test was written to fail on the code before its fix: nothing lost, nothing mislabelled, and bad input is a
one-line error naming the input (exit 2).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import av
import pytest
import torch
from diffusers import CogVideoXPipeline
from safetensors.torch import load_file, save_file
from tiny_models import (HEIGHT, SIZE_ARGS, random_prompt_embeds, write_tiny_sampling_inputs)

from lamo.cli import main
from lamo.sampling import save_prompt_embeds

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_sampling_inputs(tmp_path_factory.mktemp("tiny"))


def _sample(tiny, out, *extra):
    return ["sample", "--model", str(tiny / "model"), "--prior", str(tiny / "prior"), "--prompt-embeds",
            str(tiny / "p.safetensors"), "--steps", "2", *SIZE_ARGS, "--out", str(out), *extra]


def _frames(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


# ---------------------------------------------------------------------------------------------
# item 2: close λ values get their own videos; the same λ twice is refused
# ---------------------------------------------------------------------------------------------
def test_close_lambdas_get_their_own_videos(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_sample(tiny, out, "--motion-guidance-scale", "1", "1.0000001", "0.3")) == 0
    run = json.loads((out / "run.json").read_text())
    files = [v["file"] for v in run["videos"]]
    assert files == ["0_0_1.mp4", "0_0_1.0000001.mp4", "0_0_0.3.mp4"]  # ordinary λ keep their names
    assert [v["motion_guidance_scale"] for v in run["videos"]] == [1.0, 1.0000001, 0.3]
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(files)
    assert "wrote 3 video(s)" in capsys.readouterr().out


@pytest.mark.parametrize("values", [["1", "1.0"], ["0", "-0"], ["2", "0.5", "2e0"]])
def test_the_same_lambda_twice_is_refused(tiny, tmp_path, capsys, values):
    assert main(_sample(tiny, tmp_path / "out", "--motion-guidance-scale", *values)) == 2
    err = capsys.readouterr().err
    assert "--motion-guidance-scale" in err and "twice" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# item 5: output folders — truncated videos are made again, run.json keeps every video, one sampler per folder
# ---------------------------------------------------------------------------------------------
def test_skip_existing_makes_a_truncated_video_again(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_sample(tiny, out, "--motion-guidance-scale", "0", "1")) == 0
    video = out / "0_0_1.mp4"
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])  # cut short (e.g. a copy interrupted), still > 0 bytes
    capsys.readouterr()
    assert main(_sample(tiny, out, "--motion-guidance-scale", "0", "1", "--skip-existing")) == 0
    printed = capsys.readouterr().out
    assert "reusing 1 video(s)" in printed and "making 1 video(s)" in printed and "0_0_1.mp4" in printed, printed
    assert video.read_bytes() == data  # made again, the same bytes (reproducible encoding)
    row = next(v for v in json.loads((out / "run.json").read_text())["videos"] if v["file"] == video.name)
    assert _frames(video) == row["frames"]


def test_a_rerun_with_other_lambdas_keeps_the_earlier_videos_recorded(tiny, tmp_path):
    out = tmp_path / "out"
    assert main(_sample(tiny, out, "--motion-guidance-scale", "0", "1")) == 0
    first = json.loads((out / "run.json").read_text())
    assert first["run_id"] and {v["run"] for v in first["videos"]} == {first["run_id"]}
    assert main(_sample(tiny, out, "--motion-guidance-scale", "1", "2", "--skip-existing")) == 0
    second = json.loads((out / "run.json").read_text())
    assert second["run_id"] != first["run_id"]
    # this run's sweep: λ 1 (reused, made by the first run) and λ 2 (made now)
    assert [(v["file"], v["run"]) for v in second["videos"]] == [("0_0_1.mp4", first["run_id"]),
                                                                  ("0_0_2.mp4", second["run_id"])]
    # the first run's λ 0 is still in the folder: still recorded, with the run that made it
    assert [(v["file"], v["run"]) for v in second["other_videos"]] == [("0_0_0.mp4", first["run_id"])]
    assert second["other_videos"][0]["recipe"] == first["videos"][0]["recipe"]
    recorded = {v["file"] for v in second["videos"] + second["other_videos"]}
    assert recorded == {p.name for p in out.glob("*.mp4")}
    # a third run keeps them too; a video deleted or broken meanwhile is no longer recorded
    (out / "0_0_2.mp4").write_bytes(b"broken")
    assert main(_sample(tiny, out, "--motion-guidance-scale", "3", "--skip-existing")) == 0
    third = json.loads((out / "run.json").read_text())
    assert [v["file"] for v in third["videos"]] == ["0_0_3.mp4"]
    assert sorted((v["file"], v["run"]) for v in third["other_videos"]) == [
        ("0_0_0.mp4", first["run_id"]), ("0_0_1.mp4", first["run_id"])]


def _write_lock(out, pid: int, host: str | None = None):
    out.mkdir(parents=True, exist_ok=True)
    lock = out / ".lamo-sample.lock"
    lock.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "started": "earlier"}))
    return lock


def test_a_folder_in_use_by_another_sampler_is_refused(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = _write_lock(out, other.pid)
        assert main(_sample(tiny, out)) == 2
        err = capsys.readouterr().err
        assert str(out) in err and f"pid {other.pid}" in err and "another --out" in err and "Traceback" not in err, err
        assert lock.is_file() and not (out / "run.json").exists()  # the other run's lock and folder are untouched
        _write_lock(out, other.pid, host="another-host")  # a pid on another machine cannot be checked: refused
        assert main(_sample(tiny, out)) == 2
        assert "another-host" in capsys.readouterr().err
    finally:
        other.kill()
        other.wait()
    _write_lock(out, other.pid)  # that process is gone: its lock is stale, and taken over
    assert main(_sample(tiny, out)) == 0
    assert "stale" in capsys.readouterr().err
    assert (out / "run.json").is_file() and not (out / ".lamo-sample.lock").exists()  # released when done


def test_two_samplers_started_on_one_folder(tiny, tmp_path):
    """Two `lamo sample` processes on one empty folder: one makes the run, the other is refused (exit 2)."""
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    argv = _sample(tiny, out)
    argv[argv.index("--steps") + 1] = "30"  # long enough that the runs overlap
    procs = [subprocess.Popen([sys.executable, "-m", "lamo", *argv, "--seeds", str(s)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in (1, 2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    err = next(e for rc, e in results if rc == 2)
    # refused by the lock while the other runs (or, had the first finished before the second started, by its run.json)
    assert ("in use by another" in err or "already holds a run" in err) and "Traceback" not in err, err
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "done" and {p.name for p in out.glob("*.mp4")} == {v["file"] for v in run["videos"]}


def test_a_failed_run_releases_its_lock(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    argv = _sample(tiny, out)
    argv[argv.index("--height") + 1] = str(HEIGHT + 4)  # the model refuses it once loaded
    assert main(argv) == 2
    capsys.readouterr()
    assert not (out / ".lamo-sample.lock").exists()
    assert main(_sample(tiny, out)) == 0


# ---------------------------------------------------------------------------------------------
# item 8: prompt embeddings whose texts do not match; no prompts; fps the file cannot hold
# ---------------------------------------------------------------------------------------------
def test_prompt_embeds_with_fewer_texts_than_embeddings_is_refused(tiny, tmp_path, capsys):
    path = tmp_path / "e.safetensors"
    save_prompt_embeds(path, random_prompt_embeds(3, seed=1), random_prompt_embeds(1, seed=2), prompts=["a", "b"])
    argv = _sample(tiny, tmp_path / "out")
    argv[argv.index("--prompt-embeds") + 1] = str(path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "2 prompt text(s)" in err and "3" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("metadata", [{"prompts": "not json"}, {"prompts": json.dumps({"a": 1})},
                                      {"prompts": json.dumps([1, 2, 3])}])
def test_prompt_embeds_with_garbled_texts_is_refused(tiny, tmp_path, capsys, metadata):
    path = tmp_path / "e.safetensors"
    save_file({"prompt_embeds": random_prompt_embeds(3, seed=1)}, str(path), metadata=metadata)
    argv = _sample(tiny, tmp_path / "out", "--guidance-scale", "1")
    argv[argv.index("--prompt-embeds") + 1] = str(path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "prompts" in err and "Traceback" not in err, err


def test_zero_prompts_is_refused(tiny, tmp_path, capsys):
    path = tmp_path / "e.safetensors"
    save_prompt_embeds(path, random_prompt_embeds(1, seed=1)[:0], prompts=[])
    argv = _sample(tiny, tmp_path / "out", "--guidance-scale", "1")
    argv[argv.index("--prompt-embeds") + 1] = str(path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "no prompt" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fps", ["7.5", "0.3", "1e300", "0"])
def test_fps_the_video_cannot_hold_is_refused(tiny, tmp_path, capsys, fps):
    assert main(_sample(tiny, tmp_path / "out", "--fps", fps)) == 2
    err = capsys.readouterr().err
    assert "--fps must be" in err and (f"got {fps!r}" in err or f"got {float(fps)!r}" in err), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_run_json_records_the_fps_the_videos_hold(tiny, tmp_path):
    out = tmp_path / "out"
    assert main(_sample(tiny, out, "--fps", "5")) == 0
    run = json.loads((out / "run.json").read_text())
    with av.open(str(out / run["videos"][0]["file"])) as c:
        rate = c.streams.video[0].average_rate
    assert run["fps"] == 5 == rate and run["videos"][0]["recipe"]["fps"] == 5


# ---------------------------------------------------------------------------------------------
# item 6: a prior with non-finite weights is refused when loaded
# ---------------------------------------------------------------------------------------------
def test_loading_refuses_a_prior_with_non_finite_weights(tiny, tmp_path, capsys):
    from lamo.errors import InputError
    from lamo.prior import MotionPrior

    bad = tmp_path / "nan_prior"
    shutil.copytree(tiny / "prior", bad)
    weights = bad / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(weights))
    name = sorted(tensors)[0]
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(weights))
    with pytest.raises(InputError, match="NaN or inf") as e:
        MotionPrior.from_pretrained(bad)
    assert str(weights) in str(e.value) and "\n" not in str(e.value)
    argv = _sample(tiny, tmp_path / "out")
    argv[argv.index("--prior") + 1] = str(bad)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "NaN or inf" in err and "Traceback" not in err, err
    MotionPrior.from_pretrained(tiny / "prior")  # a finite prior loads


# ---------------------------------------------------------------------------------------------
# items 1 and 7: the cache's prompt length and the identity of its dataset
# ---------------------------------------------------------------------------------------------
WORDS = ["a", "ball", "is", "dropped"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from lamo.demo.model import build_demo_pipeline
    from lamo.physics.dataset import write_dataset
    from lamo.physics.world import get_world_config

    root = tmp_path_factory.mktemp("cachedata")
    write_dataset(root / "data", 3, get_world_config("tiny", size=16, frames=8, radius=(1.5, 2.0)), progress=False)
    build_demo_pipeline("test", WORDS).save_pretrained(root / "model")
    return root


def _cache(root, out, *extra, data=None):
    return ["cache", "--model", str(root / "model"), "--data", str(data or root / "data"), "--out", str(out),
            "--frames", "8", "--height", "16", "--width", "16", "--shard-size", "2", *extra]


def test_cache_stores_the_models_own_prompt_length(dataset, tmp_path):
    from lamo.cache import check_text_len
    from lamo.pipelines.settings import model_sizes

    out = tmp_path / "c"
    assert main(_cache(dataset, out)) == 0
    pipe = CogVideoXPipeline.from_pretrained(dataset / "model")
    text_len = model_sizes(pipe, "cogvideox")["text_len"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["text_len"] == text_len == m["model_text_len"]
    assert load_file(str(out / "shard-00000.safetensors"))["prompt_embeds"].shape[1] == text_len  # was: 226
    check_text_len(m, model_sizes(pipe, "cogvideox"))  # what `lamo train finetune` and `train prior` call
    check_text_len(m)

    other = dict(m, text_len=text_len + 3)  # a cache made at another length: refused by its consumers
    with pytest.raises(Exception, match="--max-sequence-length") as e:
        check_text_len(other, model_sizes(pipe, "cogvideox"), folder=out)
    assert str(out) in str(e.value) and str(text_len) in str(e.value)
    with pytest.raises(Exception, match="lamo cache"):
        check_text_len(other)
    # the path: a fine-tune on the default cache of the shipped kind of backbone (was: 354 vs 160 traceback)
    assert main(["train", "finetune", "--model", str(dataset / "model"), "--cache", str(out), "--lora-rank", "0",
                 "--steps", "1", "--batch-size", "2", "--save-every", "1", "--log-with", "none",
                 "--out", str(tmp_path / "ft")]) == 0
    # and the consumers call the check: a cache recorded at another length is refused by both trainers (exit 2)
    (out / "manifest.json").write_text(json.dumps(dict(m, text_len=text_len + 3, model_text_len=text_len + 3)))
    assert main(["train", "finetune", "--model", str(dataset / "model"), "--cache", str(out), "--lora-rank", "0",
                 "--steps", "1", "--batch-size", "2", "--save-every", "1", "--log-with", "none",
                 "--out", str(tmp_path / "ft2")]) == 2
    # a cache made with an explicit other --max-sequence-length records the model's own beside it: the prior refuses
    (out / "manifest.json").write_text(json.dumps(dict(m, text_len=text_len + 3, model_text_len=text_len)))
    assert main(["train", "prior", "--cache", str(out), "--preset", "tiny", "--steps", "1", "--batch-size", "2",
                 "--log-with", "none", "--out", str(tmp_path / "pr2")]) == 2


def test_cache_identifies_its_dataset_by_content_not_the_path_as_typed(dataset, tmp_path, capsys, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(dataset / "data", a / "data")
    shutil.copytree(dataset / "data", b / "data")  # b/data: another dataset under the same relative name
    (b / "data" / "videos" / "000001.mp4").write_bytes((b / "data" / "videos" / "000000.mp4").read_bytes())
    out = tmp_path / "c"
    monkeypatch.chdir(a)
    assert main(_cache(dataset, out, "--max-shards", "1", data="data")) == 0  # relative --data, from a/
    monkeypatch.chdir(b)
    assert main(_cache(dataset, out, data="data")) == 2  # the same words, another dataset: refused
    err = capsys.readouterr().err
    assert "another dataset" in err or "changed" in err, err
    m = json.loads((out / "manifest.json").read_text())
    assert not m["complete"] and len(m["shards"]) == 1
    # the same data named another way (absolute path, from another directory) resumes
    assert main(_cache(dataset, out, data=str(a / "data"))) == 0
    assert json.loads((out / "manifest.json").read_text())["complete"]
    # the data changed under the cache (a video rewritten): refused
    video = sorted((a / "data").rglob("*.mp4"))[0]
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    assert main(_cache(dataset, out, data=str(a / "data"))) == 2
    assert "changed" in capsys.readouterr().err


def test_folder_lock_refuses_a_garbled_lock_and_releases_only_its_own(tmp_path):
    from lamo.errors import InputError
    from lamo.locks import FolderLock

    lock = FolderLock(tmp_path / "f", "lamo sample", ".x.lock")
    with lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
        with pytest.raises(InputError, match="in use by another lamo sample"):  # the same folder, a second time
            FolderLock(tmp_path / "f", "lamo sample", ".x.lock").acquire()
    assert not lock.path.exists()
    lock.path.write_text("")  # being written by another process, or garbled: refused, left alone
    with pytest.raises(InputError, match="garbled") as e:
        FolderLock(tmp_path / "f", "lamo sample", ".x.lock").acquire()
    assert str(lock.path) in str(e.value) and lock.path.exists()
