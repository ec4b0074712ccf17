"""benchmarks/prior_recipes.py end to end on a tiny backbone trained here for a few steps (16 px, 8 frames)."""
import json

import pytest

from bench_scripts import TINY_WORLD as WORLD, load_benchmark, tiny_world_backbone


def _script():
    return load_benchmark("prior_recipes")


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    return tiny_world_backbone(tmp_path_factory.mktemp("recipes"))


def _args(backbone, tmp_path, *more):
    return ["--backbone", str(backbone), "--out", str(tmp_path / "priors"), "--results", str(tmp_path / "r.json"),
            "--world-overrides", json.dumps(WORLD), "--prior-clips", "16", "--prior-steps", "3", "--prior-batch", "4",
            "--val-prompts", "4", "--test-prompts", "5", "--steps", "3", "--n-resamples", "199", "--sweep", "0.1", "1",
            *more]


def test_recipes_are_trained_chosen_on_validation_and_tested(backbone, tmp_path, capsys):
    mod = _script()
    assert mod.main(_args(backbone, tmp_path)) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    assert list(res["recipes"]) == ["A", "B", "C", "D", "E0", "E1"] and res["dropped"] == []
    winner = res["recipes"][res["winner_a_to_c"]]["options"]
    assert res["recipes"]["D"]["options"] == {**winner, "tau": 2}  # τ = 2 with the winner's input noise
    assert res["recipes"]["E1"]["options"] == {**res["recipes"]["E0"]["options"], "second_order": True}
    assert res["recipes"]["C"]["options"]["noise_aug"] == "diffusion"  # trained with the backbone's noise table
    for k in res["recipes"]:
        cfg = json.loads((tmp_path / "priors" / f"prior-{k}" / "config.json").read_text())
        assert {o: cfg[o] for o in res["recipes"][k]["options"]} == res["recipes"][k]["options"]
        assert 0 <= res["prior"][k]["val_cosine"] <= 1 and set(res["validation"][k]) == {"0.1", "1.0"}
        assert res["lambda"][k] in (0.1, 1.0)
    # every validation clip kept: baseline + recipes × λ, 4 prompts × 2 seeds each, the same keys
    val = res["per_clip_validation"]
    assert len(val) == 1 + 6 * 2 and all(len(rows) == 8 for rows in val.values())
    assert {(r["seed"], r["prompt_index"]) for r in val["baseline"]} == {(s, i) for s in (100, 101) for i in range(4)}
    # the test: baseline, recipe A and the best at their λ, paired; the ground truth for sharpness_error
    best, lam = res["best"], res["lambda"]
    names = {f"A λ={lam['A']:g}", f"{best} λ={lam[best]:g}"}
    assert set(res["per_clip"]) == {"baseline", "ground truth"} | names
    assert all(len(res["per_clip"][n]) == 10 for n in names | {"baseline"})
    assert f"{best} λ={lam[best]:g} vs baseline" in res["effects"]
    if best != "A":
        assert set(res["effects"]) == {f"{best} λ={lam[best]:g} vs baseline", f"A λ={lam['A']:g} vs baseline",
                                       f"{best} λ={lam[best]:g} vs A λ={lam['A']:g}"}
    contrasts = {k.split(" vs ")[0].split(" ")[0] + "/" + k.split(" vs ")[1].split(" ")[0]: v["what"]
                 for k, v in res["validation_contrasts"].items()}
    assert {"B/A", "C/A", "C/B", f"D/{res['winner_a_to_c']}", "E1/E0"} <= set(contrasts) and "lag" in contrasts[
        f"D/{res['winner_a_to_c']}"]
    assert res["command"].startswith("python benchmarks/prior_recipes.py --backbone") and res["timings"]["total_s"] > 0
    assert (tmp_path / "r.png").is_file()
    printed = capsys.readouterr().out
    assert "| A" in printed and "| comparison | physics_error" in printed and "smallest effect" in printed
    assert mod.main(["--table", str(tmp_path / "r.json")]) == 0
    assert capsys.readouterr().out.strip() == mod.tables(res).strip()
    # the contrasts again from the rows of a finished file (no sampling), recorded as added afterwards
    assert mod.main(["--add-contrasts", str(tmp_path / "r.json")]) == 0
    again = json.loads((tmp_path / "r.json").read_text())
    assert again["reanalysed"][-1]["added"] == "validation_contrasts"
    assert json.dumps(again["validation_contrasts"]) == json.dumps(res["validation_contrasts"])


def test_a_tight_budget_drops_the_second_order_recipes(backbone, tmp_path):
    mod = _script()
    assert mod.main(_args(backbone, tmp_path, "--budget-min", "0.001", "--sweep", "1")) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    assert list(res["recipes"]) == ["A", "B", "C", "D"] and "budget" in res["dropped"][0]
