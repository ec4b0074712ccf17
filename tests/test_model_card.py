"""Sharing a prior like a model: the model card (lamo.model_card), push_prior_to_hub and `lamo share`.

No network: every upload goes through diffusers' hub helpers (``create_repo``, ``upload_folder`` in
``diffusers.utils.hub_utils``), replaced here by fakes that copy what would be uploaded.
"""
import json
import shutil

import pytest
import torch
import yaml
from huggingface_hub import ModelCard

from lamo import MotionPrior
from lamo.cli import main
from lamo.errors import InputError, MissingInputError
from lamo.model_card import (PIPELINE_NAMES, load_quality, prior_model_card, push_prior_folder, push_prior_to_hub,
                             training_info, write_model_card)
from lamo.prior_quality import GENERIC_COUNTERFACTUALS, prior_quality

BASE = "me/tiny-cogvideox"  # a backbone the tiny test priors fit (THUDM/CogVideoX-2b takes 4096-wide text)


def tiny_prior(**kw):
    p = MotionPrior.from_preset("tiny", latent_channels=4, text_embed_dim=8, backbone="cogvideox", **kw)
    for prm in p.parameters():  # non-trivial weights, so a round trip is a real check
        torch.nn.init.normal_(prm, std=0.1)
    return p


def quality_of(prior):
    z = torch.randn(6, 5, 4, 6, 6, generator=torch.Generator().manual_seed(1)).cumsum(1)  # (N, F, C, H, W)
    c = torch.randn(6, 8, generator=torch.Generator().manual_seed(2))
    return prior_quality(prior, z, c, source="6 random clips")


def write_table(path, result, **extra):
    """What `lamo eval prior` writes (write_prior_quality, without the plot)."""
    path.write_text(json.dumps({**result.to_dict(), **extra, "table": result.table()}, default=float))
    return path


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """Fake create_repo / upload_folder: records the calls and copies each uploaded folder."""
    from diffusers.utils import hub_utils

    calls = {"create": [], "upload": []}

    class Repo:
        def __init__(self, repo_id):
            self.repo_id = repo_id

    def create_repo(repo_id, **kw):
        calls["create"].append((repo_id, kw))
        return Repo(repo_id)

    def upload_folder(repo_id, folder_path, **kw):
        dest = tmp_path / f"uploaded-{len(calls['upload'])}"
        shutil.copytree(folder_path, dest)
        calls["upload"].append((repo_id, dest, kw))
        return f"https://huggingface.co/{repo_id}/commit/0"

    monkeypatch.setattr(hub_utils, "create_repo", create_repo)
    monkeypatch.setattr(hub_utils, "upload_folder", upload_folder)
    return calls


# ------------------------------------------------------------------------------------- the card
def test_card_front_matter_and_body_parse_back(tmp_path):
    p = tiny_prior(tau=1)
    q = quality_of(p)
    p.save_pretrained(tmp_path / "prior")
    write_model_card(tmp_path / "prior", p,
                     base_model=BASE, training={"preset": "tiny", "steps": 10, "lr": 1e-3, "val_cosine": 0.4321,
                                                "val_loss": 0.5},
                     quality=q, repo_id="me/tiny-prior")
    card = ModelCard.load(tmp_path / "prior" / "README.md")
    d = card.data.to_dict()
    assert d["library_name"] == "lamo" and d["license"] == "apache-2.0" and d["base_model"] == BASE
    assert d["tags"] == ["motion-prior", "video-diffusion", "cogvideox"]
    assert d["lamo"] == {"backbone": "cogvideox", "latent_channels": 4, "text_embed_dim": 8, "tau": 1, "arch": "lamo",
                         "validation_cosine": 0.4321}
    text = card.text
    assert 'MotionPrior.from_pretrained("me/tiny-prior")' in text
    assert 'pipe.load_motion_prior("me/tiny-prior")' in text
    assert f'{PIPELINE_NAMES["cogvideox"]}.from_pretrained("{BASE}")' in text
    for row in ("| latent channels C | 4 |", "| text embedding width D | 8 |", "| lag τ (latent frames) | 1 |",
                "| architecture | lamo (preset `tiny`) |", "| `steps` | 10 |"):
        assert row in text, row
    assert "validation cosine to Δ_τ z **0.432**" in text
    assert f"**{q.cosine:.3f}**" in text and "6 random clips" in text
    for r in q.rows:  # the win-rate table: one row per counterfactual with its n and win rate
        assert f"| `{r.name}` | {r.description} | {r.n} | {100 * r.win_rate:.1f} [" in text


