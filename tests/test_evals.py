"""VideoPhy / VideoPhy2 / VBench harnesses: resumable generation, aggregation, missing evaluators."""
import json
import sys

import pytest

from lamo.cli import main
from lamo.evals.benchmarks import aggregate, read_benchmark_prompts


def test_aggregation_matches_hand_computed_values():
    scores = [{"sa": 0.7, "pc": 0.2}, {"sa": 0.5, "pc": 0.5}, {"sa": 0.1, "pc": 0.9}, {"sa": 0.49, "pc": 0.51}]
    # SA ≥ 0.5: videos 1, 2 → 50 %; PC ≥ 0.5: videos 2, 3, 4 → 75 %; both: video 2 → 25 %
    assert aggregate("videophy", scores) == {"SA": 50.0, "PC": 75.0, "joint": 25.0, "n": 4, "n_unscored": 0}
    v2 = [{"sa": 4, "pc": 5}, {"sa": 3, "pc": 4}, {"sa": 5, "pc": 2}, {"sa": float("nan"), "pc": 5}]
    # ≥ 4 counts; the unscored video is left out and counted
    out = aggregate("videophy2", v2)
    assert (out["SA"], out["PC"], out["joint"], out["n"], out["n_unscored"]) == (200 / 3, 200 / 3, 100 / 3, 3, 1)
    with pytest.raises(ValueError, match="whole-number ratings 1–5"):
        aggregate("videophy2", [{"sa": 0.9, "pc": 4}])


def test_prompt_files_of_each_format(tmp_path):
    (tmp_path / "a.csv").write_text("caption,source\nA ball rolls,x\n\"Water, poured\",y\n")
    (tmp_path / "b.json").write_text(json.dumps([{"prompt_en": "a car turns", "dimension": ["motion"]}]))
    (tmp_path / "c.txt").write_text("one\n\ntwo\n")
    assert read_benchmark_prompts(tmp_path / "a.csv") == ["A ball rolls", "Water, poured"]
    assert read_benchmark_prompts(tmp_path / "b.json") == ["a car turns"]
    assert read_benchmark_prompts(tmp_path / "c.txt") == ["one", "two"]
    (tmp_path / "d.csv").write_text("video,score\nx,1\n")
    with pytest.raises(ValueError, match="'caption' or 'prompt' column"):
        read_benchmark_prompts(tmp_path / "d.csv")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from lamo.demo.model import build_demo_pipeline

    path = tmp_path_factory.mktemp("m") / "model"
    build_demo_pipeline("test", ["a", "ball", "falls", "rolls"]).save_pretrained(path)
    return path


SAMPLE = "--height 16 --width 16 --frames 7 --max-sequence-length 12 --guidance-scale 1"


def test_generation_resumes_and_missing_evaluator_is_explained(tmp_path, tiny_model, capsys):
    (tmp_path / "p.csv").write_text("caption\na ball falls\na ball rolls\n")
    args = ["eval", "videophy", str(tmp_path / "p.csv"), "--model", str(tiny_model), "--out", str(tmp_path / "o"),
            "--steps", "2", "--sample-args", SAMPLE]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "no videophy evaluator given" in out and "videocon_physics" in out
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["n_videos"] == 2 and "motion_smoothness" in report["motion"] and "evaluator_missing" in report
    first = (tmp_path / "o" / "videos" / "0_0_0.mp4").stat().st_mtime_ns
    (tmp_path / "o" / "videos" / "1_0_0.mp4").unlink()  # interrupted: one video missing
    assert main(args) == 0
    assert "reusing 1 video(s)" in capsys.readouterr().out
    assert (tmp_path / "o" / "videos" / "0_0_0.mp4").stat().st_mtime_ns == first  # kept, not re-made
    assert (tmp_path / "o" / "videos" / "1_0_0.mp4").is_file()
    rows = (tmp_path / "o" / "videos.csv").read_text().splitlines()
    assert rows[0] == "videopath,caption,short_caption,prompt" and len(rows) == 3


def test_scores_from_an_evaluator_command_are_aggregated(tmp_path, tiny_model, capsys):
    (tmp_path / "p.txt").write_text("a ball falls\na ball rolls\n")
    fake = tmp_path / "judge.py"  # stands in for the user's evaluator installation
    fake.write_text("import csv, sys\nrows = list(csv.DictReader(open(sys.argv[1])))\n"
                    "w = csv.writer(open(sys.argv[2], 'w'))\nw.writerow(['videopath', 'sa', 'pc'])\n"
                    "for i, r in enumerate(rows): w.writerow([r['videopath'], 0.9, 0.9 if i == 0 else 0.1])\n")
    assert main(["eval", "videophy", str(tmp_path / "p.txt"), "--model", str(tiny_model), "--out", str(tmp_path / "o"),
                 "--steps", "2", "--sample-args", SAMPLE,
                 "--evaluator-cmd", f"{sys.executable} {fake} {{input}} {{output}}"]) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["scores"] == {"SA": 100.0, "PC": 50.0, "joint": 50.0, "n": 2, "n_unscored": 0}
    assert "paper, LaMo-2B: SA 67.2  PC 31.4" in capsys.readouterr().out
