"""The paper's evaluation protocol: which text is generated and which is judged, breakdowns, the hard subset,
thresholded aggregation, VBench's total score, the VBench prompt suites — each against a reference written here
from the benchmarks' own code (the release's VideoPhy / VideoPhy-2 evaluators, VBench's cal_final_score.py)."""
import csv
import json
import math
import sys

import pytest
from test_evals import SAMPLE, tiny_model  # noqa: F401  (the tiny demo pipeline fixture)

from lamo.cli import main
from lamo.errors import InputError, MissingInputError
from lamo.evals.benchmarks import aggregate, read_benchmark_rows, read_scores, suite_prompts, vbench_total

VIDEOPHY = ("video_url,caption,short_caption,states_of_matter,source,complexity,majority_sa,majority_pc\n"
            "u0,\"A long, upsampled description of a ball falling.\",A ball falls.,solid_solid,lavie,0,1,1\n"
            "u1,A long description of honey poured into milk.,Honey pours into milk.,fluid_fluid,lavie,1,1,0\n"
            "u2,A long description of a spoon stirring soup.,A spoon stirs soup.,solid_fluid,lavie,1,0,0\n")
VIDEOPHY2 = ("caption,upsampled_caption,is_hard,category\n"
             "A yo-yo bounces off a wall.,\"In a close-up, a red yo-yo is tossed against a brick wall...\",True,sports\n"
             "A bulldozer clears debris.,A robust yellow bulldozer pushes rubble towards a dumpster...,False,objects\n")


def test_videophy_is_generated_from_caption_and_judged_on_short_caption(tmp_path):
    (tmp_path / "v.csv").write_text(VIDEOPHY)
    rows = read_benchmark_rows("videophy", tmp_path / "v.csv")
    assert [r.prompt for r in rows] == ["A long, upsampled description of a ball falling.",
                                        "A long description of honey poured into milk.",
                                        "A long description of a spoon stirring soup."]
    assert [r.judge for r in rows] == ["A ball falls.", "Honey pours into milk.", "A spoon stirs soup."]
    assert [r.groups for r in rows] == [{"states_of_matter": "solid_solid", "complexity": "0"},
                                        {"states_of_matter": "fluid_fluid", "complexity": "1"},
                                        {"states_of_matter": "solid_fluid", "complexity": "1"}]


def test_videophy2_is_generated_from_upsampled_caption_and_judged_on_caption(tmp_path):
    (tmp_path / "v2.csv").write_text(VIDEOPHY2)
    rows = read_benchmark_rows("videophy2", tmp_path / "v2.csv")
    assert [r.prompt[:14] for r in rows] == ["In a close-up,", "A robust yello"]
    assert [r.judge for r in rows] == ["A yo-yo bounces off a wall.", "A bulldozer clears debris."]
    assert rows[0].groups == {"category": "sports", "is_hard": "True"}
    # a file without the long text: the same text for both
    (tmp_path / "plain.csv").write_text("caption\nA ball rolls.\n")
    (only,) = read_benchmark_rows("videophy2", tmp_path / "plain.csv")
    assert only.prompt == only.judge == "A ball rolls."


def release_videophy_summary(rows, column):
    """The release's VideoPhy summary: per value, mean of (score >= 0.5) for SA and for PC (accuracy)."""
    out = {}
    for value in sorted({r["groups"][column] for r in rows}, key=str):
        sub = [r for r in rows if r["groups"][column] == value]
        out[value] = (sum(r["sa"] >= 0.5 for r in sub) / len(sub), sum(r["pc"] >= 0.5 for r in sub) / len(sub),
                      len(sub))
    return out