def test_card_without_training_or_quality_says_so():
    card = prior_model_card(MotionPrior.from_preset("tiny", latent_channels=4, text_embed_dim=8))
    assert card.data.base_model is None and card.data.tags == ["motion-prior", "video-diffusion"]
    assert "Not recorded with this prior." in card.text
    assert "Not measured for this card" in card.text and "lamo share card" in card.text
    assert 'MotionPrior.from_pretrained("user/repo")' in card.text


def test_release_prior_card_names_its_architecture():
    card = prior_model_card(MotionPrior.from_preset("release", latent_channels=4, text_embed_dim=8, hidden_channels=16,
                                                    cond_dim=8, num_blocks=1, backbone="wan"))
    assert card.data.tags[-1] == "wan" and "LaMoWanPipeline" in card.text
    assert "| architecture | release |" in card.text and "| squeeze-and-excitation | yes |" in card.text


def test_pipeline_names_match_the_pipelines():
    from lamo.pipelines import PIPELINES

    assert PIPELINE_NAMES == {family: cls.__name__ for family, cls in PIPELINES.items()}


# ------------------------------------------------------------------------------------- save / load
def test_default_save_is_unchanged_and_card_round_trip_is_exact(tmp_path):
    p = tiny_prior()
    p.save_pretrained(tmp_path / "plain")
    files = ["config.json", "diffusion_pytorch_model.safetensors"]
    assert sorted(f.name for f in (tmp_path / "plain").iterdir()) == files
    p.save_pretrained(tmp_path / "carded")
    write_model_card(tmp_path / "carded", p)
    assert sorted(f.name for f in (tmp_path / "carded").iterdir()) == [
        "README.md", "config.json", "diffusion_pytorch_model.safetensors"]
    assert (tmp_path / "plain" / "config.json").read_text() == (tmp_path / "carded" / "config.json").read_text()
    q = MotionPrior.from_pretrained(tmp_path / "carded")
    assert {k: v for k, v in q.config.items() if not k.startswith("_")} == \
        {k: v for k, v in p.config.items() if not k.startswith("_")}
    for (k, a), (k2, b) in zip(p.state_dict().items(), q.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def test_training_numbers_are_read_from_a_train_prior_run(tmp_path):
    run = tmp_path / "run"
    tiny_prior().save_pretrained(run / "prior")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "manifest.json").write_text(json.dumps({"family": "cogvideox", "config": {"model": BASE}}))
    (run / "config.yaml").write_text(yaml.safe_dump({"cache": str(cache), "out": str(run), "recipe": "lamo-release",
                                                     "preset": "release", "steps": 2000, "lr": 5e-4,
                                                     "resume_from_checkpoint": None}))
    for step, cos in ((1000, 0.3), (2000, 0.61)):
        ckpt = run / "checkpoints" / f"step-{step:06d}"
        ckpt.mkdir(parents=True)
        (ckpt / "trainer_state.json").write_text(json.dumps({"step": step, "val_loss": 1.0, "val_cosine": cos}))
    info = training_info(run / "prior")
    assert info["settings"]["recipe"] == "lamo-release" and "out" not in info["settings"]
    assert info["validation"] == {"val_loss": 1.0, "val_cosine": 0.61, "step": 2000}
    card = ModelCard.load(write_model_card(run / "prior"))
    assert card.data.base_model == BASE  # the model the latent cache was made with
    assert "| `recipe` | lamo-release |" in card.text and "**0.610**" in card.text and "at step 2000" in card.text


# ------------------------------------------------------------------------------------- push (mocked)
def test_push_prior_to_hub_uploads_weights_config_and_card(hub, tmp_path):
    p = tiny_prior()
    url = push_prior_to_hub(p, "me/tiny-prior", private=True, model_card={"quality": quality_of(p), "base_model": BASE})
    assert url.startswith("https://huggingface.co/me/tiny-prior")
    assert hub["create"] == [("me/tiny-prior", {"private": True, "token": None, "exist_ok": True})]
    (repo, folder, kw), = hub["upload"]
    assert repo == "me/tiny-prior" and kw["path_in_repo"] is None
    assert sorted(f.name for f in folder.iterdir()) == ["README.md", "config.json",
                                                        "diffusion_pytorch_model.safetensors"]
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "lamo" and card.data.base_model == BASE and "cogvideox" in card.data.tags
    assert 'MotionPrior.from_pretrained("me/tiny-prior")' in card.text and "## Prior quality" in card.text
    q = MotionPrior.from_pretrained(folder)
    assert all(torch.equal(a, b) for a, b in zip(p.state_dict().values(), q.state_dict().values()))


