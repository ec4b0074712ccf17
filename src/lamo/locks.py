"""One process at a time in an output folder: a lock file made with ``O_CREAT | O_EXCL``.

:class:`FolderLock` creates ``FOLDER/<name>`` holding the owner's pid, host and start time, atomically (the
operating system lets exactly one process create it), and deletes it when released. A lock left by a process
that is gone (killed, machine rebooted) is *stale*: when its host is this machine and its pid no longer runs, it is
taken over with a warning. A lock of a live process, or of another host (whose processes cannot be checked from
here), is refused with a :class:`~lamo.errors.InputError` that names the owner and says what to do.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from .errors import InputError

__all__ = ["FolderLock"]


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # runs, under another user
        return True
    except OverflowError:
        return False
    return True


class FolderLock:
    """``with FolderLock(folder, "lamo sample"):`` — refuse a second process in ``folder`` while this one works.

    ``what`` names the command in the messages; ``name`` is the lock file's name inside ``folder`` (created if
    need be). :meth:`acquire` raises :class:`~lamo.errors.InputError` when another live process holds it.
    """

    def __init__(self, folder: str | os.PathLike, what: str, name: str = ".lamo.lock"):
        self.folder = Path(folder)
        self.path = self.folder / name
        self.what = what
        self.held = False

    def _owner(self) -> dict | None:
        try:
            owner = json.loads(self.path.read_text())
            return owner if isinstance(owner, dict) else None
        except (OSError, ValueError):
            return None

    def acquire(self) -> FolderLock:
        """Take the lock (taking over a stale one), or raise ``InputError`` naming the process that holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        me = dict(pid=os.getpid(), host=socket.gethostname(), started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  command=self.what)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                pid, host = (owner or {}).get("pid"), (owner or {}).get("host")
                if isinstance(pid, int) and host == me["host"] and not _alive(pid):
                    print(f"{self.what}: taking over the stale lock {self.path} of pid {pid} (no longer running)",
                          file=sys.stderr, flush=True)
                    if self._owner() == owner:  # not already taken over by another process meanwhile
                        self.path.unlink(missing_ok=True)
                    continue
                who = (f"pid {pid} on host {host}, since {owner.get('started')}" if owner else
                       "its lock file is being written or is garbled")
                raise InputError(f"{self.folder} is in use by another {owner.get('command', self.what) if owner else self.what} "
                                 f"({who}; lock file {self.path}): wait for it to finish or pass another --out; if no "
                                 f"such run is alive, delete {self.path}") from None
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(me))
            self.held = True
            return self
        raise InputError(f"{self.folder}: could not take the lock {self.path} (other processes keep taking it); "
                         "pass another --out")

    def release(self) -> None:
        """Delete the lock file if this process holds it."""
        if self.held:
            owner = self._owner()
            if owner is None or owner.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
