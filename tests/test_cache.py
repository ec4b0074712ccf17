"""Latent cache: encodes with the backbone's own VAE and text encoder, skips bad videos, resumes."""
import json

import torch
from safetensors.torch import load_file

from lamo.cache import CachedLatentDataset
from lamo.cli import main
from lamo.demo.model import build_demo_pipeline
from lamo.physics.dataset import write_dataset
from lamo.physics.world import get_world_config


def _setup(tmp_path):
    write_dataset(tmp_path / "data", 5, get_world_config("tiny", size=16, frames=8, radius=(1.5, 2.0)), progress=False)
    (tmp_path / "data" / "videos" / "000002.mp4").write_bytes(b"corrupt")
    pipe = build_demo_pipeline("test", ["a", "ball", "is", "dropped"])
    pipe.save_pretrained(tmp_path / "model")
    return pipe


def _args(tmp_path, out, *extra):
    return ["cache", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "data"), "--out", str(out),
            "--frames", "8", "--height", "16", "--width", "16", "--shard-size", "2", "--max-sequence-length", "12",
            *extra]


def test_cache_encodes_skips_and_resumes_to_the_same_result(tmp_path):
    pipe = _setup(tmp_path)
    assert main(_args(tmp_path, tmp_path / "full")) == 0
    m = json.loads((tmp_path / "full" / "manifest.json").read_text())
    assert m["complete"] and m["family"] == "cogvideox" and len(m["shards"]) == 3
    assert [len(s["skipped"]) for s in m["shards"]] == [0, 1, 0] and sum(s["n"] for s in m["shards"]) == 4
    assert m["latent_shape"] == [4, 8, 4, 4] and m["text_dim"] == 16

    assert main(_args(tmp_path, tmp_path / "part", "--max-shards", "1")) == 0  # interrupted after one shard
    assert not json.loads((tmp_path / "part" / "manifest.json").read_text())["complete"]
    assert main(_args(tmp_path, tmp_path / "part")) == 0  # resumed
    for k in range(3):
        a = load_file(tmp_path / "full" / f"shard-0000{k}.safetensors")
        b = load_file(tmp_path / "part" / f"shard-0000{k}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)

    ds = CachedLatentDataset(tmp_path / "full", with_prompt_embeds=True)
    assert len(ds) == 4
    item = ds[0]
    assert item["latents"].shape == (4, 8, 4, 4) and item["pooled"].shape == (16,) and item["prompt_embeds"].shape == (12, 16)
    # the cached latent is the backbone's own encoding of the clip
    from lamo.adapters import get_adapter
    from lamo.data import VideoCaptionDataset

    clip = VideoCaptionDataset(tmp_path / "data", 8, 16, 16).load(0)
    z = get_adapter(pipe).encode_video(pipe.vae, clip["frames"][None], sample=False)[0]
    assert torch.allclose(item["latents"], z, atol=1e-5)


def test_cache_refuses_another_dataset_in_the_same_folder(tmp_path, capsys):
    _setup(tmp_path)
    assert main(_args(tmp_path, tmp_path / "c", "--max-shards", "1")) == 0
    import shutil

    shutil.copytree(tmp_path / "data", tmp_path / "data2")  # a valid dataset, but another one
    args = _args(tmp_path, tmp_path / "c")
    args[args.index("--data") + 1] = str(tmp_path / "data2")
    assert main(args) == 2
    assert "use another --out" in capsys.readouterr().err


def test_a_resumed_cache_must_be_encoded_the_same_way(tmp_path, capsys):
    pipe = _setup(tmp_path)
    assert main(_args(tmp_path, tmp_path / "c", "--max-shards", "1")) == 0  # interrupted after one shard
    m = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert m["recipe"]["frames"] == 8 and m["recipe"]["model_sha256"]
    args = _args(tmp_path, tmp_path / "c")
    args[args.index("--max-sequence-length") + 1] = "10"  # other prompt length: shards of two shapes
    assert main(args) == 2
    assert "another max_sequence_length" in capsys.readouterr().err
    import torch

    torch.manual_seed(5)  # the same folder now holds other weights
    build_demo_pipeline("test", ["a", "ball", "is", "dropped"]).save_pretrained(tmp_path / "model")
    assert main(_args(tmp_path, tmp_path / "c")) == 2
    assert "another model_sha256" in capsys.readouterr().err
    del pipe


def test_cache_refuses_bad_numbers(tmp_path, capsys):
    _setup(tmp_path)
    for flag, value, message in [("--frames", "0", "--frames must be ≥ 1"), ("--shard-size", "0", "--shard-size"),
                                 ("--batch-size", "-1", "--batch-size"), ("--max-shards", "0", "--max-shards"),
                                 ("--dtype", "int8", "--dtype"), ("--data", "/nonexistent", "--data")]:
        args = _args(tmp_path, tmp_path / "c")
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "c").exists()
