"""benchmarks/mdl_vs_backbone.py end to end on a tiny backbone trained here for a few steps (16 px, 8 frames):
the self-sample data set, and the anchored protocol (world-only data, the anchor weight chosen on validation)."""
import json

from bench_scripts import TINY_WORLD as WORLD, load_benchmark, tiny_world_backbone


def _run_args(tmp_path, *extra):
    """(backbone, script module, OUT, results file, its arguments) for a tiny run with ``extra`` options."""
    backbone = tiny_world_backbone(tmp_path / "bb")
    out, results = tmp_path / "run", tmp_path / "r.json"
    args = ["--backbone", str(backbone), "--preset", "test", "--world-overrides", json.dumps(WORLD), "--out", str(out),
            "--results", str(results), "--steps", "2", "--test-prompts", "4", "--n-resamples", "99", "--chunk", "8",
            *extra]
    return backbone, load_benchmark("mdl_vs_backbone"), out, results, args


def test_self_sample_data_two_finetunes_and_paired_test(tmp_path):
    backbone, mod, out, results, args = _run_args(tmp_path, "--world-clips", "3", "--self-clips", "2")
    assert mod.main(args) == 0
    res = json.loads(results.read_text())
    # the data: world clips and the backbone's own samples, one dataset
    meta = [json.loads(x) for x in (out / "data" / "metadata.jsonl").read_text().splitlines()]
    assert [m["source"] for m in meta] == ["world"] * 3 + ["backbone sample"] * 2
    assert all((out / "data" / m["video"]).is_file() for m in meta)
    # two fine-tunes from the backbone, the second with the drift loss
    for f, drift in (("ft-plain", 0.0), ("ft-mdl", 45.0)):
        cfg = json.loads((out / f / "pipeline" / "lamo_demo.json").read_text())["train"]
        assert cfg["init_from"] == str(backbone) and cfg["drift_weight"] == drift and cfg["steps"] == 2
    # the test: three variants on the same clips, paired both readouts
    assert set(res["per_clip"]) == {"baseline", "plain (own + world)", "MDL (own + world)", "ground truth"}
    assert all(len(res["per_clip"][k]) == 8 for k in ("baseline", "plain (own + world)", "MDL (own + world)"))
    assert res["comparisons"] == ["plain (own + world) vs baseline", "MDL (own + world) vs baseline",
                                  "MDL (own + world) vs plain (own + world)"]
    assert set(res["readout_b"]["effects"]) == set(res["comparisons"])
    # a second call resumes: nothing is sampled or trained again
    assert mod.main(args) == 0
    assert json.loads(results.read_text())["timings"]["train_s"] < 5


def test_anchor_chosen_on_validation_then_both_finetunes_anchored(tmp_path):
    backbone, mod, out, results, args = _run_args(tmp_path, "--world-clips", "4", "--self-clips", "0", "--val-prompts",
                                                  "3", "--val-seeds", "0", "--anchor-grid", "5", "0.5")
    assert mod.main(args) == 0
    res = json.loads(results.read_text())
    meta = [json.loads(x) for x in (out / "data" / "metadata.jsonl").read_text().splitlines()]
    assert [m["source"] for m in meta] == ["world"] * 4
    val = res["validation"]
    # the grid is walked upwards from its smallest β on validation clips (3 prompts × 1 seed), never the test's
    assert val["grid"] == [0.5, 5.0] and val["tried"][0]["anchor_weight"] == 0.5
    assert len(val["per_clip"]["baseline"]) == 3
    test_captions = {r["caption"] for r in res["per_clip"]["baseline"]}
    assert not test_captions & {r["caption"] for r in val["per_clip"]["baseline"]}
    beta = val["chosen"]
    assert beta in (0.5, 5.0) and res["anchor_weight"] == beta
    # the chosen β is the first whose verdict is not "worsened" (or the largest when none passes)
    passed = [t["anchor_weight"] for t in val["tried"] if t["verdict"] != "worsened"]
    assert beta == (passed[0] if passed else 5.0)
    # both fine-tunes of the test were trained with that anchor, from the backbone
    for f, drift in ((f"ft-plain-a{beta:g}", 0.0), (f"ft-mdl-a{beta:g}", 45.0)):
        cfg = json.loads((out / f / "pipeline" / "lamo_demo.json").read_text())["train"]
        assert cfg["init_from"] == str(backbone) and cfg["drift_weight"] == drift and cfg["anchor_weight"] == beta
    assert "anchor" in res["training"]["plain"]["last"]
    names = [f"plain (world, anchor {beta:g})", f"MDL (world, anchor {beta:g})"]
    assert set(res["per_clip"]) == {"baseline", *names, "ground truth"}
    assert res["comparisons"] == [f"{names[0]} vs baseline", f"{names[1]} vs baseline", f"{names[1]} vs {names[0]}"]
    # a second call resumes: nothing is trained again
    assert mod.main(args) == 0
    assert json.loads(results.read_text())["timings"]["train_s"] < 5
