"""LoRA weights in the layout ComfyUI loads, and back (`lamo share lora … --format comfyui`).

A LaMo fine-tune saves its LoRA as diffusers / PEFT write it (``OUT/lora/pytorch_lora_weights.safetensors``):
keys ``transformer.<diffusers module>.lora_A.weight`` / ``.lora_B.weight``, the adapter config (``lora_alpha``,
``r``) in the file's metadata, ``ΔW = (α / r) · B · A``. ComfyUI builds its video models from the
original repositories' module names, not diffusers', and matches a LoRA key to a weight by that name with
the ``diffusion_model.`` prefix (``comfy/lora.py``, ``model_lora_keys_unet``: ``key_map[k[:-len(".weight")]] = k``
for every ``diffusion_model.*.weight``); its LoRA weight adapter reads ``<key>.lora_up.weight``,
``<key>.lora_down.weight`` and ``<key>.alpha`` and adds ``(alpha / rank) · up · down``. So the export is

* **a rename** of each module to ComfyUI's name — LTX-Video: diffusers kept the original names but
  ``proj_in``, ``time_embed``, ``norm_q``/``norm_k`` (``patchify_proj``, ``adaln_single``, ``q_norm``/``k_norm``);
  Wan 2.1 / 2.2: ``attn1.to_q`` → ``self_attn.q``, ``attn2.to_out.0`` → ``cross_attn.o``, ``ffn.net.0.proj`` →
  ``ffn.0`` … (diffusers' ``scripts/convert_wan_to_diffusers.py`` read backwards);
* **a fusion** where the original model has one linear layer for what diffusers splits — HunyuanVideo's
  ``img_attn.qkv`` (diffusers ``attn.to_q``, ``to_k``, ``to_v``), ``txt_attn.qkv`` (``add_q_proj`` …), the single
  blocks' ``linear1`` (``to_q``, ``to_k``, ``to_v``, ``proj_mlp``) and the token refiner's ``self_attn.qkv``. The
  fused LoRA is exact: ``down`` stacks the parts' ``A`` (rank ``R = Σ r_i``), ``up`` is block-diagonal with each
  part's ``(α_i / r_i)·B_i`` in its rows, and ``alpha = R``, so ComfyUI's ``(alpha / R)·up·down`` is, row block by
  row block, each part's ``ΔW``; a part without LoRA gets zero rows. Importing back splits the blocks again
  (each part's ``α`` is then its rank, its ``B`` scaled: the same ``ΔW``).

CogVideoX has no ComfyUI model of its own (only third-party wrappers, each with its own names): it is refused.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import InputError, MissingInputError

__all__ = ["COMFYUI_FAMILIES", "LoRA", "read_lora", "to_comfyui", "from_comfyui", "export_comfyui",
           "load_comfyui", "delta_weights", "finetune_family", "DIFFUSERS_LORA_FILE"]

DIFFUSERS_LORA_FILE = "pytorch_lora_weights.safetensors"  # what diffusers' save_lora_weights writes
COMFYUI_PREFIX = "diffusion_model."
_DEFAULT_HUNYUAN_MLP_RATIO = 4.0  # HunyuanVideo 13B: single blocks' MLP is 4 × the hidden width


@dataclass
class LoRA:
    """A LoRA in diffusers' module names: per module ``A`` (``r × in``), ``B`` (``out × r``) and ``α``
    (``ΔW = α / r · B · A``)."""

    down: dict[str, torch.Tensor]  # module → A
    up: dict[str, torch.Tensor]  # module → B
    alpha: dict[str, float]  # module → α

    def modules(self) -> list[str]:
        return sorted(self.down)


# ---------------------------------------------------------------------------------------- name maps
# (diffusers module, ComfyUI module): "{i}" stands for a block index
_WAN = [(f"blocks.{{i}}.{d}", f"blocks.{{i}}.{c}") for d, c in (
    ("attn1.to_q", "self_attn.q"), ("attn1.to_k", "self_attn.k"), ("attn1.to_v", "self_attn.v"),
    ("attn1.to_out.0", "self_attn.o"), ("attn2.to_q", "cross_attn.q"), ("attn2.to_k", "cross_attn.k"),
    ("attn2.to_v", "cross_attn.v"), ("attn2.to_out.0", "cross_attn.o"), ("attn2.add_k_proj", "cross_attn.k_img"),
    ("attn2.add_v_proj", "cross_attn.v_img"), ("ffn.net.0.proj", "ffn.0"), ("ffn.net.2", "ffn.2"))] + [
    ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
    ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
    ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
    ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
    ("condition_embedder.time_proj", "time_projection.1"), ("proj_out", "head.head")]
_LTX = [(f"transformer_blocks.{{i}}.{m}", f"transformer_blocks.{{i}}.{m}") for m in (
    "attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k", "attn2.to_v",
    "attn2.to_out.0", "ff.net.0.proj", "ff.net.2")] + [
    ("proj_in", "patchify_proj"), ("time_embed.linear", "adaln_single.linear"),
    ("time_embed.emb.timestep_embedder.linear_1", "adaln_single.emb.timestep_embedder.linear_1"),
    ("time_embed.emb.timestep_embedder.linear_2", "adaln_single.emb.timestep_embedder.linear_2"),
    ("caption_projection.linear_1", "caption_projection.linear_1"),
    ("caption_projection.linear_2", "caption_projection.linear_2"), ("proj_out", "proj_out")]
_REFINER = "context_embedder.token_refiner.refiner_blocks.{i}"
_HUNYUAN = [(f"transformer_blocks.{{i}}.{d}", f"double_blocks.{{i}}.{c}") for d, c in (
    ("attn.to_out.0", "img_attn.proj"), ("attn.to_add_out", "txt_attn.proj"), ("ff.net.0.proj", "img_mlp.0"),
    ("ff.net.2", "img_mlp.2"), ("ff_context.net.0.proj", "txt_mlp.0"), ("ff_context.net.2", "txt_mlp.2"),
    ("norm1.linear", "img_mod.lin"), ("norm1_context.linear", "txt_mod.lin"))] + [
    ("single_transformer_blocks.{i}.proj_out", "single_blocks.{i}.linear2"),
    ("single_transformer_blocks.{i}.norm.linear", "single_blocks.{i}.modulation.lin"),
    (f"{_REFINER}.attn.to_out.0", "txt_in.individual_token_refiner.blocks.{i}.self_attn.proj"),
    (f"{_REFINER}.ff.net.0.proj", "txt_in.individual_token_refiner.blocks.{i}.mlp.0"),
    (f"{_REFINER}.ff.net.2", "txt_in.individual_token_refiner.blocks.{i}.mlp.2"),
    ("x_embedder.proj", "img_in.proj")]
# fused ComfyUI layers: (diffusers module template with "{part}", ComfyUI module, the parts in row order);
# "proj_mlp" is the single blocks' MLP input (mlp_ratio × the hidden width), every other part the hidden width
_HUNYUAN_FUSED = [
    ("transformer_blocks.{i}.attn.{part}", "double_blocks.{i}.img_attn.qkv", ("to_q", "to_k", "to_v")),
    ("transformer_blocks.{i}.attn.{part}", "double_blocks.{i}.txt_attn.qkv", ("add_q_proj", "add_k_proj", "add_v_proj")),
    ("single_transformer_blocks.{i}.{part}", "single_blocks.{i}.linear1",
     ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")),
    (f"{_REFINER}.attn.{{part}}", "txt_in.individual_token_refiner.blocks.{i}.self_attn.qkv", ("to_q", "to_k", "to_v")),
]
_RENAMES = {"wan": _WAN, "ltx": _LTX, "hunyuanvideo": _HUNYUAN}
_FUSED = {"hunyuanvideo": _HUNYUAN_FUSED}
#: backbone families with a ComfyUI layout here
COMFYUI_FAMILIES = tuple(_RENAMES)


def _check_family(family: str) -> str:
    if family not in _RENAMES:
        hint = " (ComfyUI has no CogVideoX model of its own)" if family == "cogvideox" else ""
        raise InputError(f"no ComfyUI LoRA layout for backbone family {family!r}{hint}; "
                         f"choose one of {list(COMFYUI_FAMILIES)}")
    return family


def _match(template: str, name: str, **fixed: str) -> str | None:
    """The block index ``{i}`` if ``name`` fits ``template`` (other fields given in ``fixed``), else ``None``;
    ``""`` for a template without ``{i}``."""
    rx = re.escape(template.format(i="\x00", **fixed)).replace("\x00", r"(\d+)")  # re.escape leaves NUL as it is
    m = re.fullmatch(rx, name)
    if m is None:
        return None
    return m.group(1) if m.groups() else ""


def _rename(family: str, module: str, reverse: bool = False) -> str | None:
    """ComfyUI's name of a diffusers module (``reverse``: the diffusers name of a ComfyUI layer), or ``None``."""
    for diffusers_name, comfy_name in _RENAMES[family]:
        src, dst = (comfy_name, diffusers_name) if reverse else (diffusers_name, comfy_name)
        i = _match(src, module)
        if i is not None:
            return dst.format(i=i)
    return None