def test_cli_card_then_push(hub, tmp_path, monkeypatch, capsys):
    p = tiny_prior()
    folder = tmp_path / "prior"
    p.save_pretrained(folder)
    (folder / "training_stats.json").write_text(json.dumps({"steps": 5, "val_cosine": 0.25}))
    (folder / "lora").mkdir()  # stays local
    table = write_table(tmp_path / "table.json", quality_of(p), commit="abc1234", command="lamo eval prior …")
    assert main(["share", "card", str(folder), "--quality", str(table), "--base-model", BASE]) == 0
    card = ModelCard.load(folder / "README.md")
    assert card.data.base_model == BASE and "commit abc1234" in card.text and "`reversed`" in card.text
    card.text = card.text + "\nEdited by hand.\n"
    card.save(folder / "README.md")

    monkeypatch.setenv("HF_TOKEN", "hf_test")
    assert main(["share", "push", str(folder), "me/tiny-prior", "--private"]) == 0
    (repo, up, _), = hub["upload"]
    assert hub["create"][0][1]["private"] is True
    assert sorted(f.name for f in up.iterdir()) == ["README.md", "config.json", "diffusion_pytorch_model.safetensors",
                                                    "training_stats.json"]
    assert "Edited by hand." in (up / "README.md").read_text()  # an existing card goes as it is
    assert "MotionPrior.from_pretrained(\"me/tiny-prior\")" in capsys.readouterr().out


def test_push_writes_a_missing_card_with_the_repo_id(hub, tmp_path):
    tiny_prior().save_pretrained(tmp_path / "prior")
    _, files = push_prior_folder(tmp_path / "prior", "me/p")
    assert files == ["README.md", "config.json", "diffusion_pytorch_model.safetensors"]
    assert 'pipe.load_motion_prior("me/p")' in (hub["upload"][0][1] / "README.md").read_text()


# ------------------------------------------------------------------------------------- refusals
def test_push_refuses_offline_or_without_login_or_on_hub_errors(hub, tmp_path, monkeypatch, capsys):
    import huggingface_hub
    from diffusers.utils import hub_utils
    from huggingface_hub import constants

    tiny_prior().save_pretrained(tmp_path / "prior")
    args = ["share", "push", str(tmp_path / "prior"), "me/p"]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(args) == 2 and "HF_HUB_OFFLINE" in capsys.readouterr().err
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert main(args) == 2 and "hf auth login" in capsys.readouterr().err
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_test")

    def unreachable(*a, **kw):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(hub_utils, "create_repo", unreachable)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "could not upload" in err and "Name or service not known" in err and "write token" in err
    assert hub["upload"] == []


def test_bad_input_is_explained(tmp_path, capsys):
    with pytest.raises(MissingInputError, match="not found"):
        write_model_card(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="config.json is missing"):
        write_model_card(tmp_path / "empty")
    assert main(["share", "card", str(tmp_path / "empty")]) == 2
    assert "not a LaMo motion prior folder" in capsys.readouterr().err
    (tmp_path / "empty" / "predictor.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match="lamo convert release-predictor"):
        write_model_card(tmp_path / "empty")

    tiny_prior().save_pretrained(tmp_path / "prior")
    with pytest.raises(MissingInputError, match="table.json"):
        load_quality(tmp_path / "missing.json")
    (tmp_path / "garbage.json").write_bytes(b"\x00\xffnot json")
    with pytest.raises(InputError, match="cannot read the prior-quality table"):
        write_model_card(tmp_path / "prior", quality=tmp_path / "garbage.json")
    (tmp_path / "other.json").write_text(json.dumps({"cosine": 0.5}))
    with pytest.raises(InputError, match="not a table.json written by `lamo eval prior`"):
        load_quality(tmp_path / "other.json")
    assert main(["share", "card", str(tmp_path / "prior"), "--quality", str(tmp_path / "garbage.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(InputError, match="not a Hugging Face Hub id"):
        write_model_card(tmp_path / "prior", base_model="not an id")
    assert not (tmp_path / "prior" / "README.md").exists()  # nothing written on a refusal


def test_quality_table_file_round_trips(tmp_path):
    p = tiny_prior()
    q = quality_of(p)
    back, prov = load_quality(write_table(tmp_path / "t.json", q, commit="c0ffee"))
    assert back.cosine == q.cosine and [r.win_rate for r in back.rows] == [r.win_rate for r in q.rows]
    assert [r.name for r in back.rows] == list(GENERIC_COUNTERFACTUALS) and prov == {"commit": "c0ffee"}
    assert back.table() == q.table()
