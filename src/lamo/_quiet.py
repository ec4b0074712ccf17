"""Keep third-party notices that say nothing to a LaMo user off the terminal, and one progress bar per task.

Two notices are dropped, each where it is logged (a :class:`logging.Filter` on the library's own logger, which
matches that one message only — every other warning of these libraries still shows):

* transformers' "``CLIPImageProcessor`` requires torchvision (not installed); falling back to
  ``CLIPImageProcessorPil``" — logged when diffusers' Wan image-to-video module is imported; LaMo never uses
  that image processor, and the fallback is what it would want anyway;
* diffusers' "Expected types for vae: (AutoencoderKLCogVideoX,), got <class 'lamo.…'>" — logged on every load
  of a pipeline holding one of LaMo's own components (the shipped demo backbone's small autoencoder), which
  LaMo passes on purpose. The same notice about any other class still shows.

and one Python warning, by its message: huggingface_hub's "The ``local_dir_use_symlinks`` argument is
deprecated", which diffusers triggers on every load of a Hub id (an argument diffusers passes, not LaMo's user).

:func:`quiet_loading` also turns off, while a pipeline loads, transformers' per-model "Loading weights" bar,
which otherwise draws inside diffusers' "Loading pipeline components" bar (two bars interleaved on one line).

The ``lamo`` command calls :func:`silence_notices` before it runs a command; code that loads pipelines wraps
``from_pretrained`` in ``with quiet_loading():``.
"""
from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["silence_notices", "quiet_loading", "NOTICES", "WARNINGS"]

#: logger name → patterns of the messages dropped from it (``re.search`` on the formatted message)
NOTICES: dict[str, tuple[re.Pattern, ...]] = {
    "transformers.utils.import_utils": (
        re.compile(r"`\w+ImageProcessor` requires torchvision \(not installed\); falling back to `\w+Pil`"),),
    "diffusers.pipelines.pipeline_utils": (
        re.compile(r"^Expected types for \w+: .*, got <class 'lamo\.[\w.]+'>\.?$", re.S),),
}


#: the Python warnings dropped (a regular expression matched at the start of the message)
WARNINGS = r"The `local_dir_use_symlinks` argument is deprecated and ignored in `hf_hub_download`"


class _DropNotices(logging.Filter):
    """Drops the records whose message matches one of ``patterns``; lets every other record through."""

    def __init__(self, patterns: tuple[re.Pattern, ...]):
        super().__init__()
        self.patterns = patterns

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 — a record that cannot be formatted is not ours to judge
            return True
        return not any(p.search(message) for p in self.patterns)


def silence_notices() -> None:
    """Install the filters of :data:`NOTICES` (once; later calls do nothing). Imports no third-party library:
    the loggers are the ones transformers and diffusers log to when they are imported later."""
    for name, patterns in NOTICES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNotices) for f in logger.filters):
            logger.addFilter(_DropNotices(patterns))
    warnings.filterwarnings("ignore", message=WARNINGS, category=UserWarning)  # the same filter is added once



@contextmanager
def quiet_loading() -> Iterator[None]:
    """While the block runs (a ``Pipeline.from_pretrained``): the notices above are dropped, and transformers'
    "Loading weights" bar — nested in diffusers' "Loading pipeline components" bar — is off; it is restored after.
    """
    silence_notices()
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # nothing of transformers to quieten
        yield
        return
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()