def _fused_target(family: str, module: str) -> tuple[str, tuple[str, ...], int] | None:
    """``(ComfyUI layer, its parts, this module's part index)`` when ``module`` is one part of a fused layer."""
    for template, target, parts in _FUSED.get(family, []):
        for index, part in enumerate(parts):
            i = _match(template, module, part=part)
            if i is not None:
                return target.format(i=i), parts, index
    return None


def _fused_parts(family: str, name: str) -> tuple[list[str], tuple[str, ...]] | None:
    """The diffusers modules (in row order) fused into the ComfyUI layer ``name``, and the parts, or ``None``."""
    for template, target, parts in _FUSED.get(family, []):
        i = _match(target, name)
        if i is not None:
            return [template.format(i=i, part=part) for part in parts], parts
    return None


def _part_sizes(parts: tuple[str, ...], width: int, mlp_ratio: float) -> list[int]:
    """Output rows of each part of a fused layer: the hidden width, the MLP's for HunyuanVideo's ``linear1``."""
    return [int(width * mlp_ratio) if p == "proj_mlp" else width for p in parts]


# ---------------------------------------------------------------------------------------- reading
def read_lora(source: str | os.PathLike) -> LoRA:
    """A diffusers / PEFT LoRA: a ``.safetensors`` file or a fine-tune folder (``OUT`` or ``OUT/lora``).

    Keys ``[transformer.]<module>.lora_A.weight`` / ``.lora_B.weight`` (optionally ``.alpha``); ``α`` comes from
    the key, else the adapter config diffusers stores in the metadata (``lora_alpha``, ``alpha_pattern``),
    else the rank (``α = r``, PEFT's default scale 1).
    """
    from safetensors import safe_open

    path = Path(source)
    for candidate in (path, path / DIFFUSERS_LORA_FILE, path / "lora" / DIFFUSERS_LORA_FILE):
        if candidate.is_file():
            path = candidate
            break
    else:
        raise MissingInputError(f"{source}: no LoRA here (a .safetensors file, or a fine-tune folder holding "
                                f"lora/{DIFFUSERS_LORA_FILE})")
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata() or {}
    config: dict[str, Any] = {}
    for key, value in metadata.items():
        if key.endswith("lora_adapter_metadata"):  # diffusers prefixes the fields with the component
            config = {k.removeprefix("transformer."): v for k, v in json.loads(value).items()}
    down, up, alpha = {}, {}, {}
    for key, t in tensors.items():
        m = re.fullmatch(r"(?:transformer\.)?(.+)\.lora_([AB])(?:\.default)?\.weight", key)
        if m:
            (down if m.group(2) == "A" else up)[m.group(1)] = t
        elif not re.fullmatch(r"(?:transformer\.)?.+\.alpha", key):
            raise InputError(f"{path}: key {key!r} is not a diffusers / PEFT LoRA key (…lora_A.weight / lora_B.weight)")
    if not down or set(down) != set(up):
        raise InputError(f"{path}: no LoRA pairs (each module needs lora_A and lora_B)")
    patterns = config.get("alpha_pattern") or {}
    for module, a in down.items():
        key_alpha = tensors.get(f"transformer.{module}.alpha", tensors.get(f"{module}.alpha"))
        if key_alpha is not None:
            alpha[module] = float(key_alpha)
            continue
        pattern = next((v for k, v in patterns.items() if module == k or module.endswith("." + k)), None)
        alpha[module] = float(pattern if pattern is not None else config.get("lora_alpha", a.shape[0]))
        if config.get("use_rslora"):  # ΔW = α / √r · B · A, i.e. α·√r in the α / r convention
            alpha[module] *= a.shape[0] ** 0.5
    return LoRA(down, up, alpha)


