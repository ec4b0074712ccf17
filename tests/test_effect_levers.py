"""The paired, stable validation rule (lamo.demo.selection.choose_paired / choose_stably) and K guidance
corrections per step (lamo.repeated_guidance)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lamo.demo.selection import choose_paired, choose_stably
from lamo.guidance import MotionPriorGuidance
from lamo.prior import MotionPrior
from lamo.repeated_guidance import RepeatedCorrections, repeated_corrections


def _rows(scale: np.ndarray, detection: float = 1.0, seed: int = 0) -> list[dict]:
    """Per-clip rows whose physics parts are the baseline's times ``scale`` (per clip), with a little noise."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(123).uniform(0.5, 1.5, (len(scale), 3))
    noise = rng.normal(1.0, 0.02, base.shape)
    parts = base * scale[:, None] * noise
    return [{"seed": i % 2, "prompt_index": i, "ballistic_residual": a, "gravity_error": b, "jump_rate": c,
             "detection_rate": detection} for i, (a, b, c) in enumerate(parts)]


N = 64


def test_a_detectably_better_challenger_replaces_the_incumbent_and_a_tie_does_not():
    base = _rows(np.ones(N), seed=1)
    inc = _rows(np.full(N, 0.6), seed=2)
    better = _rows(np.full(N, 0.4), seed=3)  # 33 % below the incumbent on every clip
    same = _rows(np.full(N, 0.6), seed=4)  # the incumbent again, other noise
    r = choose_paired(base, inc, {"same": same, "better": better}, n_resamples=999)
    assert r["choice"] == "better"
    assert r["candidates"]["better"]["beats"] and not r["candidates"]["same"]["beats"]
    assert r["candidates"]["better"]["rel_ci"][1] < 0
    assert choose_paired(base, inc, {"same": same}, n_resamples=999)["choice"] is None


def test_a_challenger_that_loses_detection_is_not_eligible_however_good_its_physics():
    base = _rows(np.ones(N), seed=1)
    inc = _rows(np.full(N, 0.6), seed=2)
    blurry = _rows(np.full(N, 0.2), detection=0.95, seed=3)
    r = choose_paired(base, inc, {"blurry": blurry}, tolerance=0.01, n_resamples=999)
    assert r["choice"] is None and not r["candidates"]["blurry"]["eligible"]


def test_the_choice_stands_only_when_both_seed_sets_make_it():
    base = _rows(np.ones(N), seed=1)
    inc = _rows(np.full(N, 0.6), seed=2)
    # better than the incumbent on the even clips only: all clips together and the even group pick it, the odd one not
    scale = np.where(np.arange(N) % 2 == 0, 0.3, 0.6)
    half = _rows(scale, seed=3)
    groups = {"even": list(range(0, N, 2)), "odd": list(range(1, N, 2))}
    r = choose_stably(base, inc, {"half": half}, groups, n_resamples=999)
    assert r["groups"]["even"]["choice"] == "half" and r["groups"]["odd"]["choice"] is None
    assert r["choice"] is None and not r["stable"]
    better = _rows(np.full(N, 0.3), seed=5)
    r = choose_stably(base, inc, {"better": better}, groups, n_resamples=999)
    assert r["choice"] == "better" and r["stable"]
    with pytest.raises(ValueError, match="overlap"):
        choose_stably(base, inc, {"better": better}, {"a": [0, 1], "b": [1, 2]}, n_resamples=99)
    with pytest.raises(ValueError, match="same clips"):
        choose_paired(base, inc[:-1], {"better": better}, n_resamples=99)


def _prior() -> MotionPrior:
    torch.manual_seed(0)
    p = MotionPrior.from_preset("tiny", latent_channels=4, text_embed_dim=8, tau=1)
    with torch.no_grad():  # a non-trivial field, so the gradient changes between corrections
        for q in p.parameters():
            q.add_(0.05 * torch.randn_like(q))
    return p


def _call(g, o, x):
    return g(o, x, step_index=9, num_steps=10, prediction_type="v_prediction", alpha_bar=torch.tensor(0.9),
             cond=torch.zeros(2, 8))


def test_k_corrections_are_k_gradient_steps_of_lambda_over_k():
    prior = _prior()
    torch.manual_seed(1)
    o, x = torch.randn(2, 4, 4, 6, 6), torch.randn(2, 4, 4, 6, 6)
    one = _call(MotionPriorGuidance(prior, scale=2.0), o, x)
    same = _call(RepeatedCorrections(prior, scale=2.0, corrections=1), o, x)
    assert torch.equal(one.model_output, same.model_output)
    three = _call(RepeatedCorrections(prior, scale=2.0, corrections=3), o, x)
    manual, step = o, MotionPriorGuidance(prior, scale=2.0 / 3)
    for _ in range(3):
        manual = _call(step, manual, x).model_output
    torch.testing.assert_close(three.model_output, manual)
    assert not torch.allclose(three.model_output, one.model_output, atol=1e-6)  # the gradient was re-evaluated
    torch.testing.assert_close(three.loss, one.loss)  # L_b before the first correction
    with pytest.raises(ValueError, match="corrections"):
        RepeatedCorrections(prior, corrections=0)


