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
    (["--motion-guidance-window", "1.5"], "--motion-guidance-window"),
    (["--motion-guidance-window", "nan"], "--motion-guidance-window"),
    (["--fps", "0"], "--fps must be a finite number in [1, 1000]"),
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


# ---------------------------------------------------------------------------------------------
# 5 + 4. Training: bad numbers refused up front; a run folder is resumed or replaced, never mixed
# ---------------------------------------------------------------------------------------------
def _prior_args(cache, out, *extra):
    return ["train", "prior", "--cache", str(cache), "--out", str(out), "--preset", "tiny", "--batch-size", "2",
            "--log-with", "none", *extra]


BAD_TRAIN_FLAGS = [
    (["--batch-size", "0"], "--batch-size must be ≥ 1"),
    (["--batch-size", "-2"], "--batch-size must be ≥ 1"),
    (["--save-every", "0"], "--save-every must be ≥ 1"),
    (["--steps", "0"], "--steps must be ≥ 1"),  # was: saved an untrained prior and said "saved"
    (["--steps", "-5"], "--steps must be ≥ 1"),
    (["--max-steps-this-run", "0"], "--max-steps-this-run must be ≥ 1"),
    (["--lr", "0"], "--lr must be a finite number > 0"),
    (["--lr", "nan"], "--lr must be a finite number > 0"),
    (["--lr", "inf"], "--lr must be a finite number > 0"),
    (["--grad-clip", "-1"], "--grad-clip must be a finite number ≥ 0"),
    (["--weight-decay", "nan"], "--weight-decay must be a finite number ≥ 0"),
    (["--val-fraction", "1"], "--val-fraction must be a finite number in [0, 1)"),
    (["--val-fraction", "-0.1"], "--val-fraction must be a finite number in [0, 1)"),
    (["--mixed-precision", "fp8"], "--mixed-precision must be one of"),
    (["--log-with", "stdout"], "--log-with must be one of"),
    (["--preset", "huge"], "--preset must be one of"),
    (["--seed", "-1"], "--seed must be from 0 to 4294967295"),
]


@pytest.mark.parametrize("flags, message", BAD_TRAIN_FLAGS)
def test_train_prior_refuses_bad_numbers_naming_the_flag(latent_cache, tmp_path, capsys, flags, message):
    assert main(_prior_args(latent_cache, tmp_path / "r", "--steps", "2", *flags)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "r").exists()


BAD_CONFIGS = [
    ("steps: [1, 2\n", "not valid YAML"),
    ("- steps\n- 3\n", "must hold a mapping"),
    ("steps: three\n", "steps must be an integer"),
    ("steps: 2.5\n", "steps must be an integer"),
    ("lr: fast\n", "lr must be a number"),
    ("batch_size: true\n", "batch_size must be an integer"),
    ("stepz: 3\n", "unknown keys ['stepz']"),
    ("save_every: 0\n", "--save-every must be ≥ 1"),  # checked like the flag
]


@pytest.mark.parametrize("text, message", BAD_CONFIGS)
def test_train_refuses_a_bad_config_yaml(latent_cache, tmp_path, capsys, text, message):
    (tmp_path / "c.yaml").write_text(text)
    assert main(_prior_args(latent_cache, tmp_path / "r", "--config", str(tmp_path / "c.yaml"),
                            "--max-steps-this-run", "1")) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert main(_prior_args(latent_cache, tmp_path / "r", "--config", str(tmp_path / "missing.yaml"))) == 2
    assert "no such file" in capsys.readouterr().err


def test_train_finetune_refuses_bad_numbers(latent_cache, tmp_path, capsys):
    base = ["train", "finetune", "--model", str(tmp_path / "m"), "--cache", str(latent_cache), "--out",
            str(tmp_path / "r")]
    for flags, message in [(["--drift-tau", "0"], "--drift-tau must be ≥ 1"),
                           (["--lora-rank", "-1"], "--lora-rank must be ≥ 0"),
                           (["--drift-mode", "fancy"], "--drift-mode must be one of"),
                           (["--drift-weight", "nan"], "--drift-weight must be"),
                           (["--validation-steps", "0"], "--validation-steps must be ≥ 1"),
                           ([], "--model")]:
        assert main(base + flags) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err


