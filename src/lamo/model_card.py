"""Share a motion prior like a model: a Hugging Face model card (``README.md``) and the upload.

A prior is useful to someone else only with what it was trained for — the backbone family, its latent
channels ``C`` and text-encoder width ``D``, the lag ``τ`` — and how good it is: the validation cosine to
``Δ_τ z`` and the prior-quality win rates of :mod:`lamo.prior_quality`. :func:`prior_model_card` puts
them in a card: YAML front matter written by ``huggingface_hub``'s :class:`~huggingface_hub.ModelCardData`
(``library_name: lamo``, ``license: apache-2.0``, ``tags: [motion-prior, video-diffusion, <family>]``,
``base_model`` when the backbone's Hub id is known, and a ``lamo:`` block of the numbers a loader checks),
then a body: what the prior is for, how to load it, its config, its training, its quality.

* :func:`write_model_card` — ``README.md`` in a prior folder (what ``lamo share card`` runs):
  ``prior.save_pretrained(folder)`` then ``write_model_card(folder, prior, quality=…, base_model=…)``;
* :func:`push_prior_to_hub` — save, write the card and upload: ``push_prior_to_hub(prior, "you/lamo-prior",
  model_card={"quality": "table.json"})`` (``prior.push_to_hub`` is diffusers' own, with its generic card);
* :func:`push_prior_folder` — upload a prior folder's files as they are (what ``lamo share push`` runs);
* :func:`training_info`, :func:`load_quality` — what a folder says about its training, a ``table.json``.

Where the training numbers come from (``training="auto"``, read from the prior folder):

* ``FOLDER/training_stats.json`` (``lamo demo``): settings and ``val_*`` numbers;
* ``FOLDER/../config.yaml`` + the newest ``FOLDER/../checkpoints/step-*/trainer_state.json`` (a prior at
  ``OUT/prior`` of ``lamo train prior`` or ``lamo train finetune``): the run's settings (recipe, preset,
  steps, lr …) and the validation loss and cosine at its last checkpoint.

The prior itself (:mod:`lamo.prior`) knows nothing of cards or the Hub beyond diffusers' loading: this
module imports it, never the reverse.

Loading a shared prior: ``MotionPrior.from_pretrained("user/repo")`` or ``pipe.load_motion_prior("user/repo")``
(safetensors + config.json only; nothing is unpickled).
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HUB_ID, InputError, MissingInputError

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

    from .prior import MotionPrior
    from .prior_quality import PriorQuality

__all__ = ["prior_model_card", "write_model_card", "push_prior_to_hub", "push_prior_folder", "training_info",
           "load_quality", "check_prior_folder", "CARD_FILE", "LICENSE", "TAGS", "PIPELINE_NAMES", "folder_files",
           "check_base_model", "KNOWN_BACKBONES"]

CARD_FILE = "README.md"
LICENSE = "apache-2.0"  # LaMo's licence (pyproject.toml); the card's default
#: Tags every prior card carries; the backbone family is added as a third.
TAGS = ("motion-prior", "video-diffusion")
#: The LaMo pipeline class of each backbone family (``lamo.pipelines.PIPELINES``, by name: importing the
#: pipelines takes seconds); ``cogvideox-demo`` is a CogVideoX.
PIPELINE_NAMES = {"cogvideox": "LaMoCogVideoXPipeline", "wan": "LaMoWanPipeline",
                  "hunyuanvideo": "LaMoHunyuanVideoPipeline", "ltx": "LaMoLTXPipeline"}

#: Hub id → (text embedding width D, latent channels C) of backbones whose transformer config is public: what a
#: prior for them must have been trained on (CogVideoX: T5-XXL, Wan: umT5-XXL, both 4096-wide; Wan 2.2 TI2V-5B's
#: VAE has 48 latent channels, the others 16). Ids not listed are checked against their config in the local Hub
#: cache, when it is there.
KNOWN_BACKBONES: dict[str, tuple[int, int]] = {
    **{f"{owner}/{name}": (4096, 16) for owner in ("THUDM", "zai-org")
       for name in ("CogVideoX-2b", "CogVideoX-5b", "CogVideoX-5b-I2V", "CogVideoX1.5-5B", "CogVideoX1.5-5B-I2V")},
    **{f"Wan-AI/{name}-Diffusers": (4096, 16)
       for name in ("Wan2.1-T2V-1.3B", "Wan2.1-T2V-14B", "Wan2.1-I2V-14B-480P", "Wan2.1-I2V-14B-720P",
                    "Wan2.1-FLF2V-14B-720P", "Wan2.1-VACE-1.3B", "Wan2.1-VACE-14B", "Wan2.2-T2V-A14B",
                    "Wan2.2-I2V-A14B")},
    "Wan-AI/Wan2.2-TI2V-5B-Diffusers": (4096, 48),
}
# bookkeeping keys of a run's config.yaml that say nothing about how the prior was trained
_BOOKKEEPING = {"out", "resume_from_checkpoint", "max_steps_this_run", "log_with", "save_every"}
_WEIGHTS = re.compile(r"diffusion_pytorch_model(\.[\w-]+)?(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?")
_QUALITY_HINT = "a table.json written by `lamo eval prior` (lamo.prior_quality.write_prior_quality)"


# ---------------------------------------------------------------------------------------------
# What the folder says: training and quality
# ---------------------------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read {what} {path} ({type(e).__name__}: {e})") from e


def _split_stats(stats: Mapping[str, Any]) -> dict[str, dict]:
    """A flat stats mapping → ``{"settings": …, "validation": …}`` (``val_*`` keys are validation)."""
    if "settings" in stats or "validation" in stats:
        return {"settings": dict(stats.get("settings") or {}), "validation": dict(stats.get("validation") or {}),
                "sources": list(stats.get("sources") or [])}
    return {"settings": {k: v for k, v in stats.items() if not str(k).startswith("val_")},
            "validation": {k: v for k, v in stats.items() if str(k).startswith("val_")}, "sources": []}


def training_info(folder: str | os.PathLike) -> dict[str, Any]:
    """What a prior folder says about its training → ``{"settings", "validation", "sources"}`` (empty when nothing).

    ``settings``: the run's hyper-parameters (recipe, preset, steps, lr …); ``validation``: ``val_loss``,
    ``val_cosine`` (and ``val_*_before`` from ``lamo demo``, ``step`` of the checkpoint they come from);
    ``sources``: the files read. See the module docstring for where each comes from.
    """
    import yaml

    from .training.checkpoints import latest_checkpoint

    folder = Path(folder)
    info: dict[str, Any] = {"settings": {}, "validation": {}, "sources": []}
    stats = folder / "training_stats.json"
    if stats.is_file():
        data = _read_json(stats, "the training stats")
        if not isinstance(data, dict):
            raise InputError(f"{stats} is not a JSON object of training stats")
        info = _split_stats(data)
        info["sources"] = [stats.name]
    run = folder.parent / "config.yaml"
    if folder.name == "prior" and run.is_file():
        try:
            cfg = yaml.safe_load(run.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise InputError(f"cannot read the training run's config {run} ({type(e).__name__}: {e})") from e
        if isinstance(cfg, dict):
            info["settings"].update({k: v for k, v in cfg.items() if k not in _BOOKKEEPING
                                     and v not in (None, "") and not isinstance(v, (dict, list))})
            info["sources"].append("../config.yaml")
        ckpt = latest_checkpoint(folder.parent / "checkpoints")
        if ckpt is not None:
            state = _read_json(ckpt / "trainer_state.json", "the checkpoint state")
            val = {k: v for k, v in state.items() if str(k).startswith("val_")} if isinstance(state, dict) else {}
            if val:
                info["validation"].update(val, step=state.get("step"))
                info["sources"].append(f"../checkpoints/{ckpt.name}/trainer_state.json")
    return info


def load_quality(source: "PriorQuality | Mapping[str, Any] | str | os.PathLike") -> tuple["PriorQuality", dict]:
    """A prior-quality result → ``(PriorQuality, provenance)``.

    ``source``: a :class:`~lamo.prior_quality.PriorQuality`; its ``to_dict()``; or the ``table.json`` of
    ``lamo eval prior`` (or the folder holding it), whose extra keys (``commit``, ``date``, ``command`` …)
    come back as ``provenance``. A missing file raises :class:`~lamo.errors.MissingInputError`, one that is
    not such a table :class:`~lamo.errors.InputError`.
    """
    from .prior_quality import CounterfactualRow, PriorQuality

    if isinstance(source, PriorQuality):
        return source, {}
    where = "the prior-quality result"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            path = path / "table.json"
        if not path.is_file():
            raise MissingInputError(f"prior-quality table {path} not found; pass {_QUALITY_HINT}")
        where = str(path)
        source = _read_json(path, "the prior-quality table")
    if not isinstance(source, Mapping):
        raise InputError(f"{where} is not {_QUALITY_HINT} (expected a JSON object)")
    names = {"rows", "cosine", "cosine_std", "n", "tau", "tie_rtol", "confidence", "source", "meta"}
    row_names = set(CounterfactualRow.__dataclass_fields__)
    try:
        rows = [CounterfactualRow(**{**{k: v for k, v in r.items() if k in row_names},
                                     "ci": tuple(r["ci"]), "reference_ci": tuple(r["reference_ci"])})
                for r in source["rows"]]
        result = PriorQuality(**{k: v for k, v in source.items() if k in names and k != "rows"}, rows=rows)
        float(result.cosine), int(result.n), int(result.tau)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InputError(f"{where} is not {_QUALITY_HINT}: {type(e).__name__}: {e}") from e
    provenance = {k: v for k, v in source.items() if k not in names and k != "table"}
    return result, provenance


def _hub_id(value: Any) -> str | None:
    """``value`` when it reads as a Hub repo id (``owner/name``) and is not a local path, else ``None``."""
    if isinstance(value, str) and HUB_ID.fullmatch(value) and not os.path.exists(value):
        return value
    return None


def _backbone_widths(repo_id: str) -> tuple[int, int, str] | None:
    """``(text width, latent channels, where that was read)`` of Hub model ``repo_id``: from
    :data:`KNOWN_BACKBONES`, else from its ``transformer/config.json`` in the local Hub cache; ``None`` when neither
    knows it (nothing is downloaded)."""
    if repo_id in KNOWN_BACKBONES:
        return (*KNOWN_BACKBONES[repo_id], "its published config")
    try:
        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(repo_id, "transformer/config.json")
        config = json.loads(Path(path).read_text()) if isinstance(path, str) else None
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    width = config.get("text_embed_dim", config.get("text_dim"))  # CogVideoX, Wan
    channels = config.get("out_channels")
    if not isinstance(width, int):
        return None
    return width, channels if isinstance(channels, int) else None, "its config in the local Hub cache"


def check_base_model(config: Mapping[str, Any], base_model: str) -> None:
    """Refuse (:class:`~lamo.errors.InputError`, one line) a ``base_model`` the prior of ``config`` cannot guide: its
    text embedding width ``D`` (``text_embed_dim``) or latent channels ``C`` differ from the model's. A model whose
    widths are not known here (:func:`_backbone_widths`) is accepted unchecked."""
    known = _backbone_widths(base_model)
    if known is None:
        return
    width, channels, source = known
    problems = []
    if config.get("text_embed_dim") != width:
        problems.append(f"{width}-wide text embeddings, the prior was trained on {config.get('text_embed_dim')}-wide "
                        "ones (text_embed_dim)")
    if channels is not None and config.get("latent_channels") != channels:
        problems.append(f"{channels} latent channels, the prior {config.get('latent_channels')}")
    if problems:
        raise InputError(f"base model {base_model} does not fit this prior: the model has {'; '.join(problems)} "
                         f"(from {source}); name the backbone the prior was trained for, or train a prior on "
                         f"{base_model}'s own latents (`lamo cache --model {base_model}`, then `lamo train prior`)")


def _base_model_of(settings: Mapping[str, Any]) -> str | None:
    """The backbone's Hub id, when the training settings know it: the fine-tuned ``model``, the ``aug_model``
    whose scheduler was used, or the model the latent ``cache`` was made with."""
    for key in ("model", "aug_model"):
        if hub := _hub_id(settings.get(key)):
            return hub
    cache = settings.get("cache")
    manifest = Path(str(cache)) / "manifest.json" if cache else None
    if manifest is not None and manifest.is_file():
        try:
            return _hub_id(json.loads(manifest.read_text()).get("config", {}).get("model"))
        except (OSError, ValueError, AttributeError):
            return None
    return None


# ---------------------------------------------------------------------------------------------
# The card
# ---------------------------------------------------------------------------------------------


def _family_tag(backbone: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", backbone.lower()).strip("-")


def _preset_of(config: Mapping[str, Any]) -> str | None:
    """The :data:`~lamo.prior.PRIOR_PRESETS` entry the config is, if any."""
    from .prior import PRIOR_PRESETS

    for name, preset in PRIOR_PRESETS.items():
        same_arch = (config.get("arch") == "release") == (name == "release")
        if same_arch and all(config.get(k) == v for k, v in preset.items()):
            return name
    return None


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "–" if not math.isfinite(v) else f"{v:.4g}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (what the Hub renders)."""
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _quality_section(quality: "PriorQuality", provenance: Mapping[str, Any]) -> str:
    """The card's "Prior quality" section: validation cosine and the win-rate table of :mod:`lamo.prior_quality`."""
    pct = lambda x: "–" if not math.isfinite(x) else f"{100 * x:.1f}"  # noqa: E731
    made = ", ".join(f"{k} {provenance[k]}" for k in ("lamo_version", "commit", "date") if provenance.get(k))
    lines = ["## Prior quality", "",
             f"Measured with `lamo.prior_quality` (`lamo eval prior`) on {quality.source or 'held-out clips'}"
             + (f" ({made})" if made else "") + ".", "",
             f"* validation cosine of the field to Δ_τ z (τ = {quality.tau}): **{quality.cosine:.3f}** ± "
             f"{quality.cosine_std:.3f} over {quality.n} clips;"]
    if not quality.rows:
        return "\n".join(lines + ["* no counterfactual was scored."])
    rows = [[f"`{r.name}`", r.description, r.n, f"{pct(r.win_rate)} [{pct(r.ci[0])} – {pct(r.ci[1])}]",
             pct(r.reference_win_rate), f"{r.ratio:.3g}", f"{r.wins}/{r.ties}/{r.losses}", f"{r.p_value:.2g}"]
            for r in quality.rows]
    lines += ["* win rate: how often the real clip's guidance loss L_guide is lower than that of its "
              "counterfactual (ties count half; 50 % = cannot tell). Read it against the f ≡ 0 reference — the same "
              "comparison with a zero field, i.e. motion energy alone, what an untrained prior scores.", "",
              _table(["counterfactual", "what it does", "n",
                      f"win rate % [{int(round(100 * quality.confidence))} % CI]", "f ≡ 0 ref. %", "L ratio",
                      "wins/ties/losses", "p"], rows)]
    if notes := [f"* `{r.name}`: {r.note}" for r in quality.rows if r.note]:
        lines += ["", "Notes:", "", *notes]
    if provenance.get("command"):
        lines += ["", f"Command: `{provenance['command']}`"]
    return "\n".join(lines)


