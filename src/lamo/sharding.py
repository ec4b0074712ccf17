"""Split work over the processes of ``torchrun`` / ``accelerate launch`` (one process without a launcher).

:class:`Shards` reads the process's place from the launcher's environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``; both launchers set them) or from a process group already started (e.g. by accelerate's
``PartialState``). Work item ``k`` belongs to rank ``k mod WORLD_SIZE``, so which process makes an item
never changes what it is: every item carries its own seed. Two collective steps, both torch.distributed's own
primitives over a CPU (gloo) group, so they work on CPU and GPU alike and never occupy a GPU:

* :meth:`Shards.sync` — every rank arrives, rank 0 does something (e.g. deletes an earlier run), every rank
  gets its result (``barrier`` + ``broadcast_object_list``);
* :meth:`Shards.gather` — rank 0 receives every rank's result (``gather_object``): how a sharded run's records
  are merged. A process may still write its own partial record to disk as it goes, but only so that an
  interrupted run can be resumed; nothing polls files.
"""
from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import InputError

__all__ = ["Shards"]

T = TypeVar("T")
#: how long a collective step waits for the slowest rank: :meth:`Shards.gather` waits while the other ranks finish
#: their share of the work. torchrun and accelerate launch stop every process when one fails, so the wait only
#: ever spans work still being done.
SYNC_TIMEOUT = datetime.timedelta(hours=24)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise InputError(f"environment variable {name}={value!r} is not an integer (set by torchrun / "
                         "accelerate launch)") from None


@dataclass(frozen=True)
class Shards:
    """This process's share: ``rank`` of ``world_size`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Shards:
        """The running process group's ranks if one is started, else ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))
        world = _env_int("WORLD_SIZE", 1)
        rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
        if world < 1 or not 0 <= rank < world:
            raise InputError(f"RANK={rank} WORLD_SIZE={world}: the rank must lie in [0, WORLD_SIZE)")
        return cls(rank, world, local)

    @property
    def main(self) -> bool:
        """Whether this is rank 0, the process that merges and scores."""
        return self.rank == 0

    def owns(self, index: int) -> bool:
        """Whether work item ``index`` is this process's (``index mod world_size == rank``)."""
        return index % self.world_size == self.rank

    def device(self, requested: str | None) -> Any:
        """The torch device: ``requested`` or cuda when available, else cpu; a bare ``cuda`` is this process's
        GPU (``cuda:LOCAL_RANK``) when several processes run."""
        import torch

        device = torch.device(requested or ("cuda" if torch.cuda.is_available() else "cpu"))
        if device.type == "cuda" and device.index is None and self.world_size > 1:
            device = torch.device("cuda", self.local_rank % max(1, torch.cuda.device_count()))
        return device

    def sync(self, on_main: Callable[[], T] = lambda: None) -> T:
        """Wait for every rank; then rank 0 runs ``on_main`` and every rank returns its result.

        Nothing that rank 0 does in ``on_main`` can race with what the other ranks did before calling this,
        and they go on only once it is done. With one process: ``on_main()``.
        """
        if self.world_size == 1:
            return on_main()
        import torch.distributed as dist

        group = _group()
        dist.barrier(group=group)
        box = [on_main() if self.main else None]
        dist.broadcast_object_list(box, src=0, group=group)
        return box[0]

    def gather(self, obj: T) -> list[T] | None:
        """Rank 0 gets ``[obj of rank 0, obj of rank 1, …]`` (any picklable objects); the other ranks get ``None``.

        Every rank must call it; each returns once rank 0 has everything. With one process: ``[obj]``.
        """
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        received: list | None = [None] * self.world_size if self.main else None
        dist.gather_object(obj, received, dst=0, group=_group())  # the group spans every rank: global rank 0
        return received


_GLOO: list = []  # the gloo group of this process, once made


def _group() -> Any:
    """A gloo group over all ranks: the default group when it is gloo (started here if need be), else a new one."""
    import atexit

    import torch.distributed as dist

    if not _GLOO:
        if not dist.is_initialized():
            missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
            if missing:
                raise InputError(f"WORLD_SIZE={os.environ.get('WORLD_SIZE')} but {' and '.join(missing)} not set: "
                                 "start the processes with torchrun or accelerate launch (or set them yourself)")
            dist.init_process_group("gloo", timeout=SYNC_TIMEOUT)
            atexit.register(dist.destroy_process_group)
        _GLOO.append(None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo", timeout=SYNC_TIMEOUT))
    return _GLOO[0]
