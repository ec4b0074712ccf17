"""``lamo share``: share a motion prior like a model (:mod:`lamo.model_card`).

* ``lamo share card PRIOR_DIR [--quality OUT/table.json] [--base-model ID] [--repo-id ID]`` — write (or
  refresh) ``PRIOR_DIR/README.md``, the prior's Hugging Face model card: backbone family, latent channels,
  text width, τ, architecture, training settings and validation cosine (read from the folder), and the
  prior-quality table of ``lamo eval prior``. Offline; edit the card freely before pushing.
* ``lamo share push PRIOR_DIR REPO_ID [--private]`` — upload ``config.json``, the safetensors weights,
  ``README.md`` (written first when the folder has none) and ``training_stats.json`` to the Hub repo
  ``REPO_ID``. Needs the network and a write token (``hf auth login`` or ``HF_TOKEN``).
* ``lamo share lora FINETUNE --format comfyui --out FILE [--family F]`` — a fine-tune's LoRA (diffusers / PEFT
  keys) as a ComfyUI LoRA file (``diffusion_model.<ComfyUI layer>.lora_up/lora_down/alpha``) for HunyuanVideo,
  LTX-Video and Wan (:mod:`lamo.lora_export`).

Anyone can then load it with ``MotionPrior.from_pretrained("REPO_ID")`` or ``pipe.load_motion_prior("REPO_ID")``.
"""
from __future__ import annotations

import argparse

__all__ = ["register"]

_HUB_MODULES = ("huggingface_hub", "httpx", "httpx2", "requests", "urllib3")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("share", help="share a motion prior on the Hugging Face Hub: model card and upload",
                       description="Share a motion prior like a model: `card` writes its Hugging Face model card (offline), "
                                   "`push` uploads it to the Hub, `lora` writes a fine-tune's LoRA in the key layout "
                                   "ComfyUI loads. Anyone can then load a pushed prior with "
                                   "MotionPrior.from_pretrained(REPO_ID) or pipe.load_motion_prior(REPO_ID).")
    ssub = p.add_subparsers(dest="share_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    c = ssub.add_parser("card", help="write PRIOR_DIR/README.md, the prior's model card (offline)",
                        description="Writes (or replaces) the Hugging Face model card README.md in a prior folder.")
    c.add_argument("prior", metavar="PRIOR_DIR", help="motion prior folder (config.json + safetensors)")
    c.add_argument("--quality", metavar="TABLE", default=None,
                   help="table.json of `lamo eval prior` (or its folder): its win-rate table goes in the card")
    c.add_argument("--base-model", metavar="ID", default=None,
                   help="the backbone's Hub id (front matter base_model; default: the one the training run names)")
    c.add_argument("--repo-id", metavar="ID", default=None,
                   help="the Hub repo it will live in, for the card's loading example (default: user/repo)")
    c.add_argument("--overwrite", action="store_true",
                   help="replace a README.md that LaMo did not write (a hand-written one is kept otherwise; a card "
                        "LaMo wrote is refreshed) (default: off)")
    c.set_defaults(func=_card)

    u = ssub.add_parser("push", help="upload a prior folder with its model card to a Hub repo (needs network)",
                        description="Uploads config.json, the safetensors weights, README.md (written first when "
                                    "missing; refreshed with --quality / --base-model) and training_stats.json.")
    u.add_argument("prior", metavar="PRIOR_DIR", help="motion prior folder (config.json + safetensors)")
    u.add_argument("repo_id", metavar="REPO_ID", help="Hub repo to upload to, owner/name (created if needed)")
    u.add_argument("--private", action="store_true", help="create the repo private (ignored if it exists)")
    u.add_argument("--quality", metavar="TABLE", default=None, help="rewrite the card with this prior-quality table")
    u.add_argument("--base-model", metavar="ID", default=None, help="rewrite the card with this base model id")
    u.add_argument("--commit-message", default=None, help="the Hub commit message")
    u.add_argument("--overwrite", action="store_true",
                   help="with --quality / --base-model: replace a README.md that LaMo did not write (default: off)")
    u.set_defaults(func=_push)

    lo = ssub.add_parser("lora", help="a fine-tune's LoRA in the key layout ComfyUI loads (offline)",
                         description="Writes the LoRA of a `lamo train finetune` run (or any diffusers / PEFT LoRA "
                                     "file) with the layer names and fused layers of ComfyUI's own model.")
    lo.add_argument("source", metavar="FINETUNE",
                    help="fine-tune folder (OUT or OUT/lora) or a diffusers LoRA .safetensors file")
    lo.add_argument("--format", choices=["comfyui"], default="comfyui", help="key layout to write (default: comfyui)")
    lo.add_argument("--family", default=None,
                    help="backbone family: hunyuanvideo, ltx or wan (default: the fine-tune's model, from its "
                         "config.yaml)")
    lo.add_argument("--out", required=True, help="the .safetensors file to write")
    lo.set_defaults(func=_lora)


