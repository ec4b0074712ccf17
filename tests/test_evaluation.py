"""lamo.evaluation: the evaluation runs `lamo eval` makes, called from Python (no command line needed)."""
from __future__ import annotations

import json

import pytest

from lamo.cli import main
from lamo.errors import InputError
from lamo.evaluation import EvalResult, evaluate_motion, evaluate_physics, jsonable, run_benchmark


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from lamo.physics.dataset import write_dataset
    from lamo.physics.world import get_world_config

    folder = tmp_path_factory.mktemp("clips") / "d"
    write_dataset(folder, 3, get_world_config("tiny"), seed=2, preset_name="tiny")
    return folder


def test_evaluate_physics_is_what_the_command_prints_and_writes(dataset, tmp_path, capsys):
    result = evaluate_physics(dataset, out=tmp_path / "py.json", progress=False)
    assert isinstance(result, EvalResult) and result.exit_status() == 0 and result.note is None
    assert result.report["n_clips"] == 3 and result.report["world"]["size"] == 32
    assert json.loads((tmp_path / "py.json").read_text()) == jsonable(result.report)
    assert main(["eval", "physics", str(dataset), "--out", str(tmp_path / "cli.json"), "--per-clip"]) == 0
    printed = capsys.readouterr().out
    assert printed == result.text(per_clip=True).replace(str(tmp_path / "py.json"), str(tmp_path / "cli.json")) + "\n"
    cli = json.loads((tmp_path / "cli.json").read_text())
    assert cli["clips"] == json.loads((tmp_path / "py.json").read_text())["clips"]


def test_evaluate_motion_and_the_strict_exit_status(dataset, tmp_path):
    (tmp_path / "v").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / "v" / name).write_bytes((dataset / "videos" / "000000.mp4").read_bytes())
    (tmp_path / "v" / "broken.mp4").write_bytes(b"not a video")
    result = evaluate_motion(tmp_path / "v", progress=False)
    assert result.path == tmp_path / "v" / "eval_motion.json" and result.report["n_scored"] == 2
    assert [e["video"] for e in result.failed] == ["broken.mp4"]
    assert result.exit_status() == 0 and result.exit_status(strict=True) == 1
    assert "clips that could not be scored:\n  broken.mp4:" in result.text()


def test_a_preset_other_than_the_folders_world_is_noted(dataset, tmp_path):
    result = evaluate_physics(dataset, preset="small", out=tmp_path / "r.json", progress=False)
    assert result.note == f"{dataset / 'world.json'} differs from preset small; using the preset as asked"


def test_run_benchmark_from_python_with_its_own_generator(dataset, tmp_path):
    """The generation step is a parameter: here a stand-in that copies clips and writes run.json as `lamo sample`
    does; the scores come from a file the evaluator wrote."""
    out = tmp_path / "bench"
    calls = []

    def generate(argv):
        calls.append(argv)
        videos = out / "videos"
        videos.mkdir(parents=True, exist_ok=True)
        prompts = (out / "prompts.txt").read_text().splitlines()
        for i, _ in enumerate(prompts):
            (videos / f"{i}.mp4").write_bytes((dataset / "videos" / f"00000{i}.mp4").read_bytes())
        (videos / "run.json").write_text(json.dumps({"videos": [{"file": f"{i}.mp4", "prompt": p}
                                                                for i, p in enumerate(prompts)]}))

    (tmp_path / "prompts.txt").write_text("a ball falls\na ball bounces\n")
    scores = tmp_path / "scores.csv"
    scores.write_text("videopath,sa,pc\n0.mp4,1,1\n1.mp4,1,0\n")
    result = run_benchmark("videophy", tmp_path / "prompts.txt", model="some/model", out=out, seeds=[3], steps=7,
                           scores=scores, generate=generate)
    assert calls and calls[0][:2] == ["sample", "--model"] and "--skip-existing" in calls[0]
    assert calls[0][calls[0].index("--steps") + 1] == "7" and calls[0][calls[0].index("--seeds") + 1] == "3"
    assert calls[0][calls[0].index("--motion-guidance-scale") + 1] == "0.0"  # no prior: λ 0
    assert result.status == 0 and result.failure is None
    report = json.loads((out / "report.json").read_text())
    assert report == jsonable(result.report)
    assert report["scores"]["SA"] == 100.0 and report["scores"]["PC"] == 50.0 and report["n_videos"] == 2
    assert "videophy: SA 100.0  PC 50.0  joint 50.0  (n = 2)" in result.text()
    assert (out / "videos.csv").read_text().splitlines()[0] == "videopath,caption,short_caption,prompt"
    with pytest.raises(InputError, match="not both"):
        run_benchmark("videophy", tmp_path / "prompts.txt", model="m/x", out=out, scores=scores, evaluator_cmd="x",
                      generate=generate)
