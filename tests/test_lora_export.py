"""LoRA export in ComfyUI's layout (`lamo share lora … --format comfyui`) and back, on tiny random transformers:
the exported keys map back to the same ΔW, a merged transformer is the PEFT-merged one, and ComfyUI's own merge
rule on the original (fused) layers gives the diffusers layers' merged weights."""
from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_hunyuan_video_components, tiny_ltx_components, tiny_wan_components

from lamo.cli import main
from lamo.lora_export import (delta_weights, export_comfyui, from_comfyui, load_comfyui, read_lora, to_comfyui)

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]  # what `lamo train finetune` trains
CASES = {
    "wan": (tiny_wan_components, "WanPipeline", TARGETS + ["ffn.net.0.proj"]),
    "ltx": (tiny_ltx_components, "LTXPipeline", TARGETS + ["ff.net.2"]),
    "hunyuanvideo": (tiny_hunyuan_video_components, "HunyuanVideoPipeline", TARGETS),
    # every fused part (the text stream's qkv, the single blocks' MLP input), and an MLP
    "hunyuanvideo-all": (tiny_hunyuan_video_components, "HunyuanVideoPipeline",
                         TARGETS + ["add_q_proj", "add_k_proj", "add_v_proj", "proj_mlp", "ff.net.2"]),
}


def _finetune(case: str, root, rank: int = 2, alpha: float = 3.0):
    """A tiny transformer with a trained-looking LoRA (random B), saved as `lamo train finetune` saves it; returns
    ``(base weights, PEFT-merged weights, lora folder)``."""
    import diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    factory, pipeline, targets = CASES[case]
    transformer = factory()["transformer"]
    base = {k: v.clone() for k, v in transformer.state_dict().items()}
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=True, target_modules=targets))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in transformer.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    getattr(diffusers, pipeline).save_lora_weights(
        root / "lora", transformer_lora_layers=get_peft_model_state_dict(transformer),
        transformer_lora_adapter_metadata=transformer.peft_config["default"].to_dict())
    transformer.fuse_lora()
    merged = {k.replace(".base_layer", ""): v.clone() for k, v in transformer.state_dict().items() if "lora_" not in k}
    return base, merged, root / "lora"


@pytest.mark.parametrize("case", list(CASES))
def test_exported_keys_map_back_to_the_same_weights(case, tmp_path):
    family = case.split("-")[0]
    base, merged, folder = _finetune(case, tmp_path)
    lora = read_lora(tmp_path)  # the fine-tune folder
    assert lora.alpha and set(lora.alpha.values()) == {3.0}
    file = export_comfyui(tmp_path, tmp_path / "comfy.safetensors", family)
    from safetensors.torch import load_file

    exported = load_file(file)
    assert all(k.startswith("diffusion_model.") and k.endswith((".lora_down.weight", ".lora_up.weight", ".alpha"))
               for k in exported)
    back = load_comfyui(file)  # the family comes from the file's metadata
    assert set(back.modules()) == set(lora.modules())
    want, got = delta_weights(lora), delta_weights(back)
    for module in lora.modules():
        torch.testing.assert_close(got[module], want[module], rtol=1e-6, atol=1e-7)
    # the PEFT-merged transformer is the base plus the imported ΔW
    for module, delta in got.items():
        torch.testing.assert_close(base[f"{module}.weight"] + delta, merged[f"{module}.weight"], rtol=1e-5, atol=1e-6)
    untouched = set(base) - {f"{m}.weight" for m in got}
    assert all(torch.equal(base[k], merged[k]) for k in untouched)


def test_renamed_layers_keep_their_factors(tmp_path):
    """A layer ComfyUI only names differently keeps A, B and α as they are (Wan: attn1.to_q → self_attn.q)."""
    _finetune("wan", tmp_path)
    lora = read_lora(tmp_path / "lora")
    exported = to_comfyui(lora, "wan")
    key = "diffusion_model.blocks.0.self_attn.q"
    assert torch.equal(exported[f"{key}.lora_down.weight"], lora.down["blocks.0.attn1.to_q"])
    assert torch.equal(exported[f"{key}.lora_up.weight"], lora.up["blocks.0.attn1.to_q"])
    assert float(exported[f"{key}.alpha"]) == 3.0
    assert {k.rsplit(".", 2)[0] for k in exported} >= {"diffusion_model.blocks.0.cross_attn.o",
                                                        "diffusion_model.blocks.0.ffn.0"}


