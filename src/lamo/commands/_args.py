"""The one typed layer between LaMo's dataclass configs and the command line.

Options are made from a dataclass the way :class:`transformers.HfArgumentParser` makes them (and with its yes/no
parser's rules): a field's type annotation gives the option's type (``int | None`` → an integer, ``bool`` → a
yes/no option, with ``--no-FIELD`` for fields that default to yes), and a field without a default is a required
option. It is written here, on argparse alone, because importing transformers costs ¾ s on every ``lamo --help``.
On top of that this module gives LaMo's commands:

* options are spelled with dashes only (``--batch-size``), as every other ``lamo`` option is;
* every option has help: the field's ``metadata["help"]``, else the text the command passes for it, else the
  comment after the field in the dataclass's source, followed by its default;
* with ``config_file=True`` the command takes ``--config FILE.yaml``: its options are then unset (``None``) unless
  given, and :func:`config_from_args` layers field defaults < the YAML file (each key checked against its field's
  type, naming the key) < the command line;
* :func:`yes_no` is the one yes/no parser of the command line (yes/no, true/false, y/n, t/f, 1/0, any case), for
  these options and hand-written ones alike;
* every numeric option declares its valid range with a :class:`Number` as its ``type=`` (:data:`COUNT`,
  :data:`SEED`, :data:`LR`, :data:`THREADS` …; for dataclass fields through ``add_config_command(types=…)``, which
  also checks ``--config`` values), and ``--device`` takes :func:`device`. A value outside the range is one line,
  ``lamo CMD: error: --steps must be ≥ 1, got '0'``, exit 2 (``tests/test_properties_cli.py`` checks every option).
"""
from __future__ import annotations

import argparse
import inspect
import io
import os
import re
import tokenize
import typing
from dataclasses import MISSING, fields
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import InputError, MissingInputError

__all__ = ["yes_no", "YES_NO", "add_config_command", "config_from_args", "read_config_file", "flag", "one_of",
           "world_preset", "Number", "COUNT", "POSITIVE", "NON_NEGATIVE", "SEED", "THREADS", "LR", "FRACTION",
           "INT_MAX", "FLOAT_MAX", "NON_NEGATIVE_REAL", "GIB", "device", "device_or_auto"]


def plain(doc: str) -> str:
    """A docstring paragraph as ``--help`` text: reST roles and double backquotes become plain words."""
    doc = re.sub(r":(?:mod|func|class|data|meth|attr):`~?([^`]+)`", r"\1", doc)
    return doc.replace("``", "`")


