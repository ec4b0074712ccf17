"""benchmarks/drift_ablations.py end to end on a tiny backbone: fine-tunes trained here, the gradient share,
the choice on validation, the test read once, the cache, and the shipped-recipe check."""
import json
from pathlib import Path

import pytest

from bench_scripts import TINY_WORLD, load_benchmark, tiny_world_backbone


def _module():
    return load_benchmark("drift_ablations")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("drift")
    return tmp, TINY_WORLD, tiny_world_backbone(tmp)


def test_drift_ablation_trains_diagnoses_chooses_tests_and_resumes(tiny, capsys):
    tmp, world, backbone = tiny
    mod = _module()
    args = ["--backbone", str(backbone), "--out", str(tmp / "out"), "--results", str(tmp / "r.json"),
            "--ft-data", str(tmp / "data"), "--ft-steps", "2", "--ft-batch-size", "4", "--diagnose", "2",
            "--variants", "batch", "dense-batch-τ1", "--world-overrides", json.dumps(world), "--val-prompts", "3",
            "--test-prompts", "4", "--steps", "3", "--n-resamples", "199"]
    # validation only: no test clip is sampled, nothing is decided
    assert mod.main(args + ["--validation-only"]) == 0
    early = json.loads((tmp / "r.json").read_text())
    assert early["per_clip"] == {} and early["effects"] == {} and early["decision"].startswith("not decided")
    assert not any(p.name.startswith("test") for p in (tmp / "out" / "cells").iterdir())
    assert "Decision: not decided" in capsys.readouterr().out
    assert mod.main(args) == 0
    res = json.loads((tmp / "r.json").read_text())
    assert res["per_clip_validation"] == early["per_clip_validation"] and len(res["cells_reused"]) == 3
    assert list(res["variants"]) == ["plain", "batch", "dense-batch-τ1"]
    # every fine-tune trained here from the backbone with its own drift loss, same recipe otherwise
    for name, v in res["variants"].items():
        meta = json.loads((tmp / "out" / f"ft-{name}" / "pipeline" / "lamo_demo.json").read_text())
        assert meta["step"] == 2 and meta["train"]["init_from"] == str(backbone) and meta["train"]["seed"] == 5
        assert (meta["train"]["drift_weight"], meta["train"]["drift_mode"], meta["train"]["drift_tau"]) == \
            (v["weight"], v["mode"], v["tau"])
        assert Path(v["folder"]).name == "transformer-bf16"
    assert len({v["sha256"] for v in res["variants"].values()}) == 3  # the drift loss changed the weights
    # the gradient share of each drift term, measured (finite, positive), not of the plain one
    assert set(res["gradient_share"]) == {"batch", "dense-batch-τ1"}
    assert all(0 < g["ratio_median"] < float("inf") and -1 <= g["cos_median"] <= 1 for g in res["gradient_share"].values())
    # validation: each drift variant vs plain on the same clips; the choice among them
    assert set(res["validation"]) == {"batch", "dense-batch-τ1"} and res["best"] in (None, "batch", "dense-batch-τ1")
    assert all(len(r) == 6 for r in res["per_clip_validation"].values())
    # the test, read once: baseline, plain, the chosen variant and the earlier MDL, paired
    assert {"baseline", "plain", "batch", "ground truth"} <= set(res["per_clip"])
    assert "batch vs plain" in res["effects"] and "plain vs baseline" in res["effects"]
    assert res["decision"].startswith(("no drift loss", "the earlier MDL", "adopt"))
    assert (tmp / "r.png").is_file()
    printed = capsys.readouterr().out
    assert "| dense-batch-τ1" in printed and "Decision:" in printed and "smallest detectable" in printed
    # resume: the fine-tunes are not trained again and every cell comes from the cache
    weights = sorted((tmp / "out").glob("ft-*/pipeline/transformer/*.safetensors"))
    stamps = [p.stat().st_mtime_ns for p in weights]
    assert mod.main(args) == 0
    again = json.loads((tmp / "r.json").read_text())
    assert len(weights) == 3 and [p.stat().st_mtime_ns for p in weights] == stamps  # nothing trained again
    assert len(again["cells_reused"]) == 3 + len(again["per_clip"]) - 1
    assert again["per_clip"] == res["per_clip"] and again["per_clip_validation"] == res["per_clip_validation"]
    capsys.readouterr()
    assert mod.main(["--table", str(tmp / "r.json")]) == 0
    assert capsys.readouterr().out.strip() == mod.tables(again).strip()


def test_shipped_fine_tunes_must_match_the_recipe(tiny):
    """--shipped checks the shipped fine-tunes' recorded options: they were made from the shipped backbone,
    not from this tiny one, so the run refuses them and says what differs."""
    tmp, world, backbone = tiny
    mod = _module()
    args = ["--backbone", str(backbone), "--out", str(tmp / "out2"), "--results", str(tmp / "r2.json"), "--shipped",
            "--ft-data", str(tmp / "data"), "--ft-steps", "2", "--ft-batch-size", "4", "--variants", "batch"]
    with pytest.raises(ValueError, match="the shipped demo-finetune-plain was not trained with plain's recipe"):
        mod.main(args)
    # the recipe check itself: the shipped fine-tunes are the README's FT on the shipped backbone, plain without a
    # drift loss and the MDL with the variant the ablation adopted (given as absolute or relative path)
    from lamo.demo.run import DEFAULT_BACKBONE

    by_name = {v.name: v for v in mod.VARIANTS}
    for name, folder, backbone_path in (("plain", "demo-finetune-plain", "src/lamo/assets/demo-backbone"),
                                        (mod.ADOPTED, "demo-finetune-mdl", str(DEFAULT_BACKBONE))):
        assert mod.fine_tune(by_name[name], backbone_path, tmp / "out3", mod.FT, 1, True).name == folder
    # a variant whose recipe the shipped MDL is not would be refused, naming what differs
    mod.SHIPPED["dense-batch-τ1"] = "demo-finetune-mdl"
    with pytest.raises(ValueError, match="drift_weight"):
        mod.fine_tune(by_name["dense-batch-τ1"], str(DEFAULT_BACKBONE), tmp / "out3", mod.FT, 1, True)


def test_diagnose_only_measures_without_training_or_sampling(tiny, capsys):
    tmp, world, backbone = tiny
    mod = _module()
    out = tmp / "out-diag"
    assert mod.main(["--backbone", str(backbone), "--out", str(out), "--diagnose-only", str(tmp / "g.json"),
                     "--diagnose", "1", "--ft-data", str(tmp / "data"), "--ft-batch-size", "4",
                     "--world-overrides", json.dumps(world), "--variants", "paper", "dense"]) == 0
    res = json.loads((tmp / "g.json").read_text())
    assert set(res["gradient_share"]) == {"paper", "dense"}  # the plain fine-tune has no drift term
    assert all(g["batches"] == 1 and g["ratio_median"] > 0 for g in res["gradient_share"].values())
    assert not out.exists()  # nothing trained, nothing sampled
    assert "| paper | normalized, τ = 2, λ_drift = 0.4 |" in capsys.readouterr().out