@pytest.mark.parametrize("case", ["hunyuanvideo", "hunyuanvideo-all"])
def test_comfyui_merge_of_fused_layers_is_the_diffusers_merge(case, tmp_path):
    """ComfyUI adds ``alpha / rank · up · down`` to its fused layer; that layer is the diffusers parts stacked
    (``img_attn.qkv`` = q, k, v; ``linear1`` = q, k, v, MLP): the result must be the merged parts stacked."""
    base, merged, folder = _finetune(case, tmp_path)
    exported = to_comfyui(read_lora(folder), "hunyuanvideo")
    fused = {"double_blocks.0.img_attn.qkv": [f"transformer_blocks.0.attn.{p}" for p in ("to_q", "to_k", "to_v")],
             "double_blocks.0.txt_attn.qkv": [f"transformer_blocks.0.attn.{p}" for p in
                                              ("add_q_proj", "add_k_proj", "add_v_proj")],
             "single_blocks.0.linear1": [f"single_transformer_blocks.0.{p}" for p in
                                         ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")],
             "txt_in.individual_token_refiner.blocks.0.self_attn.qkv":
                 [f"context_embedder.token_refiner.refiner_blocks.0.attn.{p}" for p in ("to_q", "to_k", "to_v")]}
    for layer, parts in fused.items():
        key = f"diffusion_model.{layer}"
        if f"{key}.lora_up.weight" not in exported:
            assert case == "hunyuanvideo" and "txt_attn" in layer  # not trained there
            continue
        native = torch.cat([base[f"{p}.weight"] for p in parts])
        up, down = exported[f"{key}.lora_up.weight"], exported[f"{key}.lora_down.weight"]
        comfy = native + float(exported[f"{key}.alpha"]) / down.shape[0] * (up @ down)  # comfy/lora.py's rule
        torch.testing.assert_close(comfy, torch.cat([merged[f"{p}.weight"] for p in parts]), rtol=1e-5, atol=1e-6)


def test_cogvideox_and_unknown_keys_are_refused(tmp_path):
    from lamo.errors import InputError
    from lamo.lora_export import LoRA

    lora = LoRA({"blocks.0.attn1.to_q": torch.zeros(2, 4)}, {"blocks.0.attn1.to_q": torch.zeros(4, 2)},
                {"blocks.0.attn1.to_q": 2.0})
    with pytest.raises(InputError, match="CogVideoX"):
        to_comfyui(lora, "cogvideox")
    with pytest.raises(InputError, match="no ComfyUI name"):
        to_comfyui(lora, "ltx")  # an LTX transformer has no `blocks.`
    with pytest.raises(InputError, match="no diffusers name"):
        from_comfyui({"diffusion_model.nowhere.lora_down.weight": torch.zeros(2, 4),
                      "diffusion_model.nowhere.lora_up.weight": torch.zeros(4, 2)}, "wan")


def test_share_lora_command(tmp_path, capsys):
    _finetune("ltx", tmp_path)
    (tmp_path / "config.yaml").write_text("model: nowhere\n")
    out = tmp_path / "ltx_comfyui.safetensors"
    assert main(["share", "lora", str(tmp_path), "--format", "comfyui", "--family", "ltx", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    back = load_comfyui(out)
    assert set(back.modules()) == set(read_lora(tmp_path).modules())
    # without --family, the fine-tune's own model tells it; a model that is not there cannot
    assert main(["share", "lora", str(tmp_path), "--format", "comfyui", "--out", str(out)]) == 2
    assert "--family" in capsys.readouterr().err
    assert main(["share", "lora", str(tmp_path / "none"), "--family", "ltx", "--out", str(out)]) == 2
    assert "no LoRA" in capsys.readouterr().err
    assert main(["share", "lora", str(tmp_path), "--family", "cogvideox", "--out", str(out)]) == 2
    assert "CogVideoX" in capsys.readouterr().err
