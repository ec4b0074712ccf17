"""The benchmark scripts run end to end on tiny architectures (so a GPU session finds them working)."""
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_sampling.py"


FLOWMO_ARCHS = ("tiny", "wan-tiny")  # the FlowMo peer knows CogVideoX and Wan pipelines


@pytest.mark.parametrize("arch", ["tiny", "wan-tiny", "hunyuanvideo-tiny", "ltx-tiny"])
def test_bench_sampling_writes_a_results_file(arch, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_sampling", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "r.json"
    assert bench.main(["--arch", arch, "--prior-preset", "tiny", "--repeats", "2", "--steps", "4",
                       "--warmup-steps", "2", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["arch"] == arch and rec["results"]["baseline"]["time_vs_baseline"] == 1.0
    assert rec["results"]["mpg"]["seconds_per_video"] > 0 and rec["command"].startswith("python benchmarks/")
    assert rec["steps"] == 4 and len(rec["results"]["mpg"]["all_seconds"]) == 2
    if arch in FLOWMO_ARCHS:
        assert rec["results"]["flowmo"]["seconds_per_video"] > 0 and rec["flowmo_guided_steps"] == 1
        assert rec["results"]["flowmo_release"]["seconds_per_video"] > 0 and rec["flowmo_release_guided_steps"] == 1
    else:
        assert set(rec["results"]) == {"baseline", "mpg"}
    assert {"torch", "diffusers"} <= set(rec["versions"]) and rec["device"] and rec["complete"]


def test_bench_training_writes_a_results_file(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_training", SCRIPT.parent / "bench_training.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "t.json"
    assert bench.main(["--repeats", "1", "--batch-size", "2", "--prior-preset", "tiny", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["finetune_step_s"]["with_drift"] > 0 and rec["prior"]["clips_per_s"] > 0


@pytest.mark.parametrize("arch", ["tiny", "wan-tiny", "hunyuanvideo-tiny", "ltx-tiny"])
def test_bench_guidance_step_counts_and_times(arch, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_guidance_step", SCRIPT.parent / "bench_guidance_step.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "g.json"
    assert bench.main(["--arch", arch, "--prior-preset", "tiny", "--repeats", "1", "--dtype", "float32",
                       "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    counted = rec["counted"]
    assert counted["backbone_step_tflop"] > 0 and counted["flowmo_extra_tflop"] > counted["backbone_step_tflop"]
    one, split = counted["mpg_float32_one_call"], counted["mpg_float32_split"]
    assert one["tflop"] == split["tflop"] > 0 and one["pairs_per_call"] == one["pairs"]  # splitting adds no work
    assert counted["mpg_bfloat16_one_call"]["activations_gib"] == pytest.approx(one["activations_gib"] / 2, rel=0.05)
    assert rec["host_syncs_per_mpg_step"] == {"deferred_check (pipelines)": 0, "per_step_check": 1}
    assert all(m["seconds"] > 0 for m in rec["measured"].values()) and len(rec["measured"]) == 4
    assert rec["command"].startswith("python benchmarks/bench_guidance_step.py") and rec["device"]
    # FlowMo as released: forward (checkpointed) + its re-run in the backward + backward, no second forward at
    # the updated x_t; the backward holds one CFG branch's activations (half of what the style variant holds)
    assert rec["flowmo_release_guided_steps"] == 2  # round(12·10/50)
    release = counted["flowmo_release_extra_tflop"]
    assert 3 * counted["backbone_step_tflop"] < release <= counted["flowmo_extra_tflop"]
    ratio = counted["flowmo_release_activations_gib"] / counted["flowmo_activations_gib"]
    if arch == "hunyuanvideo-tiny":  # guidance-distilled: one call per step, so one branch is all of it
        assert 0.9 < ratio <= 1.0
    else:
        assert 0.45 < ratio < 0.65  # (tiny CogVideoX: shared embeddings make it 0.55; tiny LTX-Video 0.6)
    assert counted["flowmo_release_share_of_video_flops"] == pytest.approx(2 * release / (10 * counted["backbone_step_tflop"]))
    if arch == "tiny":  # --update-counts replaces the counts and keeps what was measured
        stale = json.loads(out.read_text())
        stale["counted"]["flowmo_release_extra_tflop"] = -1.0
        out.write_text(json.dumps(stale))
        assert bench.main(["--arch", arch, "--prior-preset", "tiny", "--dtype", "float32", "--update-counts",
                           "--out", str(out)]) == 0
        updated = json.loads(out.read_text())
        assert updated["counted"] == counted and updated["measured"] == rec["measured"]
        assert updated["command"] == rec["command"] and "--update-counts" in updated["count_updates"][0]["command"]
        with pytest.raises(SystemExit, match="bfloat16"):  # counts of another setting are refused
            bench.main(["--arch", arch, "--prior-preset", "tiny", "--update-counts", "--out", str(out)])


def test_plot_costs_reads_the_committed_gpu_runs(tmp_path):
    spec = importlib.util.spec_from_file_location("plot_costs", SCRIPT.parent / "plot_costs.py")
    plot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plot)
    runs = SCRIPT.parent / "results" / "h200_2026-11-26"
    rows = plot.sampling_rows(runs)
    # CogVideoX-2B at the default budget lives only in run2.log (its results file was lost to a time limit)
    assert rows["cogvideox-2b"]["mpg_budget"] == "2 GiB"
    assert rows["cogvideox-2b"]["mpg"]["time_vs_baseline"] == pytest.approx(32.311 / 31.723)
    assert rows["wan-1.3b"]["mpg_budget"] == "2 GiB" and "error" in rows["wan-1.3b"]["flowmo"]
    assert rows["cogvideox-5b"]["mpg_budget"] == "0.5 GiB"
    assert plot.main(["--runs", str(runs), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