def test_videophy_breakdowns_are_thresholded_accuracies():
    import random

    rng = random.Random(0)
    rows = [{"videopath": f"v{i}", "sa": rng.random(), "pc": rng.random(),
             "groups": {"states_of_matter": rng.choice(["solid_solid", "solid_fluid", "fluid_fluid"]),
                        "complexity": str(rng.randint(0, 1))}} for i in range(60)]
    out = aggregate("videophy", rows)
    assert out["SA"] == pytest.approx(100 * sum(r["sa"] >= 0.5 for r in rows) / 60)
    for column in ("states_of_matter", "complexity"):
        ref = release_videophy_summary(rows, column)
        assert set(out["by"][column]) == set(ref)
        for value, (sa, pc, n) in ref.items():
            got = out["by"][column][value]
            assert (got["SA"], got["PC"], got["n"]) == (pytest.approx(100 * sa), pytest.approx(100 * pc), n)
    # thresholded, not averaged: the mean probability would give another number here
    mean_sa = 100 * sum(r["sa"] for r in rows) / 60
    assert not math.isclose(out["SA"], mean_sa, abs_tol=0.5)


def test_the_release_videophy_long_format_reads_as_the_wide_one(tmp_path):
    with open(tmp_path / "long.csv", "w", newline="") as f:  # what the release's VideoPhy evaluator writes
        w = csv.writer(f)
        w.writerow(["video_url", "caption", "task_type", "score", "states_of_matter", "complexity"])
        w.writerows([["a.mp4", "x", "SA", 0.7, "solid_solid", 0], ["a.mp4", "x", "PC", 0.2, "solid_solid", 0],
                     ["b.mp4", "y", "SA", 0.4, "fluid_fluid", 1], ["b.mp4", "y", "PC", 0.9, "fluid_fluid", 1]])
    (tmp_path / "v2.csv").write_text("videopath,caption,sa_score,pc_score\na.mp4,x,4,5\nb.mp4,y,0,3\n")
    assert sorted(read_scores(tmp_path / "long.csv"), key=lambda r: r["videopath"]) == [
        {"videopath": "a.mp4", "sa": 0.7, "pc": 0.2}, {"videopath": "b.mp4", "sa": 0.4, "pc": 0.9}]
    assert read_scores(tmp_path / "v2.csv") == [{"videopath": "a.mp4", "sa": 4.0, "pc": 5.0},
                                                {"videopath": "b.mp4", "sa": 0.0, "pc": 3.0}]


def test_videophy2_summary_and_hard_subset():
    ratings = [(4, 5, "True", "sports"), (3, 4, "False", "sports"), (5, 2, "True", "objects"), (0, 5, "False", "objects"),
               (4, 4, "True", "objects")]
    rows = [{"videopath": str(i), "sa": sa, "pc": pc, "groups": {"is_hard": hard, "category": cat}}
            for i, (sa, pc, hard, cat) in enumerate(ratings)]
    out = aggregate("videophy2", rows)
    # the release's VideoPhy-2 summary: mean, shares >= 3 / 4 / 5, joint (both >= 4); 0 (unreadable) counted
    sa, pc = [r[0] for r in ratings], [r[1] for r in ratings]
    assert out["SA"] == pytest.approx(100 * sum(x >= 4 for x in sa) / 5)
    assert out["SA_mean"] == pytest.approx(sum(sa) / 5) and out["PC_mean"] == pytest.approx(sum(pc) / 5)
    assert out["SA_ge3"] == pytest.approx(100 * sum(x >= 3 for x in sa) / 5)
    assert out["PC_ge5"] == pytest.approx(100 * sum(x >= 5 for x in pc) / 5)
    assert out["joint"] == pytest.approx(100 * sum(a >= 4 and b >= 4 for a, b in zip(sa, pc)) / 5)
    hard = [r for r in ratings if r[2] == "True"]
    assert out["hard"]["n"] == len(hard) == 3
    assert out["hard"]["SA"] == pytest.approx(100 * sum(r[0] >= 4 for r in hard) / 3)
    assert out["hard"]["joint"] == pytest.approx(100 * sum(r[0] >= 4 and r[1] >= 4 for r in hard) / 3)
    assert set(out["by"]["category"]) == {"sports", "objects"}
    with pytest.raises(InputError, match="whole-number"):
        aggregate("videophy2", [{"sa": 3.5, "pc": 4}])