def _keep_hand_written_card(folder: str, overwrite: bool) -> None:
    """Refuse to replace a ``README.md`` in ``folder`` that is not a card LaMo wrote (its front matter says
    ``library_name: lamo``), unless ``overwrite``."""
    from pathlib import Path

    from ..errors import InputError

    card = Path(folder) / "README.md"
    if overwrite or not card.is_file():
        return
    text = card.read_bytes().decode("utf-8", errors="replace")
    front = text.split("\n---", 1)[0] if text.startswith("---") else ""
    if "library_name: lamo" not in front:
        raise InputError(f"{card} is not a model card LaMo wrote (no 'library_name: lamo' front matter): it is kept; "
                         "pass --overwrite to replace it, or move it aside")


def _card(args: argparse.Namespace) -> int:
    from ..model_card import write_model_card

    _keep_hand_written_card(args.prior, args.overwrite)
    path = write_model_card(args.prior, quality=args.quality, base_model=args.base_model, repo_id=args.repo_id)
    print(f"wrote {path}")
    return 0


def _lora(args: argparse.Namespace) -> int:
    from ..lora_export import export_comfyui, finetune_family

    family = args.family or finetune_family(args.source)
    path = export_comfyui(args.source, args.out, family)
    print(f"wrote {path} ({args.format} layout, {family}); load it with ComfyUI's LoraLoaderModelOnly")
    return 0


def _check_hub_access() -> None:
    """Refuse before any upload when the Hub cannot be reached: offline mode, or no token."""
    import huggingface_hub
    from huggingface_hub import constants

    from ..errors import UserError

    if constants.HF_HUB_OFFLINE:
        raise UserError("the Hugging Face Hub is switched off here (HF_HUB_OFFLINE is set); unset it on a machine "
                        "with network access, or copy the prior folder there and push from it")
    if huggingface_hub.get_token() is None:
        raise UserError("not logged in to the Hugging Face Hub: run `hf auth login` with a write token (or set "
                        "HF_TOKEN), then push again")


def _push(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..model_card import check_prior_folder, push_prior_folder, write_model_card

    check_prior_folder(args.prior)
    if args.quality or args.base_model:  # offline first: a bad table is refused before any network call
        _keep_hand_written_card(args.prior, args.overwrite)
        write_model_card(args.prior, quality=args.quality, base_model=args.base_model, repo_id=args.repo_id)
    _check_hub_access()
    try:
        _, files = push_prior_folder(args.prior, args.repo_id, private=args.private or None,
                                     commit_message=args.commit_message)
    except Exception as e:  # noqa: BLE001 — network and Hub errors become one line; anything else is a bug
        if not (isinstance(e, OSError) or type(e).__module__.split(".")[0] in _HUB_MODULES):
            raise
        raise UserError(f"could not upload to the Hugging Face Hub repo {args.repo_id!r} ({type(e).__name__}: {e}). "
                        "Check the network, that you are logged in with a write token (`hf auth login` or HF_TOKEN) "
                        "and may write to that owner; the card is in the prior folder's README.md") from e
    print(f"uploaded {', '.join(files)} to https://huggingface.co/{args.repo_id}")
    print(f'load it with MotionPrior.from_pretrained("{args.repo_id}") or pipe.load_motion_prior("{args.repo_id}")')
    return 0
