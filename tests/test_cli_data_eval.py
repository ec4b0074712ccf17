"""``lamo data physics`` and ``lamo eval physics|motion`` end to end through ``lamo.cli.main``."""
import json

import numpy as np
import pytest

from lamo.cli import main
from lamo.physics import WORLD_PRESETS, Trajectory, load_world_config, read_metadata, render, simulate
from lamo.video_io import read_video, write_video

TINY = WORLD_PRESETS["tiny"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("physics") / "ds"
    assert main(["data", "physics", "--out", str(out), "-n", "4", "--preset", "tiny", "--seed", "3"]) == 0
    return out


def test_data_physics_writes_the_dataset_format(dataset):
    assert load_world_config(dataset) == TINY
    assert json.loads((dataset / "world.json").read_text())["preset"] == "tiny"
    records = read_metadata(dataset)
    assert [r["video"] for r in records] == [f"videos/{i:06d}.mp4" for i in range(4)]
    for r in records:
        assert {"caption", "scenario", "seed", "states"} <= set(r) and r["caption"]
        frames = read_video(dataset / r["video"])
        assert frames.shape == (TINY.frames, TINY.size, TINY.size, 3)
        states = Trajectory.from_json(r["states"])
        again = simulate(TINY, r["seed"])  # the recorded seed reproduces the clip
        assert np.allclose(states.position, again.position, atol=1e-4) and states.colours == again.colours


def test_eval_physics_and_motion_on_a_dataset(dataset, capsys):
    assert main(["eval", "physics", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "gravity_error" in out and "4 clip(s): 4 scored, 0 failed" in out
    report = json.loads((dataset / "eval_physics.json").read_text())
    assert report["n_scored"] == 4 and report["world"]["size"] == 32
    assert report["summary"]["velocity_jumps"]["mean"] == 0
    assert report["summary"]["detection_rate"]["mean"] == 1
    assert all("caption" in c and "metrics" in c for c in report["clips"])

    target = dataset / "reports" / "motion.json"
    assert main(["eval", "motion", str(dataset), "--out", str(target), "--per-clip"]) == 0
    report = json.loads(target.read_text())
    assert report["n_scored"] == 4 and report["summary"]["motion_smoothness"]["mean"] > 0.95


def test_bad_clips_get_a_message_and_the_others_are_kept(tmp_path, capsys):
    folder = tmp_path / "mixed"
    for i in range(2):
        write_video(folder / f"good{i}.mp4", render(simulate(TINY, i), TINY))
    write_video(folder / "sub" / "wrong_size.mp4", np.full((8, 48, 48, 3), 20, np.uint8))
    write_video(folder / "black.mp4", np.full((16, 32, 32, 3), 20, np.uint8))
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4000))

    assert main(["eval", "physics", str(folder), "--preset", "tiny"]) == 0
    report = json.loads((folder / "eval_physics.json").read_text())
    by_name = {c["video"]: c for c in report["clips"]}
    assert set(by_name) == {"good0.mp4", "good1.mp4", "sub/wrong_size.mp4", "black.mp4", "empty.mp4", "corrupt.mp4"}
    assert "metrics" in by_name["good0.mp4"] and "metrics" in by_name["good1.mp4"]
    assert "empty" in by_name["empty.mp4"]["error"]
    assert "could not decode" in by_name["corrupt.mp4"]["error"] or "no decodable" in by_name["corrupt.mp4"]["error"]
    assert "frame size 48×48" in by_name["sub/wrong_size.mp4"]["error"]
    assert "no ball" in by_name["black.mp4"]["error"]
    assert report["n_scored"] == 2 and report["n_failed"] == 4
    assert not any(c.get("unexpected") for c in report["clips"])
    printed = capsys.readouterr().out
    assert "could not be scored" in printed and "empty.mp4" in printed

    assert main(["eval", "motion", str(folder)]) == 0  # any size is fine for motion metrics
    report = json.loads((folder / "eval_motion.json").read_text())
    assert report["n_scored"] == 4 and report["n_failed"] == 2

    assert main(["eval", "physics", str(folder), "--preset", "tiny", "--strict"]) == 1


def test_eval_usage_errors(tmp_path, capsys):
    folder = tmp_path / "clips"
    write_video(folder / "a.mp4", render(simulate(TINY, 0), TINY))
    assert main(["eval", "physics", str(folder)]) == 2  # no world.json and no --preset
    assert "pass --preset" in capsys.readouterr().err
    assert main(["eval", "motion", str(tmp_path / "nowhere")]) == 2
    (tmp_path / "none").mkdir()
    assert main(["eval", "motion", str(tmp_path / "none")]) == 2
    assert "no videos found" in capsys.readouterr().err
