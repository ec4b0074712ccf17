"""``lamo`` command line. Each module in :mod:`lamo.commands` adds its sub-commands through
``register(subparsers)``; ``main`` returns the process exit code (non-zero on failure).

Exit status: 0 success; 2 a mistake in the input (:class:`lamo.errors.UserError`, printed on one line);
1 a failed run or a bug (any other exception: its traceback is printed, with a line saying it is a bug);
130 interrupted.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback
from pathlib import Path

from ._version import __version__

_PACKAGE = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    from . import commands

    parser = argparse.ArgumentParser(prog="lamo", description="Latent motion priors for video diffusion.")
    parser.add_argument("-V", "--version", action="version", version=f"lamo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # helpers of other commands (e.g. _eval_prior, under `lamo eval`)
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def _raised_by_lamo(e: BaseException) -> bool:
    """Whether ``e`` was raised in LaMo's own code (its innermost frame is in this package), not in torch & co."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE)


def is_user_error(e: BaseException) -> bool:
    """A :class:`~lamo.errors.UserError`; or a ``ValueError`` / ``FileNotFoundError`` that LaMo itself raised —
    modules not yet moved to ``UserError`` still raise those for bad input. A ``TypeError``, or a ``ValueError``
    from inside torch, numpy or diffusers, is a bug and is not disguised as bad input."""
    from .errors import UserError

    if isinstance(e, UserError):
        return True
    return isinstance(e, (ValueError, FileNotFoundError)) and _raised_by_lamo(e)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["--version"], ["-V"]):  # answered before any command module is imported
        print(f"lamo {__version__}")
        return 0
    from ._quiet import silence_notices

    silence_notices()  # before any command imports transformers or diffusers
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"lamo {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 — sorted into bad input (one line) and bugs (traceback)
        if is_user_error(e):
            print(f"lamo {args.command}: error: {e}", file=sys.stderr)
            return 2
        traceback.print_exc()
        print(f"lamo {args.command}: internal error ({type(e).__name__}) — this is a bug in lamo or a library it "
              "calls, not a problem with your input; the traceback above says where. Please report it.",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