def vbench_reference(scores):
    """VBench's scripts/cal_final_score.py with its scripts/constant.py, written out."""
    norm = {"subject consistency": (0.1462, 1.0), "background consistency": (0.2615, 1.0),
            "temporal flickering": (0.6293, 1.0), "motion smoothness": (0.706, 0.9975), "dynamic degree": (0.0, 1.0),
            "aesthetic quality": (0.0, 1.0), "imaging quality": (0.0, 1.0), "object class": (0.0, 1.0),
            "multiple objects": (0.0, 1.0), "human action": (0.0, 1.0), "color": (0.0, 1.0),
            "spatial relationship": (0.0, 1.0), "scene": (0.0, 0.8222), "appearance style": (0.0009, 0.2855),
            "temporal style": (0.0, 0.364), "overall consistency": (0.0, 0.364)}
    weight = {k: (0.5 if k == "dynamic degree" else 1.0) for k in norm}
    quality_list = ["subject consistency", "background consistency", "temporal flickering", "motion smoothness",
                    "aesthetic quality", "imaging quality", "dynamic degree"]
    semantic_list = [k for k in norm if k not in quality_list]
    n = {k: (scores.get(k, 0) - lo) / (hi - lo) * weight[k] for k, (lo, hi) in norm.items()}
    q = sum(n[k] for k in quality_list) / sum(weight[k] for k in quality_list)
    s = sum(n[k] for k in semantic_list) / sum(weight[k] for k in semantic_list)
    return (4 * q + 1 * s) / 5, q, s


def test_vbench_total_is_vbench_own_formula():
    import random

    rng = random.Random(1)
    names = ["subject consistency", "background consistency", "temporal flickering", "motion smoothness",
             "dynamic degree", "aesthetic quality", "imaging quality", "object class", "multiple objects",
             "human action", "color", "spatial relationship", "scene", "appearance style", "temporal style",
             "overall consistency"]
    scores = {k: rng.uniform(0.3, 0.99) for k in names}
    results = {k.replace(" ", "_"): [v, [{"video_path": "x.mp4"}]] for k, v in scores.items()}  # VBench's layout
    got = vbench_total(results)
    total, q, s = vbench_reference(scores)
    assert (got["total"], got["quality"], got["semantic"]) == (pytest.approx(100 * total), pytest.approx(100 * q),
                                                               pytest.approx(100 * s))
    assert got["missing"] == []
    partial = vbench_total({"dynamic_degree": 0.6, "motion_smoothness": 0.98})  # the rest count 0, as in VBench
    assert partial["total"] == pytest.approx(100 * vbench_reference({"dynamic degree": 0.6,
                                                                     "motion smoothness": 0.98})[0])
    assert len(partial["missing"]) == 14


def test_vbench2_physics_suite_ships_with_lamo():
    rows = suite_prompts("vbench2-physics")
    dims = {d for r in rows for d in r.dimensions}
    assert dims == {"Mechanics", "Thermotics", "Material"} and len(rows) == len({r.prompt for r in rows})
    mech = suite_prompts("vbench2-physics:Mechanics")
    assert mech and all("Mechanics" in r.dimensions for r in mech) and len(mech) < len(rows)
    assert suite_prompts("a_file.csv") is None
    with pytest.raises(InputError, match="no prompt of the dimension"):
        suite_prompts("vbench2-physics:Anatomy")


def test_vbench2_physics_matches_the_installed_vbench2_when_present():
    import importlib.util

    if importlib.util.find_spec("vbench2") is None:
        pytest.skip("the vbench2 package is not installed")
    full = suite_prompts("vbench2:Mechanics,Thermotics,Material")
    assert [(r.prompt, r.dimensions) for r in full] == [(r.prompt, r.dimensions)
                                                        for r in suite_prompts("vbench2-physics")]


