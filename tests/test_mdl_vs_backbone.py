"""benchmarks/mdl_vs_backbone.py end to end on a tiny backbone trained here for a few steps (16 px, 8 frames)."""
import json

from bench_scripts import TINY_WORLD as WORLD, load_benchmark, tiny_world_backbone


def test_self_sample_data_two_finetunes_and_paired_test(tmp_path):
    backbone = tiny_world_backbone(tmp_path / "bb")
    mod = load_benchmark("mdl_vs_backbone")
    out, results = tmp_path / "run", tmp_path / "r.json"
    args = ["--backbone", str(backbone), "--preset", "test", "--world-overrides", json.dumps(WORLD), "--out", str(out),
            "--results", str(results), "--world-clips", "3", "--self-clips", "2", "--steps", "2", "--test-prompts", "4",
            "--n-resamples", "99", "--chunk", "8"]
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
