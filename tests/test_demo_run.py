"""`lamo demo` end to end on a tiny backbone trained here for a few steps (16 px, 8 frames)."""
import json

import pytest

from lamo.cli import main
from dataclasses import replace

from lamo.demo.run import HEADLINE, MDL, PLAIN_FT, DemoConfig, choose, run_demo
from lamo.demo.stats import READOUT_B, ROBUST_B, reanalyse
from lamo.demo.selection import write_sampling_settings
from lamo.effect import COMPOSITE, compare
from lamo.demo.train_backbone import BackboneTrainConfig, train_backbone
from lamo.physics.dataset import write_dataset
from lamo.physics.world import get_world_config

from bench_scripts import TINY_WORLD as WORLD, load_benchmark


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    write_dataset(root / "data", 24, get_world_config("tiny", **WORLD), seed=1, progress=False)
    base = train_backbone(BackboneTrainConfig(data=str(root / "data"), out=str(root / "run"), preset="test",
                                              steps=4, batch_size=4, save_every=4))
    tuned = {}
    for name, weight in ((PLAIN_FT, 0.0), (MDL, 0.4)):
        run = train_backbone(BackboneTrainConfig(data=str(root / "data"), out=str(root / f"ft{weight}"), preset="test",
                                                 steps=2, batch_size=4, save_every=2, init_from=str(base),
                                                 drift_weight=weight, train_text_encoder=False))
        tuned[name] = str(run / "transformer")
    return base, tuned