def test_installed_suites_are_read_from_the_package_or_refused(tmp_path, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("vbench") is None:
        with pytest.raises(MissingInputError, match="pip install vbench"):
            suite_prompts("vbench")
    fake = tmp_path / "site" / "vbench"  # a package laid out as the wheel is
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "VBench_full_info.json").write_text(json.dumps(
        [{"prompt_en": "a dog running", "dimension": ["dynamic_degree", "motion_smoothness"]},
         {"prompt_en": "a red car", "dimension": ["color"]}]))
    (fake / "__init__.py").write_text("raise ImportError('the real package imports heavy dependencies')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "vbench", raising=False)
    rows = suite_prompts("vbench:dynamic_degree")
    assert [(r.prompt, r.dimensions) for r in rows] == [("a dog running", ["dynamic_degree", "motion_smoothness"])]


def test_eval_videophy2_end_to_end_protocol(tmp_path, tiny_model):  # noqa: F811
    (tmp_path / "p.csv").write_text("caption,upsampled_caption,is_hard\na ball rolls,a ball falls,True\n"
                                    "a ball falls,a ball rolls,False\n")
    (tmp_path / "judge.py").write_text(  # a stand-in judge: rates by the SA text it is given
        "import csv, sys\nrows = list(csv.DictReader(open(sys.argv[1])))\n"
        "w = csv.writer(open(sys.argv[2], 'w'))\nw.writerow(['videopath', 'sa_score', 'pc_score'])\n"
        "for r in rows: w.writerow([r['videopath'], 5 if r['short_caption'] == 'a ball rolls' else 2, 4])\n")
    assert main(["eval", "videophy2", str(tmp_path / "p.csv"), "--model", str(tiny_model), "--out",
                 str(tmp_path / "o"), "--steps", "2", "--sample-args", SAMPLE,
                 "--evaluator-cmd", f"{sys.executable} {tmp_path / 'judge.py'} {{input}} {{output}}"]) == 0
    assert (tmp_path / "o" / "prompts.txt").read_text().splitlines() == ["a ball falls", "a ball rolls"]
    table = list(csv.DictReader(open(tmp_path / "o" / "videos.csv")))
    assert [(r["prompt"], r["caption"], r["short_caption"], r["is_hard"]) for r in table] == [
        ("a ball falls", "a ball rolls", "a ball rolls", "True"), ("a ball rolls", "a ball falls", "a ball falls",
                                                                    "False")]
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["scores"]["SA"] == 50.0 and report["scores"]["hard"] == {
        "SA": 100.0, "PC": 100.0, "joint": 100.0, "n": 1, "SA_mean": 5.0, "SA_ge3": 100.0, "SA_ge5": 100.0,
        "PC_mean": 4.0, "PC_ge3": 100.0, "PC_ge5": 0.0}


def test_eval_vbench_offline_scores_motion_per_dimension(tmp_path, tiny_model, capsys):  # noqa: F811
    (tmp_path / "v.json").write_text(json.dumps([{"prompt_en": "a ball falls", "dimension": ["Mechanics"]},
                                                 {"prompt_en": "a ball rolls", "dimension": ["Material", "Mechanics"]}]))
    assert main(["eval", "vbench", str(tmp_path / "v.json"), "--model", str(tiny_model), "--out", str(tmp_path / "o"),
                 "--steps", "2", "--sample-args", SAMPLE]) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert "evaluator_missing" in report and set(report["motion_by_dimension"]) == {"Mechanics", "Material"}
    assert report["motion_by_dimension"]["Mechanics"]["motion_smoothness"]["n"] == 2
    assert report["motion_by_dimension"]["Material"]["motion_smoothness"]["n"] == 1
    (tmp_path / "r.json").write_text(json.dumps({"dynamic_degree": [0.6, []], "motion_smoothness": [0.98, []]}))
    assert main(["eval", "vbench", str(tmp_path / "v.json"), "--model", str(tiny_model), "--out", str(tmp_path / "o"),
                 "--steps", "2", "--sample-args", SAMPLE, "--scores", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["vbench_total"]["total"] == pytest.approx(vbench_total({"dynamic degree": 0.6,
                                                                          "motion smoothness": 0.98})["total"])
    assert "VBench: total" in capsys.readouterr().out