# ---------------------------------------------------------------------------------------- export
def to_comfyui(lora: LoRA, family: str, mlp_ratio: float = _DEFAULT_HUNYUAN_MLP_RATIO) -> dict[str, torch.Tensor]:
    """``lora`` (diffusers names) → the tensors of a ComfyUI LoRA file: ``diffusion_model.<name>.lora_down.weight``,
    ``.lora_up.weight`` and ``.alpha`` per ComfyUI layer.

    ``mlp_ratio``: HunyuanVideo's MLP width over its hidden width (4 for the released 13B), for the rows of
    ``linear1``'s MLP part.
    """
    _check_family(family)
    out: dict[str, torch.Tensor] = {}
    groups: dict[str, tuple[tuple[str, ...], dict[int, str]]] = {}
    unmapped = []
    for module in lora.modules():
        fused = _fused_target(family, module)
        if fused is not None:
            target, parts, index = fused
            groups.setdefault(target, (parts, {}))[1][index] = module
            continue
        name = _rename(family, module)
        if name is None:
            unmapped.append(module)
            continue
        key = COMFYUI_PREFIX + name
        out[f"{key}.lora_down.weight"] = lora.down[module].contiguous()
        out[f"{key}.lora_up.weight"] = lora.up[module].contiguous()
        out[f"{key}.alpha"] = torch.tensor(lora.alpha[module], dtype=torch.float32)
    if unmapped:
        raise InputError(f"no ComfyUI name for {len(unmapped)} LoRA module(s) of this {family} LoRA, e.g. "
                         f"{unmapped[0]!r}; LaMo maps the attention, MLP and modulation layers")
    for target, (parts, present) in groups.items():
        hidden = [lora.up[m].shape[0] for i, m in present.items() if parts[i] != "proj_mlp"]
        width = hidden[0] if hidden else int(round(lora.up[present[parts.index("proj_mlp")]].shape[0] / mlp_ratio))
        sizes = _part_sizes(parts, width, mlp_ratio)
        dtype = lora.up[next(iter(present.values()))].dtype
        work = torch.promote_types(dtype, torch.float32)
        downs, blocks, rank = [], [], 0
        for i in sorted(present):
            module = present[i]
            a, b = lora.down[module].to(work), lora.up[module].to(work)
            if b.shape[0] != sizes[i]:
                raise InputError(f"{module}: {b.shape[0]} output rows, but {target}'s part {parts[i]} has {sizes[i]} "
                                 "(a HunyuanVideo with another MLP width? pass mlp_ratio=)")
            downs.append(a)
            blocks.append((sum(sizes[:i]), rank, b * (lora.alpha[module] / a.shape[0])))
            rank += a.shape[0]
        up = torch.zeros(sum(sizes), rank, dtype=work)
        for r0, c0, b in blocks:
            up[r0:r0 + b.shape[0], c0:c0 + b.shape[1]] = b
        key = COMFYUI_PREFIX + target
        out[f"{key}.lora_down.weight"] = torch.cat(downs).to(dtype).contiguous()
        out[f"{key}.lora_up.weight"] = up.to(dtype).contiguous()
        out[f"{key}.alpha"] = torch.tensor(float(rank), dtype=torch.float32)  # ComfyUI's alpha / rank = 1
    return out


