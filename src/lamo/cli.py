"""``lamo`` command line. Each module in :mod:`lamo.commands` adds its sub-commands through
``register(subparsers)``; ``main`` returns the process exit code (non-zero on failure)."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    from . import commands

    parser = argparse.ArgumentParser(prog="lamo", description="Latent motion priors for video diffusion.")
    parser.add_argument("--version", action="version", version=f"lamo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .video_io import VideoReadError

    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, TypeError, VideoReadError) as e:
        # Errors the library raises for bad input carry a message meant for the user.
        print(f"lamo {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
