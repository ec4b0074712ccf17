"""The benchmark scripts run end to end on tiny architectures (so a GPU session finds them working)."""
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_sampling.py"


@pytest.mark.parametrize("arch", ["tiny", "wan-tiny"])
def test_bench_sampling_writes_a_results_file(arch, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_sampling", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "r.json"
    assert bench.main(["--arch", arch, "--prior-preset", "tiny", "--repeats", "1", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["arch"] == arch and rec["results"]["baseline"]["time_vs_baseline"] == 1.0
    assert rec["results"]["mpg"]["seconds_per_video"] > 0 and rec["command"].startswith("python benchmarks/")
    assert ("flowmo" in rec["results"]) == (arch == "tiny")  # the peer supports CogVideoX only
    assert {"torch", "diffusers"} <= set(rec["versions"]) and rec["device"]


def test_bench_training_writes_a_results_file(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_training", SCRIPT.parent / "bench_training.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "t.json"
    assert bench.main(["--repeats", "1", "--batch-size", "2", "--prior-preset", "tiny", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["finetune_step_s"]["with_drift"] > 0 and rec["prior"]["clips_per_s"] > 0