def from_comfyui(tensors: dict[str, torch.Tensor], family: str, mlp_ratio: float = _DEFAULT_HUNYUAN_MLP_RATIO) -> LoRA:
    """A ComfyUI LoRA (as :func:`to_comfyui` writes it) → the :class:`LoRA` in diffusers names, with the same ``ΔW``.

    A fused layer is split into its parts' row blocks; each part's columns are those its rows use (the
    block-diagonal ``up`` of :func:`to_comfyui`), its ``α`` its rank; a part whose rows are zero had no LoRA.
    """
    _check_family(family)
    down, up, alpha = {}, {}, {}
    keys = sorted(k[: -len(".lora_down.weight")] for k in tensors if k.endswith(".lora_down.weight"))
    for key in keys:
        name = key.removeprefix(COMFYUI_PREFIX)
        a, b = tensors[f"{key}.lora_down.weight"], tensors[f"{key}.lora_up.weight"]
        al = float(tensors[f"{key}.alpha"]) if f"{key}.alpha" in tensors else float(a.shape[0])
        fused = _fused_parts(family, name)
        if fused is not None:
            modules, parts = fused
            n_mlp = sum(p == "proj_mlp" for p in parts)
            width = int(round(b.shape[0] / (len(parts) - n_mlp + n_mlp * mlp_ratio)))
            scaled, r0 = b * (al / a.shape[0]), 0
            for module, size in zip(modules, _part_sizes(parts, width, mlp_ratio)):
                rows = scaled[r0:r0 + size]
                r0 += size
                cols = rows.ne(0).any(dim=0).nonzero().flatten()
                if len(cols):  # else: a part without LoRA
                    down[module], up[module], alpha[module] = a[cols].clone(), rows[:, cols].clone(), float(len(cols))
            continue
        module = _rename(family, name, reverse=True)
        if module is None:
            raise InputError(f"ComfyUI LoRA key {key!r} has no diffusers name in a {family} transformer")
        down[module], up[module], alpha[module] = a, b, al
    return LoRA(down, up, alpha)