def test_full_benchmark_trains_priors_chooses_on_validation_and_reports_effects(tiny_backbone, tmp_path, monkeypatch):
    base, tuned = tiny_backbone
    cfg = DemoConfig(out=str(tmp_path / "full"), backbone=str(base), finetunes=tuned, world_overrides=WORLD,
                     prior="", selection="", prior_taus=(2, 1), prior_clips=16, prior_preset="tiny", prior_steps=3,
                     prior_batch=4, val_prompts=4, val_seeds=(100, 101), sweep=(0.1, 1.0), flowmo_sweep=(1e-2,),
                     test_prompts=5, test_seeds=(0, 1), ablations=True, steps=3, chunk=4, gifs=2, n_resamples=199)
    assert run_demo(cfg=cfg) == 0
    out = tmp_path / "full"
    res = json.loads((out / "results.json").read_text())
    sel = res["selection"]
    lam, other = res["lambda"], {"τ=1": "τ=2", "τ=2": "τ=1"}[sel["prior"]]
    assert lam in (0.1, 1.0) and set(sel["validation"]) == {"τ=1", "τ=2"}  # both priors swept on validation
    assert sel["source"] == "chosen in this run" and (out / "selection.json").is_file()
    # each validation seed alone chose again: the record says whether both agree with the choice on all clips
    st = sel["stability"]
    assert set(st["groups"]) == {"seeds 100", "seeds 101"} and isinstance(st["stable"], bool)
    assert st["chosen"] == {"prior": sel["prior"], "lambda": lam, "window": sel["window"]}
    assert st["stable"] == all({k: g[k] for k in ("prior", "lambda", "window")} == st["chosen"] for g in st["groups"].values())
    assert st["why"] in (out / "index.html").read_text()
    peer = "FlowMo peer (release) η=0.01"
    expected = {"baseline", f"MPG λ={lam:g}", f"MPG {other} prior λ={sel['lambda_per_prior'][other]:g}",
                f"direct latent edit λ={lam:g}", peer, PLAIN_FT, MDL, f"MDL + MPG λ={lam:g}"}
    assert set(res["sampling_s"]) == expected and set(res["per_clip"]) == expected | {"ground truth"}
    assert f"MPG λ={lam:g} vs baseline" in res["effects"] and f"{MDL} vs {PLAIN_FT}" in res["effects"]
    assert f"{MDL} vs baseline" in res["effects"]  # MDL alone against the backbone too
    assert f"MDL + MPG λ={lam:g} vs MPG λ={lam:g}" in res["effects"]  # what MDL adds to MPG
    assert set(res["effects"][f"MPG λ={lam:g} vs baseline"]) == set(HEADLINE)
    assert len(res["per_clip"]["baseline"]) == 10  # 5 prompts × 2 seeds, each row keyed
    assert {(r["seed"], r["prompt_index"]) for r in res["per_clip"]["baseline"]} == {(s, i) for s in (0, 1) for i in range(5)}
    assert res["per_clip"][MDL] != res["per_clip"]["baseline"]  # the MDL variant really samples another transformer
    assert all("guide_loss" in r for r in res["per_clip"][f"MPG λ={lam:g}"])
    for label in ("τ=1", "τ=2"):
        assert 0 <= res["prior"][label]["val_cosine"] <= 1 and res["prior"][label]["val_cosine_before"] == 0.0
        assert (out / f"prior-tau{label[-1]}" / "training_stats.json").is_file()
    page = (out / "index.html").read_text()
    for img in ("media/prompt_0.gif", "media/forest.png", "media/sweep.png"):
        assert (out / img).is_file() and img in page
    assert "Headline" in page and f"{MDL} vs {PLAIN_FT}" in page
    # readout B beside readout A: the same paired machinery for every comparison, and the robust summaries
    assert set(res["readout_b"]["effects"]) == set(res["effects"]) == set(res["readout_b"]["robust"])
    for key, fam in res["readout_b"]["effects"].items():
        assert set(fam) == set(READOUT_B) and set(res["readout_b"]["robust"][key]) == set(ROBUST_B)
        assert all({"rel", "rel_ci", "p_holm", "verdict"} <= set(e) and len(e["rel_ci"]) == 2 for e in fam.values())
    assert all("b_ballistic_residual" in r and "b_size_error" in r for r in res["per_clip"]["baseline"])
    assert all(r["b_area_ratio"] == 1.0 for r in res["per_clip"]["ground truth"])
    assert "(readout A" in res["headline_both"] and "b_ballistic_residual" in res["summary"]["baseline"]
    assert "Second readout" in page and "B: ballistic_residual" in page
    again = reanalyse(out / "results.json", tmp_path / "again" / "results.json")  # from the rows alone, the same
    assert json.loads(json.dumps(again["readout_b"], default=float)) == res["readout_b"]

    # the demo path: a trained prior and the selection made with it, nothing chosen on the test
    tau = sel["prior"][-1]
    demo = replace(cfg, out=str(tmp_path / "demo"), prior=str(out / f"prior-tau{tau}"), selection=str(out / "selection.json"),
                   ablations=False)
    # one progress bar at a time (not an outer bar per variant with an inner one per clip, interleaved)
    import lamo.demo.run as run_module
    import lamo.demo.variants as variants_module
    from tqdm.auto import tqdm as real_tqdm

    bars = {"open": 0, "most": 0, "made": 0}

    class CountingBar(real_tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._counted = True
            bars["open"] += 1
            bars["made"] += 1
            bars["most"] = max(bars["most"], bars["open"])

        def close(self):
            if getattr(self, "_counted", False):
                self._counted = False
                bars["open"] -= 1
            super().close()

    monkeypatch.setattr(run_module, "tqdm", CountingBar)
    monkeypatch.setattr(variants_module, "tqdm", CountingBar)
    assert run_demo(cfg=demo) == 0
    assert bars["made"] >= 2 and bars["most"] == 1, bars
    monkeypatch.undo()
    res2 = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert res2["lambda"] == lam and str(out / "selection.json") in res2["selection"]["source"]
    if write_sampling_settings is not None:  # the chosen prior carries the settings it was validated at
        record = json.loads((out / f"prior-tau{sel['prior'][-1]}" / "sampling.json").read_text())
        assert record["settings"] == {"motion_guidance_scale": lam, "motion_guidance_window": res["window"],
                                      "num_inference_steps": 3, "guidance_scale": cfg.guidance_scale}
        assert record["source"].startswith("lamo bench effect: ") and "4 validation prompts × 2 seeds" in record["source"]
        assert "sampling.json" in res2["selection"]["source"]  # and the demo path reads them
    assert set(res2["sampling_s"]) == expected - {f"MPG {other} prior λ={sel['lambda_per_prior'][other]:g}",
                                                  f"direct latent edit λ={lam:g}"}
    # same prompts, seeds and knobs: the baseline clips are the full run's, clip for clip
    assert res2["per_clip"]["baseline"] == res["per_clip"]["baseline"]
    # a selection is refused for a prior it was not made with, and so is a folder of someone else's files
    wrong = replace(demo, out=str(tmp_path / "wrong"), prior=str(out / f"prior-tau{other[-1]}"))
    with pytest.raises(ValueError, match="made for another prior"):
        run_demo(cfg=wrong)
    # ... and for other sampler settings than the ones λ was chosen under
    with pytest.raises(ValueError, match="other sampler settings"):
        run_demo(cfg=replace(demo, out=str(tmp_path / "cfg"), guidance_scale=demo.guidance_scale + 1))
    assert not (tmp_path / "cfg" / "results.json").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an earlier LaMo report"):
        run_demo(cfg=replace(demo, out=str(tmp_path / "busy")))
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_demo_refuses_a_missing_backbone_or_another_world(tmp_path, tiny_backbone, capsys):
    assert main(["demo", "--backbone", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "demo backbone is missing" in capsys.readouterr().err
    with pytest.raises(ValueError, match="pick the world it was trained on"):
        run_demo(cfg=DemoConfig(out=str(tmp_path / "r"), backbone=str(tiny_backbone[0]), prior="", selection=""))


def test_demo_cli_speaks_the_one_vocabulary_and_refuses_a_file_as_out(tmp_path, capsys):
    import argparse

    from lamo.commands.demo import add_effect_args

    (tmp_path / "report.html").write_text("x")
    assert main(["demo", "--out", str(tmp_path / "report.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a file" in err and "Traceback" not in err
    p = argparse.ArgumentParser()
    add_effect_args(p, "demo")
    text = p.format_help()
    assert "--guidance-scale" in text and "--cfg-scale" not in text
    with pytest.raises(SystemExit):
        p.parse_args(["--cfg-scale", "2"])
    capsys.readouterr()
    for action in p._actions:  # every option's help shows its default
        if action.option_strings and action.dest != "help":
            assert "(default:" in p._get_formatter()._expand_help(action) or "default:" in (action.help or ""), \
                action.option_strings


def test_choose_keeps_fidelity_and_prefers_the_lowest_composite():
    from types import SimpleNamespace as E

    def eff(rel, det):
        return {COMPOSITE: E(rel=rel), "detection_rate": E(diff=det)}

    cands = {0.3: eff(-0.1, 0.0), 1.0: eff(-0.3, -0.005), 3.0: eff(-0.5, -0.05)}
    assert choose(cands, 0.01)[0] == 1.0  # λ = 3 is better on physics but loses 5 points of detection
    assert choose(cands, 0.1)[0] == 3.0
    assert choose({1.0: eff(-0.1, -0.5)}, 0.01)[0] is None


def test_aa_on_the_shipped_backbone_finds_no_change():
    """The machinery on real samples: the baseline against itself under another label, and against
    itself with other seeds — every verdict must be "no detectable change"."""
    from lamo.demo.run import _load_pipeline, _prompts, _sample, _score

    cfg = DemoConfig(steps=6, chunk=64)
    pipe, _, preset, world = _load_pipeline(cfg)
    prompts = [c.caption for c in _prompts(world, seed=3, n=32)]
    a = _score(_sample(pipe, prompts, (0, 1), cfg, preset, None, 0.0)[0], world, prompts, (0, 1))
    a2 = _score(_sample(pipe, prompts, (0, 1), cfg, preset, None, 0.0)[0], world, prompts, (0, 1))
    b = _score(_sample(pipe, prompts, (2, 3), cfg, preset, None, 0.0)[0], world, prompts, (2, 3))
    same = compare(a, a2, HEADLINE, n_resamples=999)
    assert all(e.verdict == "no detectable change" and e.diff == 0 for e in same.values() if e.n)
    other = compare(a, b, HEADLINE, n_resamples=999)
    assert {e.verdict for e in other.values()} <= {"no detectable change", "too few clips"}, \
        [e.sentence() for e in other.values()]
    assert other[COMPOSITE].n >= 48 and other[COMPOSITE].verdict == "no detectable change"


def test_bench_effect_cli_checks_its_numbers_and_presets(capsys):
    assert main(["bench", "effect", "--test-prompts", "0", "--out", "unused"]) == 2
    assert "--test-prompts must be ≥ 1" in capsys.readouterr().err
    assert main(["bench", "effect", "--guidance-scale", "0.5", "--out", "unused"]) == 2
    assert "--guidance-scale must be a finite number ≥ 1" in capsys.readouterr().err
    assert main(["bench", "effect", "--windows", "0.8", "1.5", "--out", "unused"]) == 2
    assert "--windows must be a finite number in (0, 1]" in capsys.readouterr().err
    from lamo.commands.demo import add_effect_args, effect_config
    import argparse

    for preset, n_test, prior in (("full", 128, ""), ("demo", 48, str(DemoConfig().prior))):
        p = argparse.ArgumentParser()
        add_effect_args(p, preset)
        cfg = effect_config(p.parse_args([]))
        assert (cfg.preset, cfg.test_prompts * len(cfg.test_seeds), cfg.prior) == (preset, 2 * n_test, prior)
        assert cfg.guidance_scale == DemoConfig().guidance_scale
        assert effect_config(p.parse_args(["--guidance-scale", "1.5"])).guidance_scale == 1.5


def test_graded_backbones_runs_each_checkpoint_with_one_prior(tiny_backbone, tmp_path):
    import torch

    from lamo.prior import MotionPrior

    graded = load_benchmark("graded_backbones")
    base, _ = tiny_backbone
    torch.manual_seed(0)
    prior = MotionPrior.from_preset("tiny", latent_channels=8, text_embed_dim=16, backbone="cogvideox-demo", tau=1)
    prior.save_pretrained(tmp_path / "prior")
    small = dict(world_overrides=WORLD, val_prompts=3, val_seeds=(100,), sweep=(0.1, 1.0), test_prompts=4,
                 test_seeds=(0,), steps=2, chunk=4, gifs=1, n_resamples=99)
    rows = graded.graded([("a", str(base)), ("b", str(base))], str(tmp_path / "prior"), tmp_path / "g", **small)
    assert [r["checkpoint"] for r in rows] == ["a", "b"] and all(r["n"] == 4 for r in rows)
    assert rows[0]["lambda"] in (0.1, 1.0) and rows[0]["effect"]["physics_error"]["n"] <= 4
    assert rows[0]["baseline"] == rows[1]["baseline"]  # same backbone, prompts and noise: the same clips
    assert rows[0]["ground_truth"]["permanence_error"]["mean"] == 0
    res = json.loads((tmp_path / "g" / "a" / "results.json").read_text())
    again = graded.graded([("a", str(tmp_path / "g" / "a" / "results.json"))], str(tmp_path / "prior"), tmp_path / "h")
    assert again[0] == rows[0] and res["selection"]["source"] == "chosen in this run"
    assert (tmp_path / "g" / "graded.png").is_file() and "| a (" in graded.table(rows)


def test_sampler_settings_scores_each_setting_on_validation_clips(tiny_backbone, tmp_path):
    ss = load_benchmark("sampler_settings")
    assert ss.parse_setting("25x1.5") == (25, 1.5)
    with pytest.raises(SystemExit, match="STEPSxCFG"):
        ss.parse_setting("25")
    with pytest.raises(SystemExit, match="≥ 1"):
        ss.parse_setting("25x0.5")
    base, _ = tiny_backbone
    res = ss.run(str(base), [(2, 4.0), (2, 1.0), (3, 4.0)], n_prompts=3, seeds=(100,), world_overrides=WORLD, chunk=4)
    names = [s["name"] for s in res["settings"]]
    assert names == ["2 steps, CFG 4", "2 steps, CFG 1", "3 steps, CFG 4"] and res["reference"] == names[0]
    assert all(len(s["rows"]) == 3 and s["summary"]["detection_rate"]["n"] <= 3 for s in res["settings"])
    ref = res["settings"][0]["vs_reference"]["permanence_error"]
    defined = res["settings"][0]["summary"]["permanence_error"]["n"]
    assert ref["diff"] == 0 if defined >= 2 else ref["verdict"] == "too few clips"  # itself: the same clips
    assert res["settings"][1]["rows"] != res["settings"][0]["rows"]  # another guidance scale, other clips
    assert res["chosen"] in names and res["chosen"] == ss.choose(res)
    ss.plot(res, tmp_path / "s.png")
    assert (tmp_path / "s.png").is_file() and "**(chosen)**" in ss.table(res)

    def setting(name, det, perm, cv):
        return {"name": name, "summary": {"detection_rate": {"mean": det}, "permanence_error": {"mean": perm},
                                          "radius_cv": {"mean": cv}}}
    tie = {"reference": "a", "settings": [setting("a", 0.99, 0.06, 0.03), setting("b", 0.99, 0.05, 0.026),
                                          setting("c", 0.995, 0.05, 0.022), setting("d", 0.97, 0.01, 0.01)]}
    assert ss.choose(tie) == "c"  # b and c tie on permanence: the lower radius CV, not the list order; d loses detection
    # appearance per kind of scene: the kinds, and each kind's share of a setting's permanence error
    assert ss.scene_kind("a blue ball and a white ball are dropped and bounce on the floor") == "two balls"
    assert ss.scene_kind("an orange ball and an olive ball collide") == "two balls"
    assert ss.scene_kind("a magenta ball is dropped and bounces on the floor") == "one ball, dropped"
    assert ss.scene_kind("a cyan ball flies across from right to left, bounces on the floor and leaves the scene") \
        == "one ball, leaves the frame"
    assert ss.scene_kind("an orange ball rolls to the left") == "one ball, other"
    fake = {"settings": [{"name": "s", "rows": [
        {"caption": "a red ball rolls to the left", "permanence_error": 0.1, "ghost_rate": 0.1, "radius_cv": 0.02,
         "detection_rate": 1.0},
        {"caption": "a red ball and a blue ball collide", "permanence_error": 0.3, "ghost_rate": 0.2,
         "radius_cv": None, "detection_rate": 0.9}]}]}
    lines = ss.by_scene(fake).splitlines()
    assert lines[2] == "| s | one ball, other | 1 | 0.100 | 0.100 | 0.020 | 1.000 | 0.25 |"
    assert lines[3] == "| s | two balls | 1 | 0.300 | 0.200 | – | 0.900 | 0.75 |"
    # an effect benchmark's results file: one "setting" per variant, the ground truth left out
    effect = {"per_clip": {"baseline": fake["settings"][0]["rows"], "ground truth": fake["settings"][0]["rows"]}}
    assert ss.by_scene(effect).splitlines()[2:] == [x.replace("| s |", "| baseline |") for x in lines[2:]]


def test_the_guidance_window_is_chosen_with_lambda_on_validation_and_used_on_the_test(tiny_backbone, tmp_path,
                                                                                       monkeypatch):
    import lamo.demo.run as run
    import lamo.demo.selection as selection

    base, _ = tiny_backbone
    windows_used = []
    real = run._sample

    descs = []

    def spy(*args, window=None, **kwargs):
        windows_used.append((args[6], window))  # (λ, ρ) of every sampling call
        descs.append(kwargs.get("desc"))
        return real(*args, window=window, **kwargs)

    monkeypatch.setattr(run, "_sample", spy)  # the test's sampling
    monkeypatch.setattr(selection, "_sample", spy)  # the validation's
    cfg = DemoConfig(out=str(tmp_path / "w"), backbone=str(base), finetunes={}, world_overrides=WORLD, prior="",
                     selection="", prior_taus=(1,), prior_clips=16, prior_preset="tiny", prior_steps=3, prior_batch=4,
                     val_prompts=3, val_seeds=(100,), sweep=(0.1, 1.0), windows=(0.8, 0.5), flowmo_sweep=(),
                     window=0.9,  # the fallback ρ, swept by no one: the test must use the chosen one
                     test_prompts=3, test_seeds=(0,), steps=3, chunk=4, gifs=1, n_resamples=99)
    assert run_demo(cfg=cfg) == 0
    res = json.loads((tmp_path / "w" / "results.json").read_text())
    sel = res["selection"]
    assert set(sel["validation"]) == {"τ=1 ρ=0.8", "τ=1 ρ=0.5"} and sel["windows"] == [0.8, 0.5]
    assert sel["window"] in (0.8, 0.5) and res["window"] == sel["window"] and sel["window_per_prior"] == {"τ=1": sel["window"]}
    # validation: the baseline, then every (ρ, λ) pair once; the test: the baseline and MPG at the chosen pair
    assert sorted(windows_used[1:5]) == sorted([(0.1, 0.8), (1.0, 0.8), (0.1, 0.5), (1.0, 0.5)])
    assert windows_used[-1] == (res["lambda"], sel["window"])
    # the wall-time table is not biased by warm-up: an untimed call precedes the first timed variant
    assert descs[descs.index("baseline") - 1] == "warm-up"
    mpg = [k for k in res["per_clip"] if k.startswith("MPG")]
    assert mpg == [f"MPG λ={res['lambda']:g} ρ={sel['window']:g}"]  # ρ ≠ the run's fallback: named


def test_the_report_names_the_shipped_mdl_recipe(tmp_path):
    """The report says which drift loss made the MDL fine-tune, from the record beside its weights."""
    from lamo.demo.run import DEFAULT_FINETUNES, _drift_recipe

    assert _drift_recipe(DEFAULT_FINETUNES[MDL]) == " (dense_batch_normalized, τ = 1, λ_drift = 45)"
    assert _drift_recipe(DEFAULT_FINETUNES[PLAIN_FT]).endswith("λ_drift = 0)")
    assert _drift_recipe(tmp_path) == ""  # a user's transformer folder without a record


def test_graded_steps_count_every_stage_a_backbone_was_continued_from(tmp_path):
    graded = load_benchmark("graded_backbones")
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, record in ((first, {"step": 6000, "train": {"init_from": ""}}),
                           (second, {"step": 6000, "train": {"init_from": str(first)}})):
        folder.mkdir()
        (folder / "lamo_demo.json").write_text(json.dumps(record))
    assert graded.steps_in_all({"step": 4000, "train": {"init_from": str(second)}}) == 16000
    assert graded.steps_in_all({"step": 2000, "train": {"init_from": str(tmp_path / "gone")}}) == 2000
    assert graded.steps_in_all({"step": 16000, "continued": [{}], "train": {"init_from": ""}}) == 16000


def test_graded_backbones_can_train_each_checkpoint_its_own_prior(tiny_backbone, tmp_path):
    graded = load_benchmark("graded_backbones")
    base, _ = tiny_backbone
    small = dict(world_overrides=WORLD, val_prompts=3, val_seeds=(100,), sweep=(1.0,), test_prompts=4,
                 test_seeds=(0,), steps=2, chunk=4, gifs=1, n_resamples=99, prior_taus=(1,), prior_clips=8,
                 prior_steps=2, prior_batch=4, prior_preset="tiny")
    rows = graded.graded([("a", str(base))], "", tmp_path / "g", **small)
    assert (tmp_path / "g" / "a" / "prior-tau1" / "config.json").is_file()  # trained on this checkpoint
    assert rows[0]["prior"] == "τ=1" and not (tmp_path / "g" / "a" / "prior-tau2").exists()
    assert json.loads((tmp_path / "g" / "graded.json").read_text())["prior"] == "own τ=1 prior per checkpoint"