def yes_no(value: str | bool) -> bool:
    """The one yes/no parser: ``"yes"`` / ``"no"`` (and true/false, y/n, t/f, 1/0, any case) → bool, else an
    :class:`argparse.ArgumentTypeError` (argparse prints it as a usage error)."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"yes or no expected (also true/false, y/n, t/f, 1/0), got {value!r}")

#: metavar of yes/no options
YES_NO = "yes|no"


#: the largest whole number an integer option takes unless it says otherwise (a count, steps, a size …)
INT_MAX = 2**31 - 1
#: the largest number a real-valued option takes unless it says otherwise: what float32 holds (values go into tensors)
FLOAT_MAX = 3.4028234663852886e38


class Number:
    """An argparse ``type=`` for a number with its valid range declared: ``Number(int, 1)`` is a whole number ≥ 1
    (and ≤ :data:`INT_MAX`), ``Number(float, 0, 1, high_open=True)`` a finite number in [0, 1). NaN and ±inf are
    never valid; a real number above :data:`FLOAT_MAX` neither, unless ``high`` says so.

    A value outside the range is a usage error that says the range: ``lamo`` prints ``--steps must be ≥ 1, got 0``
    on one line (exit 2). :meth:`check` applies the same rule to a value from a ``--config`` file or from Python.
    Every numeric option of every ``lamo`` command is declared with one (``tests/test_properties_cli.py`` feeds
    each one values outside its range).
    """

    def __init__(self, kind: type, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False):
        if kind not in (int, float):
            raise TypeError(f"Number(kind) is int or float, got {kind!r}")
        self.kind, self.low, self.low_open, self.high_open = kind, low, low_open, high_open
        self.high = high if high is not None else (INT_MAX if kind is int else FLOAT_MAX)
        self.__name__ = "whole number" if kind is int else "number"  # argparse names the type in some messages

    def __repr__(self) -> str:
        return f"Number({self.kind.__name__}, {self.low}, {self.high}, low_open={self.low_open}, " \
               f"high_open={self.high_open})"

    def describe(self) -> str:
        """``≥ 1``, ``from 0 to 4294967295``, ``a finite number in [0, 1)`` …: what ``must be`` is followed by."""
        if self.kind is int:
            low = None if self.low is None else int(self.low) + (1 if self.low_open else 0)
            high = int(self.high) - (1 if self.high_open else 0)
            if low is None:
                return f"≤ {high}"
            return f"≥ {low}" if high == INT_MAX else f"from {low} to {high}"
        default_high = self.high == FLOAT_MAX and not self.high_open
        if self.low is None:
            return "a finite number" if default_high else f"a finite number {'<' if self.high_open else '≤'} {self.high:g}"
        if default_high:
            return f"a finite number {'>' if self.low_open else '≥'} {self.low:g}"
        return f"a finite number in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def contains(self, value: float) -> bool:
        """Whether ``value`` (an int or float already parsed) lies in the range."""
        import math

        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return value < self.high if self.high_open else value <= self.high

    def _problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or self.kind is int and isinstance(value, float):
            return f"must be {'a whole number ' if self.kind is int else ''}{self.describe()}"
        if not self.contains(value):
            if self.kind is float and FLOAT_MAX < abs(value) < float("inf") and self.high == FLOAT_MAX:
                return f"must be {self.describe()} that float32 holds (at most {FLOAT_MAX:.3g})"
            return f"must be {self.describe()}"
        return None

    def __call__(self, text: str) -> int | float:
        value: Any = text
        try:
            value = int(text.strip()) if self.kind is int else float(text)
        except (ValueError, OverflowError, AttributeError):
            pass
        problem = self._problem(value)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, got {text!r}")
        return value

    def check(self, value: Any, name: str) -> int | float:
        """``value`` (from a config file or Python) if it lies in the range, else :class:`InputError`
        ``NAME must be …, got VALUE``. An int is taken for a float option (as float)."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        problem = self._problem(value)
        if problem:
            raise InputError(f"{name} {problem}, got {value!r}")
        return value


#: whole numbers ≥ 1 (steps, sizes, counts, batch sizes)
COUNT = Number(int, 1)
#: whole numbers ≥ 0 (0 meaning off or "none")
NON_NEGATIVE = Number(int, 0)
#: finite numbers > 0
POSITIVE = Number(float, 0, low_open=True)
#: random seeds: what every random number generator LaMo uses takes (numpy's legacy ones stop at 2³² − 1)
SEED = Number(int, 0, 2**32 - 1)
#: torch CPU threads (0: torch's own choice)
THREADS = Number(int, 0, 4096)
#: a learning rate: finite, > 0, at most float32's largest number
LR = Number(float, 0, low_open=True)
#: a fraction in [0, 1]
FRACTION = Number(float, 0, 1)
#: finite numbers ≥ 0 (a guidance scale, a loss weight …)
NON_NEGATIVE_REAL = Number(float, 0)
#: a memory budget in GiB: > 0, at most a million
GIB = Number(float, 0, 1e6, low_open=True)


def device(value: str) -> str:
    """The ``type=`` of ``--device``: a torch device this machine has (``cpu``, ``cuda``, ``cuda:N``, ``mps``).
    A name torch does not know, or a GPU the machine lacks, is a usage error saying what to pass instead."""
    import torch

    try:
        dev = torch.device(value)
    except (RuntimeError, ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"must be a torch device (cpu, cuda, cuda:N or mps), got {value!r}") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise argparse.ArgumentTypeError(f"must be a device this machine has: {value!r} asked for, but torch "
                                             "sees no CUDA GPU here; pass --device cpu (or leave --device out)")
        if dev.index is not None and dev.index >= n:
            raise argparse.ArgumentTypeError(f"must be a device this machine has: {value!r} asked for, but torch sees "
                                             f"{n} CUDA GPU(s) (cuda:0 … cuda:{n - 1})")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise argparse.ArgumentTypeError(f"must be a device this machine has: {value!r} asked for, but torch has no "
                                         "MPS device here; pass --device cpu (or leave --device out)")
    return value


