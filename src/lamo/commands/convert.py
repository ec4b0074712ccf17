"""``lamo convert release-predictor SRC OUT``: the authors' released predictor as a LaMo prior folder."""
from __future__ import annotations

import argparse

from ..sampling import FAMILIES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert checkpoints of other codebases to LaMo's format")
    csub = p.add_subparsers(dest="convert_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    r = csub.add_parser(
        "release-predictor",
        help="the authors' release (predictor.safetensors, physical_lamo.* keys) → a MotionPrior folder",
        description="Reads the released temporal consistency predictor into MotionPrior(arch='release') and saves it "
                    "with save_pretrained; LoRA *.safetensors found beside it (or in --lora) are copied to OUT/lora. "
                    "Keys or shapes it cannot map are refused with a list of them.",
    )
    r.add_argument("src", help="predictor.safetensors, or the release folder holding it (and the LoRA weights)")
    r.add_argument("out", help="output folder: a LaMo prior (config.json + safetensors), LoRA files in OUT/lora")
    r.add_argument("--family", "--backbone", dest="backbone", choices=FAMILIES, default="cogvideox",
                   help="backbone family the predictor was trained on, as in `lamo sample --family` (--backbone is its "
                        "old name) (default: cogvideox)")
    r.add_argument("--lora", default=None, help="folder of the release's LoRA weights, when not beside SRC")
    r.set_defaults(func=_release_predictor)


def _release_predictor(args: argparse.Namespace) -> int:
    from ..convert import convert_release_predictor
    from ..prior import MotionPrior

    out = convert_release_predictor(args.src, args.out, backbone=args.backbone, lora=args.lora)
    cfg = MotionPrior.from_pretrained(out).config
    lora = " and LoRA weights in " + str(out / "lora") if (out / "lora").is_dir() else ""
    print(f"wrote {out}{lora}: MotionPrior(arch='release', latent_channels={cfg.latent_channels}, "
          f"text_embed_dim={cfg.text_embed_dim}, hidden_channels={cfg.hidden_channels}, num_blocks={cfg.num_blocks}, "
          f"cond_dim={cfg.cond_dim}, squeeze_excite={cfg.squeeze_excite}, second_order={cfg.second_order}, tau={cfg.tau})")
    return 0
