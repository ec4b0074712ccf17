"""`lamo demo` end to end on a tiny backbone trained here for a few steps (16 px, 8 frames)."""
import json

import pytest

from lamo.cli import main
from lamo.demo.run import DemoConfig, run_demo, select_lambda, verdict
from lamo.demo.train_backbone import BackboneTrainConfig, train_backbone
from lamo.physics.dataset import write_dataset
from lamo.physics.world import get_world_config

WORLD = {"size": 16, "frames": 8, "radius": (1.5, 2.0), "gravity": 0.4}


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    write_dataset(root / "data", 24, get_world_config("tiny", **WORLD), seed=1, progress=False)
    base = train_backbone(BackboneTrainConfig(data=str(root / "data"), out=str(root / "run"), preset="test",
                                              steps=4, batch_size=4, save_every=4))
    tuned = {}
    for name, weight in (("fine-tuned (no drift loss)", 0.0), ("MDL (drift-loss fine-tune)", 0.4)):
        run = train_backbone(BackboneTrainConfig(data=str(root / "data"), out=str(root / f"ft{weight}"), preset="test",
                                                 steps=2, batch_size=4, save_every=2, init_from=str(base),
                                                 drift_weight=weight, train_text_encoder=False))
        tuned[name] = str(run / "transformer")
    return base, tuned


def test_demo_writes_a_report_with_every_number(tiny_backbone, tmp_path):
    base, tuned = tiny_backbone
    cfg = DemoConfig(out=str(tmp_path / "report"), backbone=str(base), finetunes=tuned, world_overrides=WORLD,
                     prior_clips=16, prior_preset="tiny", prior_steps=3, prior_batch=4, test_prompts=2,
                     test_seeds=(0, 1), val_prompts=2, sweep=(0.1, 1.0), flowmo_sweep=(1.0,), steps=3)
    assert run_demo(cfg=cfg) == 0
    res = json.loads((tmp_path / "report" / "results.json").read_text())
    lam = res["lambda"]
    assert set(res["summary"]) == {"ground truth", "baseline", f"MPG λ={lam:g}", f"direct latent edit λ={lam:g}",
                                   "fine-tuned (no drift loss)", "MDL (drift-loss fine-tune)", f"MDL + MPG λ={lam:g}",
                                   "FlowMo-style peer η=1"}
    assert set(res["paired"]) == {f"MPG λ={lam:g} vs baseline", "MDL (drift-loss fine-tune) vs fine-tuned (no drift loss)",
                                  f"MDL + MPG λ={lam:g} vs baseline", "FlowMo-style peer η=1 vs baseline"}
    assert set(res["sampling_s"]) == set(res["summary"]) - {"ground truth"}
    # the MDL variant really samples another transformer: its clips differ from the baseline's
    assert res["per_clip"]["MDL (drift-loss fine-tune)"] != res["per_clip"]["baseline"]
    assert len(res["per_clip"]["baseline"]) == 4  # 2 prompts × 2 seeds
    assert res["summary"]["ground truth"]["detection_rate"]["mean"] == 1.0
    assert res["summary"]["baseline"]["guide_loss"]["n"] == 4  # L_guide measured for unguided variants too
    assert 0 <= res["prior"]["val_cosine"] <= 1 and res["prior"]["val_cosine_before"] == 0.0  # zero-init prior
    page = (tmp_path / "report" / "index.html").read_text()
    for img in ("media/prompt_0.gif", "media/sweep.png", "media/metric_jump_rate.png"):
        assert (tmp_path / "report" / img).is_file() and img in page
    assert "Did it help? MPG" in page and "MDL (drift-loss fine-tune) vs fine-tuned" in page


def test_demo_refuses_a_missing_backbone_or_another_world(tmp_path, tiny_backbone, capsys):
    assert main(["demo", "--backbone", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "demo backbone is missing" in capsys.readouterr().err
    with pytest.raises(ValueError, match="pick the world it was trained on"):
        run_demo(cfg=DemoConfig(out=str(tmp_path / "r"), backbone=str(tiny_backbone[0])))


def test_lambda_selection_and_verdicts():
    def s(b, j, n=4, undefined=0):
        return {"ballistic_residual": {"mean": b, "n": n, "n_undefined": undefined}, "jump_rate": {"mean": j, "n": 4, "n_undefined": 0}}

    sweep = {0.0: s(0.5, 0.3), 0.1: s(0.4, 0.5), 1.0: s(0.45, 0.1)}
    assert select_lambda(sweep, (0.1, 1.0)) == (0.1, "ballistic_residual")
    sweep[1.0] = s(float("nan"), 0.1, n=0, undefined=4)  # undefined for one λ: fall back to jump rate
    assert select_lambda(sweep, (0.1, 1.0)) == (1.0, "jump_rate")
    p = {"n": 6, "diff": -0.2, "seed_diffs": [-0.1, -0.3]}
    assert verdict(p, "lower") == "improved" and verdict(p, "higher") == "worsened"
    assert verdict({**p, "seed_diffs": [-0.5, 0.1]}, "lower") == "no clear change"
    assert verdict({"n": 0, "diff": float("nan"), "seed_diffs": []}, "lower") == "undefined"
    assert verdict({"n": 1, "diff": 0.3, "seed_diffs": [0.3]}, "lower") == "too few clips to tell"