def test_the_context_swaps_the_pipelines_guidance_and_restores_it():
    from lamo.pipelines import guided

    before = guided.MotionPriorGuidance
    with repeated_corrections(2):
        g = guided.MotionPriorGuidance(_prior(), scale=1.0)
        assert isinstance(g, RepeatedCorrections) and g.corrections == 2
    assert guided.MotionPriorGuidance is before
    with pytest.raises(ValueError, match="corrections"):
        with repeated_corrections(0):
            pass


def test_the_levers_script_prints_and_draws_a_finished_results_file(tmp_path, capsys):
    """``benchmarks/effect_levers.py --table`` on the committed run: one validation row per cell, the rule's choice
    and stability as the file records them, the test rows of both readouts, and the plot redrawn beside the file."""
    import json
    import shutil
    from pathlib import Path

    from bench_scripts import load_benchmark

    src = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "effect_levers_cpu.json"
    res = json.loads(src.read_text())
    copy = tmp_path / "levers.json"
    shutil.copy(src, copy)
    mod = load_benchmark("effect_levers")
    assert mod.main(["--table", str(copy)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and " pts " in line]
    assert len(rows) == len(res["validation"]) - 1  # every challenger, paired against the incumbent
    said = res["choice"]["choice"] or "the incumbent stays"
    assert f"Choice: **{said}** (stable across seed sets: {res['choice']['stable']})" in out
    for comp in res["test"]["comparisons"]:
        assert f"| {comp} |" in out
    assert (tmp_path / "levers.png").stat().st_size > 10_000
    # the prior summary reads the quality the file holds
    q = mod.quality_summary(res["priors"]["shipped"]["quality"])
    assert q["cosine"] == res["priors"]["shipped"]["quality"]["cosine"] and 0.5 < q["physics_win_rate"] <= 1
    assert mod.best_cell_of_prior(res, "shipped") in ("incumbent", "shipped λ=10")


def test_the_levers_script_runs_end_to_end_on_a_tiny_backbone(tmp_path, capsys):
    """Priors trained, cells sampled on two seed sets, the rule applied, the test read once — and a second call
    resumes from the cache without sampling again."""
    import json
    from dataclasses import replace

    from bench_scripts import TINY_WORLD, load_benchmark, tiny_world_backbone
    from lamo.demo.run import DemoConfig, _load_pipeline

    backbone = tiny_world_backbone(tmp_path / "bb")
    mod = load_benchmark("effect_levers")
    cfg = replace(DemoConfig(backbone=str(backbone), world_overrides=TINY_WORLD), prior_preset="tiny")
    pipe, _, preset, world = _load_pipeline(cfg)
    spec = dict(clips=8, steps=3, preset="tiny", options=dict(tau=1), what="the incumbent")
    mod.ensure_prior("incumbent", spec, cfg, pipe, preset, world, tmp_path / "inc", {})
    out, results = tmp_path / "run", tmp_path / "r.json"
    args = ["--backbone", str(backbone), "--prior", str(tmp_path / "inc" / "prior-incumbent"), "--world-overrides",
            json.dumps(TINY_WORLD), "--steps", "3", "--prior-scale", "0.002", "--out", str(out), "--results", str(results),
            "--val-prompts", "3", "--test-prompts", "3", "--quality-clips", "4", "--n-resamples", "99", "--chunk", "12",
            "--cells", "shipped λ=10", "shipped λ=3 K=3", "long512 λ=3"]
    assert mod.main(args) == 0
    res = json.loads(results.read_text())
    assert list(res["per_clip_validation"]) == ["baseline", "incumbent", "shipped λ=10", "shipped λ=3 K=3", "long512 λ=3"]
    for rows in res["per_clip_validation"].values():  # 3 prompts × seeds 100–103, the same clips in every cell
        assert [(r["seed"], r["prompt_index"]) for r in rows] == [(s, i) for s in (100, 101, 102, 103) for i in range(3)]
    assert res["cells"]["shipped λ=3 K=3"]["corrections"] == 3
    assert (out / "prior-long512" / "training_stats.json").is_file() and set(res["priors"]) == {"shipped", "long512"}
    assert res["priors"]["long512"]["training"]["clips"] == 4  # 512 × 0.002, at least 4
    ch = res["choice"]
    assert set(ch["groups"]) == {"seeds 100, 101", "seeds 102, 103"}
    assert set(ch["pooled"]["candidates"]) == {"shipped λ=10", "shipped λ=3 K=3", "long512 λ=3"}
    assert ch["choice"] is None or ch["stable"]
    tested = ["baseline", "incumbent"] + ([res["best_on_validation"]] if res["best_on_validation"] else [])
    assert res["tested"] == tested and set(res["per_clip_test"]) == {*tested, "ground truth"}
    assert all(len(res["per_clip_test"][k]) == 6 for k in tested)
    assert "b_ballistic_residual" in res["per_clip_test"]["baseline"][0]  # both readouts on the test
    assert (tmp_path / "r.png").is_file() and "Choice: **" in capsys.readouterr().out
    before = {p: p.stat().st_mtime for p in (out / "cells").iterdir()}
    assert mod.main(args) == 0
    assert {p: p.stat().st_mtime for p in (out / "cells").iterdir()} == before  # resumed: nothing sampled again


def test_other_validation_seeds_make_the_two_seed_sets_and_an_odd_count_is_refused(capsys):
    """``--val-seeds``: a confirmation on fresh seeds splits them in two disjoint halves; an odd or repeated list
    cannot make two disjoint sets and is refused before anything loads."""
    import pytest

    from bench_scripts import load_benchmark

    mod = load_benchmark("effect_levers")
    assert mod.seed_sets((200, 201, 202, 203)) == {"seeds 200, 201": (200, 201), "seeds 202, 203": (202, 203)}
    assert mod.seed_sets(mod.VAL_SEEDS) == {"seeds 100, 101": (100, 101), "seeds 102, 103": (102, 103)}
    for bad in (["200", "201", "202"], ["200", "200"]):
        with pytest.raises(SystemExit) as e:
            mod.main(["--val-seeds", *bad])
        assert e.value.code == 2 and "--val-seeds" in capsys.readouterr().err


def test_seed_set_stability_chooses_again_on_each_half_of_the_validation_seeds():
    """The full benchmark's stability check: a candidate that wins on both seeds is stable; one that wins on one
    seed only (its clips of the other seed are worse) is the pooled choice but not a stable one."""
    from dataclasses import replace

    from lamo.demo.config import DemoConfig
    from lamo.demo.selection import seed_set_stability

    cfg = replace(DemoConfig(), val_seeds=(100, 101), detection_tolerance=0.01)

    def rows(scale_by_seed):
        out = []
        for seed in (100, 101):
            for i, r in enumerate(_rows(np.full(N // 2, scale_by_seed[seed]), seed=seed + 7)):
                out.append({**r, "seed": seed, "prompt_index": i})
        return out

    base = rows({100: 1.0, 101: 1.0})
    steady = {("p", 1.0, 0.5): rows({100: 0.6, 101: 0.6}), ("p", 3.0, 0.5): rows({100: 0.8, 101: 0.8})}
    st = seed_set_stability(base, steady, cfg, ("p", 1.0, 0.5))
    assert st["stable"] is True and set(st["groups"]) == {"seeds 100", "seeds 101"}
    assert all(g["lambda"] == 1.0 for g in st["groups"].values())
    # λ 3 wins on seed 100's clips, λ 1 on seed 101's (and pooled): not stable
    flip = {("p", 1.0, 0.5): rows({100: 0.7, 101: 0.3}), ("p", 3.0, 0.5): rows({100: 0.4, 101: 0.9})}
    st = seed_set_stability(base, flip, cfg, ("p", 1.0, 0.5))
    assert st["stable"] is False and st["groups"]["seeds 100"]["lambda"] == 3.0 and "not stable" in st["why"]
    # the two choices compared paired on all clips: λ 3 is worse on all clips together (0.65 against 0.5 of the
    # baseline's composite), by an interval that holds the difference of the true scales
    c = st["contenders"]["p λ=3 ρ=0.5"]
    assert c["n"] == N and c["diff_ci"][0] < c["diff"] < c["diff_ci"][1] and c["diff_ci"][0] < 0.15 < c["diff_ci"][1]
    assert c["verdict"] == "the choice is detectably better" and c["said"] in st["why"]
    # two candidates of the same true scale on all clips: validation cannot tell them apart
    tie = {("p", 1.0, 0.5): rows({100: 0.7, 101: 0.3}), ("p", 3.0, 0.5): rows({100: 0.3, 101: 0.7})}
    st = seed_set_stability(base, tie, cfg, ("p", 1.0, 0.5))
    assert st["stable"] is False and st["contenders"]["p λ=3 ρ=0.5"]["verdict"] == "validation cannot tell them apart"
    assert st["contenders"]["p λ=3 ρ=0.5"]["diff_ci"][0] < 0 < st["contenders"]["p λ=3 ρ=0.5"]["diff_ci"][1]
    assert seed_set_stability(base, flip, replace(cfg, val_seeds=(100,)), ("p", 1.0, 0.5))["stable"] is None
