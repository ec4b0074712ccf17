"""``lamo`` command line. Each module in :mod:`lamo.commands` adds its sub-commands through
``register(subparsers)``; ``main`` returns the process exit code (non-zero on failure).

Exit status: 0 success; 2 a mistake in the input (:class:`lamo.errors.UserError`, printed on one line) or a
missing piece (:func:`missing_piece`: an optional package not installed, a Hub model that cannot be fetched, a
model folder without its ``model_index.json``; one line saying what is missing and how to get it); 1 a failed
run or a bug (any other exception: its traceback is printed, with a line saying it is a bug); 130 interrupted.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import re
import sys
import traceback
from pathlib import Path

from ._version import __version__

_PACKAGE = Path(__file__).resolve().parent


def command_names() -> list[str]:
    """The modules of :mod:`lamo.commands` that add a command (each adds the command of its own name)."""
    from . import commands

    # a name starting with _ is a helper of another command (e.g. _eval_prior, under `lamo eval`)
    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))


class Parser(argparse.ArgumentParser):
    """argparse with LaMo's usage errors: one line, ``lamo CMD: error: --steps must be ≥ 1, got '0' (see lamo CMD
    --help)``, exit status 2 — no usage block. Sub-command parsers are of this class too (argparse makes them of
    their parent's class)."""

    def _get_values(self, action, arg_strings):  # noqa: D102 — argparse's hook
        if arg_strings == ["--"] and action.option_strings and action.nargs not in (argparse.PARSER, argparse.REMAINDER):
            # `--steps=--`: argparse would drop the "--" and store [] unchecked; the option's type= judges it
            value = self._get_value(action, "--")
            return value if action.nargs in (None, argparse.OPTIONAL) else [value]
        return super()._get_values(action, arg_strings)

    def error(self, message: str):  # noqa: D102 — argparse's hook
        m = re.fullmatch(r"argument (\S+): (must be .*)", message, re.S)
        if m:  # a range (lamo.commands._args.Number) or device the option's type= refused: "--steps must be …"
            message = f"{m.group(1)} {m.group(2)}"
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see `{self.prog} --help`)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``lamo`` argument parser with every command — or, with ``only``, just that command (what ``main`` builds
    to run one: the other command modules are not even imported)."""
    from . import commands

    parser = Parser(prog="lamo", description="Latent motion priors for video diffusion.")
    parser.add_argument("-V", "--version", action="version", version=f"lamo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_names():
        if only is None or name == only:
            importlib.import_module(f"{commands.__name__}.{name}").register(sub)
    if only is not None and only not in sub.choices:  # a module that adds a command of another name: build them all
        return build_parser()
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


def _chain(e: BaseException):
    """``e`` and the exceptions it was raised from or while handling (``__cause__``, ``__context__``), once each."""
    seen, todo = set(), [e]
    while todo:
        x = todo.pop(0)
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        todo += [x.__cause__, x.__context__]


def _named_model(e: BaseException, args: argparse.Namespace | None) -> str:
    """``--model owner/name``: the option of ``args`` whose value looks like a Hub id, is no local path, and (when
    several do) appears in the error's messages; ``"the model"`` when none does."""
    from .errors import HUB_ID

    found = [(k, v) for k, v in vars(args or argparse.Namespace()).items()
             if isinstance(v, str) and HUB_ID.fullmatch(v) and not os.path.exists(v)]
    text = " ".join(str(x) for x in _chain(e))
    named = [(k, v) for k, v in found if v in text] or found
    if not named:
        return "the model"
    key, value = named[0]
    return f"{value}" if key in ("model_dir", "src", "prior_dir") else f"--{key.replace('_', '-')} {value}"


def missing_piece(e: BaseException, args: argparse.Namespace | None = None) -> str | None:
    """One line for an error that says a piece is missing rather than that LaMo is broken; ``None`` otherwise.

    * an optional package not installed (an ``ImportError`` naming one of :data:`lamo.errors.OPTIONAL_PACKAGES`):
      what is missing and how to install it;
    * a Hugging Face Hub id that cannot be fetched — no network or ``HF_HUB_OFFLINE`` and not in the local cache,
      no such repository, a gated one, a revision or a file it lacks: which option, why, and what to do;
    * a local folder given as a diffusers model that has no ``model_index.json`` / ``config.json``.
    """
    from .errors import OPTIONAL_PACKAGES, install_advice

    for x in _chain(e):
        if isinstance(x, ImportError) and (x.name or "").split(".")[0] in OPTIONAL_PACKAGES:
            package = x.name.split(".")[0]
            return f"the package {package} is not installed and this needs it: {install_advice(package)}"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import errors as hub

        what = _named_model(e, args)
        for x in _chain(e):
            if isinstance(x, (hub.LocalEntryNotFoundError, hub.OfflineModeIsEnabled)):
                from huggingface_hub import constants

                why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "no network"
                return (f"{what}: no such local folder, and as a Hugging Face Hub id it cannot be fetched ({why}) "
                        "and is not in the local cache; give a local model folder, or download it where there is "
                        f"network (`hf download {what.split()[-1]}`) and use it here")
            if isinstance(x, hub.GatedRepoError):
                return (f"{what}: a gated model on the Hugging Face Hub; accept its terms on its Hub page, then log "
                        "in here with `hf auth login` (or set HF_TOKEN)")
            if isinstance(x, hub.RepositoryNotFoundError):
                return (f"{what}: no such local folder, nor a model on the Hugging Face Hub (a private one needs "
                        "`hf auth login`); check the spelling")
            if isinstance(x, hub.RevisionNotFoundError):
                return f"{what}: the Hub repository has no such revision"
            if isinstance(x, hub.EntryNotFoundError):
                return (f"{what}: the Hub repository has no model_index.json — not a diffusers pipeline; give a "
                        "diffusers model (e.g. THUDM/CogVideoX-2b) or a local pipeline folder")
    for x in _chain(e):
        m = re.search(r"[Nn]o file named (\S+) found in directory (.+?)\.?$", str(x))
        if isinstance(x, OSError) and m:
            return (f"{m.group(2)} has no {m.group(1)}: not a diffusers model folder (one saved with "
                    "save_pretrained, or downloaded from the Hub)")
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["--version"], ["-V"]):  # answered before any command module is imported
        print(f"lamo {__version__}")
        return 0
    from ._quiet import silence_notices

    silence_notices()  # before any command imports transformers or diffusers
    named = argv[0] if argv and argv[0] in command_names() else None
    parser = build_parser(only=named)  # `lamo CMD …` imports CMD's module alone; `lamo --help` lists them all
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0), or a usage error argparse printed on one line (2): the exit status
        return e.code if isinstance(e.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"lamo {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 — sorted into bad input and missing pieces (one line) and bugs (traceback)
        if is_user_error(e):
            print(f"lamo {args.command}: error: {e}", file=sys.stderr)
            return 2
        missing = missing_piece(e, args)
        if missing:
            print(f"lamo {args.command}: error: {missing}", file=sys.stderr)
            return 2
        traceback.print_exc()
        print(f"lamo {args.command}: internal error ({type(e).__name__}) — this is a bug in lamo or a library it "
              "calls, not a problem with your input; the traceback above says where. Please report it.",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