# ---------------------------------------------------------------------------------------- files
def export_comfyui(source: str | os.PathLike, out: str | os.PathLike, family: str,
                   mlp_ratio: float = _DEFAULT_HUNYUAN_MLP_RATIO) -> Path:
    """Write the LoRA of ``source`` (see :func:`read_lora`) as a ComfyUI LoRA ``.safetensors`` file at ``out``."""
    from safetensors.torch import save_file

    tensors = to_comfyui(read_lora(source), family, mlp_ratio)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    save_file(tensors, str(tmp), metadata={"lamo_family": family, "format": "comfyui"})
    os.replace(tmp, out)
    return out


def load_comfyui(path: str | os.PathLike, family: str | None = None,
                 mlp_ratio: float = _DEFAULT_HUNYUAN_MLP_RATIO) -> LoRA:
    """Read a ComfyUI LoRA file written by :func:`export_comfyui` back into diffusers names."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        family = family or (f.metadata() or {}).get("lamo_family")
    if not family:
        raise InputError(f"{path}: the file does not record its backbone family; pass family=")
    return from_comfyui(tensors, family, mlp_ratio)


def finetune_family(source: str | os.PathLike) -> str:
    """The backbone family of a fine-tune folder's model (its ``config.yaml``); refuses (``InputError``) when the
    folder or the model it names cannot tell."""
    import yaml

    from .adapters.registry import detect_family

    path = Path(source)
    config = next((p / "config.yaml" for p in (path, path.parent) if (p / "config.yaml").is_file()), None)
    model = yaml.safe_load(config.read_text()).get("model") if config is not None else None
    try:
        if model:
            return detect_family(model)
    except (OSError, ValueError):
        pass
    raise InputError(f"{source}: cannot tell the backbone family (the fine-tune's model "
                     f"{model or '(not recorded)'} is not at hand); pass --family ({', '.join(COMFYUI_FAMILIES)})")


def delta_weights(lora: LoRA) -> dict[str, torch.Tensor]:
    """``ΔW = α / r · B · A`` per module (fp32)."""
    return {m: (lora.alpha[m] / lora.down[m].shape[0]) * (lora.up[m].float() @ lora.down[m].float())
            for m in lora.modules()}