def prior_model_card(
    prior: "MotionPrior | Mapping[str, Any]",
    *,
    training: Mapping[str, Any] | str | os.PathLike | None = None,
    quality: "PriorQuality | Mapping[str, Any] | str | os.PathLike | None" = None,
    base_model: str | None = None,
    repo_id: str | None = None,
    license: str = LICENSE,
    num_parameters: int | None = None,
) -> "ModelCard":
    """The Hugging Face model card of a motion prior.

    Args:
        prior: the :class:`~lamo.prior.MotionPrior` (or its ``config`` as a mapping, then give ``num_parameters``).
        training: its training — a prior folder (read by :func:`training_info`), a mapping of stats like
            ``training_stats.json`` (``val_*`` keys are validation numbers, the rest settings), or ``None``.
        quality: the prior-quality result (anything :func:`load_quality` takes), or ``None``.
        base_model: the backbone's Hub id (front matter ``base_model``); default: the one the training
            settings name, if any is a Hub id.
        repo_id: the Hub repo the card is for (used in the loading example; default ``user/repo``).
        license: the card's licence (``apache-2.0``, LaMo's).

    Returns:
        A :class:`huggingface_hub.ModelCard`; ``card.save(path)`` writes it, ``ModelCard.load(path)`` reads it back.
    """
    from huggingface_hub import ModelCard, ModelCardData

    config = dict(prior) if isinstance(prior, Mapping) else dict(prior.config)
    if "latent_channels" not in config or "text_embed_dim" not in config:
        raise InputError("prior_model_card: not a MotionPrior config (latent_channels / text_embed_dim missing)")
    if num_parameters is None and not isinstance(prior, Mapping):
        num_parameters = sum(p.numel() for p in prior.parameters())
    if isinstance(training, (str, os.PathLike)):
        training = training_info(training)
    train = _split_stats(training) if training else {"settings": {}, "validation": {}, "sources": []}
    if base_model is not None and not _hub_id(base_model):
        raise InputError(f"base_model {base_model!r} is not a Hugging Face Hub id (owner/name)")
    if base_model is not None:
        check_base_model(config, base_model)
    base_model = base_model or _base_model_of(train["settings"])
    q, provenance = load_quality(quality) if quality is not None else (None, {})

    backbone = str(config.get("backbone") or "")
    family = _family_tag(backbone)
    repo = repo_id or "user/repo"
    name = repo_id.split("/")[-1] if repo_id else f"LaMo motion prior{f' for {backbone}' if backbone else ''}"
    preset = _preset_of(config)
    val = train["validation"]
    val_cos = val.get("val_cosine", q.cosine if q is not None else None)

    lamo_meta = {k: config.get(k) for k in ("backbone", "latent_channels", "text_embed_dim", "tau", "arch")}
    if val_cos is not None:
        lamo_meta["validation_cosine"] = round(float(val_cos), 4)
    data = ModelCardData(library_name="lamo", license=license, tags=[*TAGS, *([family] if family else [])],
                         base_model=base_model, model_name=name, lamo=lamo_meta,
                         **({"base_model_relation": "adapter"} if base_model else {}))

    pipe_cls = next((cls for fam, cls in PIPELINE_NAMES.items() if family.startswith(fam)), None)
    backbone_id = base_model or "BACKBONE"
    load = ["```python", "from lamo import MotionPrior", "", f'prior = MotionPrior.from_pretrained("{repo}")', "```"]
    if pipe_cls:
        load += ["", "Guide sampling with it (Motion Prior Guidance; λ is `motion_guidance_scale`):", "",
                 "```python", f"from lamo.pipelines import {pipe_cls}", "",
                 f'pipe = {pipe_cls}.from_pretrained("{backbone_id}")'
                 + ("" if base_model else "  # the backbone's Hub id or folder"),
                 f'pipe.load_motion_prior("{repo}")  # refuses a prior trained for another latent space / text encoder',
                 'video = pipe("a red ball bounces on the floor", motion_guidance_scale=1.0).frames[0]', "```"]
    else:
        load += ["", f'With a LaMo pipeline of the backbone: `pipe.load_motion_prior("{repo}")`.']

    cfg_rows = [["backbone family", backbone or "(not recorded)"], ["base model", base_model or "(not recorded)"],
                ["latent channels C", config.get("latent_channels")],
                ["text embedding width D", config.get("text_embed_dim")],
                ["lag τ (latent frames)", config.get("tau")],
                ["architecture", config.get("arch", "lamo") + (f" (preset `{preset}`)" if preset else "")],
                ["hidden width × blocks", f"{config.get('hidden_channels')} × {config.get('num_blocks')}"],
                ["condition width", config.get("cond_dim")]]
    if config.get("arch") == "release":
        cfg_rows += [["squeeze-and-excitation", config.get("squeeze_excite")],
                     ["second order", config.get("second_order")]]
    if num_parameters is not None:
        cfg_rows.append(["parameters", f"{num_parameters / 1e6:.2f} M"])
    cfg_rows += [["loss", f"MSE + {config.get('cosine_weight')}·(1 − cos)"],
                 ["prompt dropout", config.get("prompt_dropout")],
                 ["input noise", f"p = {config.get('noise_aug_prob')}, std {config.get('noise_aug_std')}"
                                 + (" · √(1 − ᾱ_t)" if config.get("noise_aug") == "diffusion" else "")]]

    body = [
        "",
        f"# {name}",
        "",
        f"A LaMo **motion prior**: the micro motion field f_φ(z_i, c) ≈ Δ_τ z_i = z_(i+τ) − z_i "
        f"on the latents of a {backbone or 'video diffusion'} backbone, conditioned on the backbone's own pooled "
        "prompt embedding. Motion Prior Guidance descends its loss while sampling, steering videos toward motion "
        "the prior finds plausible. It is not a generator: it works only beside the backbone whose latents "
        f"({config.get('latent_channels')} channels) and text encoder ({config.get('text_embed_dim')}-d) it was "
        "trained on.",
        "",
        "## Use",
        "",
        "With LaMo installed (the `lamo` Python package):",
        "",
        *load,
        "",
        "The files are `config.json` and `diffusion_pytorch_model.safetensors` (safetensors only; nothing is "
        "unpickled when loading).",
        "",
        "## Configuration",
        "",
        _table(["", ""], cfg_rows),
        "",
        "## Training",
        "",
    ]
    if train["settings"]:
        body += [_table(["setting", "value"], [[f"`{k}`", v] for k, v in train["settings"].items()]), ""]
    if val:
        line = [f"validation cosine to Δ_τ z **{float(val['val_cosine']):.3f}**"] if "val_cosine" in val else []
        if "val_cosine_before" in val:
            line.append(f"before training {float(val['val_cosine_before']):.3f}")
        if "val_loss" in val:
            line.append(f"validation loss {float(val['val_loss']):.4g}")
        if val.get("step") is not None:
            line.append(f"at step {val['step']}")
        body += ["Held-out clips of the training data: " + ", ".join(line) + ".", ""]
    if not (train["settings"] or val):
        body += ["Not recorded with this prior.", ""]
    if train["sources"]:
        body += [f"(From {', '.join(f'`{s}`' for s in train['sources'])} beside the prior.)", ""]
    if q is not None:
        body += [_quality_section(q, provenance), ""]
    else:
        body += ["## Prior quality", "",
                 "Not measured for this card. `lamo eval prior --prior FOLDER --cache CACHE --out OUT` scores it "
                 "(validation cosine and win rates against reversed, shuffled, frozen and re-timed clips); "
                 "`lamo share card FOLDER --quality OUT/table.json` adds the table here.", ""]
    body += ["## License", "", f"{license} (LaMo's licence); the backbone keeps its own.", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n" + "\n".join(body))


def check_prior_folder(folder: str | os.PathLike) -> None:
    """Refuse, naming what is missing, a path that is not a prior folder (no folder, no ``config.json``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(f"prior folder {folder} not found")
    if not (folder / "config.json").is_file():
        release = (folder / "predictor.safetensors").is_file()
        raise InputError(f"{folder} is not a LaMo motion prior folder: config.json is missing (a prior folder holds "
                         "config.json and diffusion_pytorch_model.safetensors, written by MotionPrior.save_pretrained "
                         "or `lamo train prior`)" + ("; this is the authors' release: convert it first with "
                                                    "`lamo convert release-predictor SRC OUT` and share OUT"
                                                    if release else ""))


def write_model_card(
    folder: str | os.PathLike,
    prior: "MotionPrior | None" = None,
    *,
    training: Mapping[str, Any] | str | os.PathLike | None = "auto",
    quality: "PriorQuality | Mapping[str, Any] | str | os.PathLike | None" = None,
    base_model: str | None = None,
    repo_id: str | None = None,
    license: str = LICENSE,
) -> Path:
    """Write (or refresh) ``folder/README.md``, the model card of the prior saved in ``folder``; return its path.

    ``prior``: the prior saved there (default: loaded from ``folder``, which also checks it is a prior folder).
    ``training="auto"``: what the folder says (:func:`training_info`); other values as :func:`prior_model_card`.
    A ``README.md`` already there is replaced.
    """
    from .prior import MotionPrior

    folder = Path(folder)
    check_prior_folder(folder)
    if prior is None:
        prior = MotionPrior.from_pretrained(folder)
    if isinstance(training, str) and training == "auto":
        training = training_info(folder)
    card = prior_model_card(prior, training=training, quality=quality, base_model=base_model, repo_id=repo_id,
                            license=license)
    path = folder / CARD_FILE
    card.save(path)
    return path


# ---------------------------------------------------------------------------------------------
# Upload
# ---------------------------------------------------------------------------------------------


def folder_files(folder: str | os.PathLike) -> list[str]:
    """The files of a prior folder that are shared: ``config.json``, the safetensors weights (and their
    index), ``README.md`` and ``training_stats.json`` when present. Anything else (``lora/`` of a converted
    release, logs) stays local."""
    folder = Path(folder)
    keep = {"config.json", CARD_FILE, "training_stats.json"}
    return sorted(p.name for p in folder.iterdir() if p.is_file() and (p.name in keep or _WEIGHTS.fullmatch(p.name)))


def _upload(prior_like: Any, files_dir: str, repo_id: str, *, private: bool | None, token: str | None,
            commit_message: str | None, create_pr: bool, subfolder: str | None) -> Any:
    """``create_repo`` then ``upload_folder`` through diffusers' hub helpers (what ``ModelMixin.push_to_hub`` calls)."""
    from diffusers.utils import hub_utils

    repo_id = hub_utils.create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
    return prior_like._upload_folder(files_dir, repo_id, token=token, commit_message=commit_message,
                                     create_pr=create_pr, subfolder=subfolder)


def push_prior_to_hub(
    prior: "MotionPrior",
    repo_id: str,
    *,
    commit_message: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    create_pr: bool = False,
    safe_serialization: bool = True,
    variant: str | None = None,
    subfolder: str | None = None,
    model_card: "bool | Mapping[str, Any] | ModelCard" = True,
) -> Any:
    """Upload ``prior`` to the Hub repo ``repo_id`` (created if needed) with its model card.

    The same steps as diffusers' ``PushToHubMixin.push_to_hub`` — ``create_repo``, ``save_pretrained`` into
    a temporary folder, ``upload_folder`` — except that the ``README.md`` is the prior's card
    (:func:`prior_model_card`; ``model_card`` a mapping: its keyword arguments, e.g. ``training=``,
    ``quality=``, ``base_model=``; a :class:`~huggingface_hub.ModelCard`: that card), written fresh: a card
    already on the Hub is replaced. With ``subfolder`` no card is written (a card belongs at the repo root).
    """
    from huggingface_hub import ModelCard

    if not model_card:
        raise InputError("push_prior_to_hub: model_card=False is diffusers' own push_to_hub; call that instead")
    with tempfile.TemporaryDirectory(prefix="lamo-push-") as tmp:
        prior.save_pretrained(tmp, safe_serialization=safe_serialization, variant=variant)
        if not subfolder:
            if isinstance(model_card, ModelCard):
                card = model_card
            else:
                opts = {} if model_card is True else dict(model_card)
                card = prior_model_card(prior, repo_id=opts.pop("repo_id", repo_id), **opts)
            card.save(os.path.join(tmp, CARD_FILE))
        return _upload(prior, tmp, repo_id, private=private, token=token, commit_message=commit_message,
                       create_pr=create_pr, subfolder=subfolder)


def push_prior_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    create_pr: bool = False,
    write_card: bool | str | Mapping[str, Any] = "missing",
) -> tuple[Any, list[str]]:
    """Upload the shared files of a prior folder (:func:`folder_files`) as they are — the weights byte for byte —
    to ``repo_id``; return ``(the upload's result, the files uploaded)``.

    ``write_card``: ``"missing"`` (default) writes ``README.md`` (:func:`write_model_card`, ``repo_id`` in its
    loading example) only when the folder has none, so a card edited after ``lamo share card`` goes as it is;
    ``True`` or a mapping of :func:`write_model_card` keyword arguments always (re)writes it; ``False`` never.
    """
    from .prior import MotionPrior

    folder = Path(folder)
    check_prior_folder(folder)
    prior = MotionPrior.from_pretrained(folder)  # refuses a folder that is not a loadable prior
    if write_card == "missing":
        write_card = not (folder / CARD_FILE).is_file()
    if write_card:
        opts = {} if write_card is True else dict(write_card)
        write_model_card(folder, prior, **{"repo_id": repo_id, **opts})
    files = folder_files(folder)
    with tempfile.TemporaryDirectory(prefix="lamo-push-") as tmp:
        for name in files:
            shutil.copy2(folder / name, Path(tmp) / name)
        result = _upload(prior, tmp, repo_id, private=private, token=token,
                         commit_message=commit_message or "Upload LaMo motion prior", create_pr=create_pr,
                         subfolder=None)
    return result, files