def device_or_auto(value: str) -> str:
    """:func:`device`, or ``auto`` (CUDA when available, else the CPU)."""
    return value if value == "auto" else device(value)


device.__name__ = device_or_auto.__name__ = "device"


def one_of(load: Callable[[], Iterable[str]], what: str, *, comma_list: bool = False) -> Callable[[str], Any]:
    """An argparse ``type=`` that accepts a name among ``load()`` — called only when the option is given, so the
    module that knows the names (and the torch or numpy it imports) is not loaded for ``--help``.

    ``comma_list``: the value is ``"a,b,c"``, returned as a list of names. An unknown name is a usage error that
    lists the choices.
    """
    def parse(value: str) -> Any:
        names = list(load())
        given = [v.strip() for v in value.split(",") if v.strip()] if comma_list else [value]
        unknown = [v for v in given if v not in names]
        if unknown or not given:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(map(repr, unknown)) or repr(value)}; "
                                             f"choose from {', '.join(names)}")
        return given if comma_list else value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


def _world_presets() -> list[str]:
    from ..physics.world import WORLD_PRESETS

    return sorted(WORLD_PRESETS)


#: ``type=`` of every ``--preset`` / ``--world-preset`` option naming a physics-world preset
world_preset = one_of(_world_presets, "world preset")


def flag(name: str) -> str:
    """The option of a field: ``batch_size`` → ``--batch-size``."""
    return f"--{name.replace('_', '-')}"


def _show(value: Any) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def _field_comments(cls: type) -> dict[str, str]:
    """``field name → the comment after it`` in the class's source (``{}`` when the source cannot be read)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    names = {f.name for f in fields(cls)}
    comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            m = re.match(r"\s*(\w+)\s*:", tok.line)
            if m and m.group(1) in names:
                comments.setdefault(m.group(1), tok.string.lstrip("#").strip())
    return comments


def _field_types(cls: type) -> dict[str, type]:
    """``field name → its type`` with ``X | None`` read as ``X``."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in fields(cls):
        t = hints[f.name]
        args = [a for a in typing.get_args(t) if a is not type(None)]
        out[f.name] = args[0] if args and type(None) in typing.get_args(t) else t
    return out


def _default(f) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def add_config_command(sub: argparse._SubParsersAction, name: str, cls: type, *, helps: dict[str, str] | None = None,
                       required: tuple[str, ...] = (), config_file: bool = False,
                       types: dict[str, Callable[[str], Any]] | None = None,
                       **parser_kwargs: Any) -> argparse.ArgumentParser:
    """Add sub-command ``name`` to ``sub`` with one option per field of dataclass ``cls``; returns its parser.

    ``helps``: help for fields whose definition carries none; ``required``: fields the command line must give even
    though they have a default; ``config_file``: take ``--config FILE.yaml`` (see the module docstring);
    ``types``: the ``type=`` of fields, instead of their annotation — a :class:`Number` for every int and float
    field (its valid range; a ``--config`` value is checked against it too) or e.g. :func:`device`.
    """
    helps = helps or {}
    types_given = dict(types or {})
    comments = _field_comments(cls)
    by_name = {f.name: f for f in fields(cls)}
    types = _field_types(cls)
    generated = argparse.ArgumentParser(add_help=False)
    for f in fields(cls):
        kind = types[f.name]
        if kind is bool:
            generated.add_argument(flag(f.name), dest=f.name, type=yes_no, nargs="?", const=True,
                                   default=False if f.default is MISSING else f.default, **f.metadata)
            if f.default is True:
                generated.add_argument(f"--no-{f.name.replace('_', '-')}", dest=f.name, action="store_false",
                                       default=False)
        else:
            default = None if f.default is MISSING and f.default_factory is MISSING else _default(f)
            generated.add_argument(flag(f.name), dest=f.name, type=types_given.get(f.name, kind), default=default,
                                   **f.metadata)
    for action in generated._actions:
        f = by_name[action.dest]
        if isinstance(action, argparse._StoreFalseAction):  # --no-FIELD of a field that defaults to yes
            action.help = f"same as {flag(f.name)} no"
            action.default = None if config_file else action.default
            continue
        text = action.help or helps.get(f.name) or comments.get(f.name, "")
        if f.default is MISSING and f.default_factory is MISSING or f.name in required:
            action.required, note = True, "required"
        else:  # an empty default says nothing
            note = "" if _default(f) in ("", None) else f"default: {_show(_default(f))}"
        if config_file:  # unset: --config or the field's default fills it, and says what is missing (config_from_args)
            action.default, action.required = None, False
        if types[f.name] is bool:
            action.metavar = YES_NO
        action.help = " ".join(filter(None, (text, f"({note})" if note else ""))).replace("%", "%%") or \
            f"{f.name.replace('_', ' ')} (no default)"
    parents = [generated]
    if config_file:
        top = argparse.ArgumentParser(add_help=False)
        top.add_argument("--config", default=None, metavar="FILE.yaml",
                         help="YAML file of these options, keys named as the options with _ for - "
                              "(command-line values override it; a run's config.yaml is one)")
        parents.insert(0, top)
    parser = sub.add_parser(name, parents=parents, **parser_kwargs)
    # config_from_args checks --config values with the types; tests find each command's dataclass here
    parser.set_defaults(_config_types=types_given, _config_class=cls)
    return parser