def test_a_new_run_does_not_replace_an_old_one(latent_cache, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(_prior_args(latent_cache, out, "--steps", "2", "--save-every", "1")) == 0
    before = _snapshot(out)
    capsys.readouterr()
    assert main(_prior_args(latent_cache, out, "--steps", "2", "--save-every", "1", "--lr", "1")) == 2
    assert "--resume-from-checkpoint latest" in capsys.readouterr().err
    assert _snapshot(out) == before  # was: its checkpoints silently replaced
    assert main(_prior_args(latent_cache, out, "--steps", "1", "--overwrite",
                            "--resume-from-checkpoint", "latest")) == 2
    assert main(_prior_args(latent_cache, out, "--steps", "1", "--save-every", "1", "--overwrite")) == 0
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-000001"]  # the old step-2 went with the run


def test_a_resumed_fine_tune_logs_each_step_once(tmp_path):
    import shutil

    import torch
    from tiny_models import write_tiny_finetune_inputs

    write_tiny_finetune_inputs(tmp_path)
    args = ["train", "finetune", "--model", str(tmp_path / "model"), "--cache", str(tmp_path / "cache"), "--out",
            str(tmp_path / "o"), "--lora-rank", "0", "--steps", "5", "--batch-size", "2", "--save-every", "2",
            "--log-with", "none", "--drift-tau", "1"]
    assert main(args + ["--max-steps-this-run", "3"]) == 0  # checkpoints at steps 2 and 3, loss logged for 1–3
    shutil.rmtree(tmp_path / "o" / "checkpoints" / "step-000003")  # killed after logging step 3, before its save
    with open(tmp_path / "o" / "loss.jsonl", "a") as f:
        f.write('{"step": 4, "loss": 0.')  # … and in the middle of writing step 4's line
    assert main(args + ["--resume-from-checkpoint", "latest"]) == 0  # resumes at step 2
    steps = [json.loads(x)["step"] for x in (tmp_path / "o" / "loss.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]  # was: 1, 2, 3, (a broken line), 3, 4, 5


# ---------------------------------------------------------------------------------------------
# 1. Stale videos are not credited to a new model;  2. a failing evaluator loses nothing
# ---------------------------------------------------------------------------------------------
WORDS = ["a", "ball", "falls", "rolls", "bounces"]
SAMPLE = "--height 16 --width 16 --frames 7 --max-sequence-length 12 --guidance-scale 1"


def _demo_model(path: Path, seed: int) -> Path:
    import torch

    from lamo.demo.model import build_demo_pipeline

    torch.manual_seed(seed)
    build_demo_pipeline("test", WORDS).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return _demo_model(root / "a", 0), _demo_model(root / "b", 1)


def _videos(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Which file each video is (inode, mtime): a video written again is another file (write, then rename)."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(run_dir.glob("*.mp4"))}


def test_sample_reuses_a_video_only_when_everything_that_made_it_matches(two_models, tmp_path, capsys):
    a, b = two_models
    out = tmp_path / "o"
    base = ["sample", "--prompt", "a ball falls", "--steps", "2", "--out", str(out), *SAMPLE.split()]
    assert main(base + ["--model", str(a)]) == 0
    made_by_a = _videos(out)
    run = json.loads((out / "run.json").read_text())
    recipe = run["videos"][0]["recipe"]
    assert recipe["model"] == str(a) and recipe["steps"] == 2 and recipe["seed"] == 0 and recipe["height"] == 16
    assert {"model_sha256", "prior_sha256", "scheduler", "dtype", "window", "mode", "prompt_sha256"} <= set(recipe)

    assert main(base + ["--model", str(a)]) == 2  # an old run is not silently replaced …
    assert "--skip-existing" in capsys.readouterr().err
    assert main(base + ["--model", str(a), "--skip-existing"]) == 0  # … and is reused when nothing changed
    assert "reusing 1 video(s)" in capsys.readouterr().out and _videos(out) == made_by_a

    # another model at another path, then the same path holding other weights: both are made again
    for model, what in ((b, "model"), (a, "model_sha256")):
        if model == a:
            _demo_model(a, 2)  # the folder now holds another model
        assert main(base + ["--model", str(model), "--skip-existing"]) == 0
        printed = capsys.readouterr().out
        assert "making 1 video(s)" in printed and what in printed, printed
        assert _videos(out) != made_by_a  # was: the first model's video kept and credited to the new one
        assert json.loads((out / "run.json").read_text())["videos"][0]["recipe"]["model"] == str(model)
        made_by_a = _videos(out)
    for flag, value in (("--seeds", "0"), ("--steps", "3"), ("--guidance-scale", "1.5"),
                        ("--motion-guidance-window", "0.5"), ("--dtype", "bfloat16")):
        argv = base + ["--model", str(a), "--skip-existing"]
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
        assert main(argv) == 0
        printed = capsys.readouterr().out
        if flag == "--seeds":  # the seed it was made with: nothing to make again
            assert "reusing 1 video(s)" in printed
        else:
            assert "making 1 video(s)" in printed, (flag, printed)


def test_benchmark_does_not_score_another_models_videos(two_models, tmp_path, capsys):
    a, b = two_models
    (tmp_path / "p.txt").write_text("a ball falls\na ball rolls\n")
    args = ["eval", "videophy", str(tmp_path / "p.txt"), "--out", str(tmp_path / "o"), "--steps", "2",
            "--sample-args", SAMPLE]
    assert main(args + ["--model", str(a)]) == 0
    first = _videos(tmp_path / "o" / "videos")
    (tmp_path / "p2.txt").write_text("a ball bounces\n")  # another prompt file, one prompt, another model
    args[2] = str(tmp_path / "p2.txt")
    assert main(args + ["--model", str(b)]) == 0
    run = json.loads((tmp_path / "o" / "videos" / "run.json").read_text())
    assert [v["prompt"] for v in run["videos"]] == ["a ball bounces"] and run["videos"][0]["recipe"]["model"] == str(b)
    assert _videos(tmp_path / "o" / "videos")["0_0_0.mp4"] != first["0_0_0.mp4"]
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["n_videos"] == 1 and report["model"] == str(b)
    assert report["motion"]["motion_smoothness"]["n"] == 1  # the stale 1_0_0.mp4 left in the folder is not scored
    rows = (tmp_path / "o" / "videos.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].endswith("a ball bounces")


@pytest.mark.parametrize("script, status, message", [
    ("import sys\nsys.stderr.write('CUDA out of memory\\n')\nsys.exit(3)\n", 3, "exit status 3"),
    ("pass\n", 0, "wrote no scores file"),
    ("import sys\nopen(sys.argv[2], 'w').write('videopath,sa,pc\\nx,high,low\\n')\n", None, "not a scores file"),
    ("import sys\nopen(sys.argv[2], 'w').write('videopath,sa,pc\\nx,7,7\\n')\n", None, "must lie in [0.0, 1.0]"),
])
def test_a_failing_evaluator_keeps_the_report_and_the_videos(two_models, tmp_path, capsys, script, status, message):
    import sys

    a, _ = two_models
    (tmp_path / "p.txt").write_text("a ball falls\n")
    (tmp_path / "judge.py").write_text(script)
    rc = main(["eval", "videophy", str(tmp_path / "p.txt"), "--model", str(a), "--out", str(tmp_path / "o"),
               "--steps", "2", "--sample-args", SAMPLE,
               "--evaluator-cmd", f"{sys.executable} {tmp_path / 'judge.py'} {{input}} {{output}}"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and message in err, err  # was: a traceback, no report.json
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert message in report["evaluator_error"]["error"] and report["evaluator_error"]["exit_status"] == status
    assert "motion_smoothness" in report["motion"] and (tmp_path / "o" / "videos" / "0_0_0.mp4").is_file()
    if status == 3:
        assert "CUDA out of memory" in report["evaluator_error"]["stderr_tail"] and "CUDA out of memory" in err


def test_eval_out_pointing_at_a_folder_is_refused_before_scoring(tmp_path, capsys, monkeypatch):
    import lamo.evaluation as ev

    assert main(["data", "physics", "--out", str(tmp_path / "d"), "-n", "1"]) == 0
    (tmp_path / "reports").mkdir()
    scored = []
    monkeypatch.setattr(ev, "score_videos", lambda *a, **k: scored.append(1) or [])
    assert main(["eval", "physics", str(tmp_path / "d"), "--out", str(tmp_path / "reports")]) == 2
    assert "is a folder" in capsys.readouterr().err and not scored  # was: IsADirectoryError after scoring
    (tmp_path / "file").write_text("x")
    assert main(["eval", "motion", str(tmp_path / "d"), "--out", str(tmp_path / "file" / "r.json")]) == 2
    assert "is a file" in capsys.readouterr().err and not scored
    assert main(["eval", "videophy", str(tmp_path / "p.txt"), "--model", "x/y", "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# 7. Checkpoints hold no pickle, and resuming unpickles nothing from them
# ---------------------------------------------------------------------------------------------
def test_checkpoints_hold_no_pickle_and_resume_ignores_one_planted(latent_cache, tmp_path, capsys):
    import pickle
    import zipfile

    out = tmp_path / "r"
    assert main(_prior_args(latent_cache, out, "--steps", "2", "--save-every", "1", "--max-steps-this-run", "1")) == 0
    ckpt = out / "checkpoints" / "step-000001"
    names = sorted(p.name for p in ckpt.iterdir())
    assert names == ["config.yaml", "model.safetensors", "optimizer.json", "optimizer.safetensors", "pickle_free.json",
                     "random_states_0.json", "random_states_0.safetensors", "trainer_state.json"]
    for p in ckpt.iterdir():  # no torch.save zip archive, no raw pickle
        head = p.read_bytes()[:2]
        assert not zipfile.is_zipfile(p) and head != b"\x80\x04" and head != b"\x80\x02", p.name

    class Boom:  # what a tampered checkpoint could hold: code that runs when unpickled
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    for name in ("optimizer.bin", "random_states_0.pkl"):
        (ckpt / name).write_bytes(pickle.dumps(Boom()))
    capsys.readouterr()
    assert main(_prior_args(latent_cache, out, "--steps", "2", "--save-every", "1",
                            "--resume-from-checkpoint", "latest")) == 0
    assert "at step 1" in capsys.readouterr().out and not (tmp_path / "pwned").exists()
    assert (ckpt / "optimizer.bin").read_bytes() == pickle.dumps(Boom())  # left alone, not written through


def test_optimizer_and_rng_state_round_trip_without_pickle(tmp_path):
    import random

    import numpy as np
    import torch

    from lamo.training.checkpoints import from_pickle_free, to_pickle_free

    p = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(p.parameters(), lr=1e-3, betas=(0.8, 0.95))
    p(torch.randn(4, 3)).sum().backward()
    opt.step()
    states = {"step": 3, "random_state": random.getstate(), "numpy_random_seed": np.random.get_state(),
              "torch_manual_seed": torch.get_rng_state()}
    torch.save(opt.state_dict(), tmp_path / "optimizer.bin")
    torch.save(states, tmp_path / "random_states_0.pkl")
    assert to_pickle_free(tmp_path) == ["optimizer.bin", "random_states_0.pkl"]
    assert not (tmp_path / "optimizer.bin").exists() and not (tmp_path / "random_states_0.pkl").exists()
    back = from_pickle_free(tmp_path, "optimizer.bin")
    assert back["param_groups"][0]["betas"] == (0.8, 0.95) and set(back["state"]) == {0, 1}
    assert all(torch.equal(back["state"][k]["exp_avg"], opt.state_dict()["state"][k]["exp_avg"]) for k in (0, 1))
    rng = from_pickle_free(tmp_path, "random_states_0.pkl")
    assert rng["random_state"] == states["random_state"] and torch.equal(rng["torch_manual_seed"],
                                                                         states["torch_manual_seed"])
    np.random.set_state(rng["numpy_random_seed"])
    a = np.random.rand()
    np.random.set_state(states["numpy_random_seed"])
    assert np.random.rand() == a