def read_config_file(path: str | os.PathLike, cls: type,
                     types: dict[str, Callable[[str], Any]] | None = None) -> dict[str, Any]:
    """The options of a ``--config`` YAML file, each checked against (and converted to) the type of its field, and
    against its range where ``types`` gives the field a :class:`Number`."""
    import yaml

    rules = dict(types or {})
    if not os.path.isfile(path):
        raise MissingInputError(f"--config {path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except UnicodeDecodeError as e:
        raise InputError(f"--config {path} is not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8") from e
    except yaml.YAMLError as e:
        raise InputError(f"--config {path} is not valid YAML: {' '.join(str(e).split())}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"--config {path} must hold a mapping of option: value, got a {type(data).__name__}")
    types = _field_types(cls)
    defaults = {f.name: _default(f) for f in fields(cls)}
    unknown = sorted(str(k) for k in set(data) - set(types))
    if unknown:
        raise InputError(f"--config {path}: unknown keys {unknown}; known keys are {sorted(types)}")
    out = {}
    for key, value in data.items():
        want = types[key]
        if value is None and defaults[key] is None:
            out[key] = None
            continue
        ok = {bool: isinstance(value, bool),
              int: isinstance(value, int) and not isinstance(value, bool),
              float: isinstance(value, (int, float)) and not isinstance(value, bool),
              str: isinstance(value, str)}.get(want, True)
        if not ok:
            kind = {bool: "yes/no", int: "an integer", float: "a number", str: "a string"}[want]
            raise InputError(f"--config {path}: {key} must be {kind}, got {value!r}")
        out[key] = float(value) if want is float else value
        rule = rules.get(key)
        if isinstance(rule, Number):
            try:
                rule.check(out[key], flag(key))
            except InputError as e:
                raise InputError(f"{e} (key {key} of --config {path})") from None
    return out


def config_from_args(cls: type, args: argparse.Namespace) -> Any:
    """The ``cls`` of parsed options: field defaults, then ``--config`` (when the command has it), then what the
    command line gave. A run's ``config.yaml`` is such a file, so ``--config runs/x/config.yaml`` repeats a run."""
    values = {f.name: _default(f) for f in fields(cls) if f.default is not MISSING or f.default_factory is not MISSING}
    if getattr(args, "config", None):
        values.update(read_config_file(args.config, cls, getattr(args, "_config_types", None)))
    values.update({f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None})
    missing = [flag(f.name) for f in fields(cls) if f.name not in values]
    if missing:
        raise InputError(f"{', '.join(missing)} required (on the command line or in --config)")
    return cls(**values)
