"""One writer per workdir: an exclusive flock on `<workdir>/.lock`, held for a run's lifetime.

The lock file holds its holder's host, pid and start time, so a refused run can say who has
the workdir. The kernel releases a flock when its process dies (SIGKILL, OOM, a crash), so
a dead holder never blocks the next run; the stale text left in the file is overwritten.
Multi-process runs take the lock in process 0 only. Note: flock is local to one machine on
some network filesystems; two runs on different machines sharing a workdir over NFS may
not see each other's lock.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import pathlib
import socket

LOCK_FILE = ".lock"


class WorkdirLocked(RuntimeError):
  """Another live process holds the workdir's lock."""


class WorkdirLock:
  """Context manager: takes the lock of `workdir` on entry (raising WorkdirLocked at once if
  another process has it) and releases it on exit. `active=False` makes it a no-op (the
  non-zero processes of a multi-process run)."""

  def __init__(self, workdir, active: bool = True):
    self.path = pathlib.Path(workdir) / LOCK_FILE
    self.active = active
    self._fd = None

  def __enter__(self) -> "WorkdirLock":
    if not self.active:
      return self
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
      os.close(fd)
      raise WorkdirLocked(f"workdir {self.path.parent} is in use by another training run "
                          f"({holder}); wait for it to finish or choose another --workdir"
                          ) from None
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"host {socket.gethostname()}, pid {os.getpid()}, started {started}\n"
              .encode(), 0)
    self._fd = fd
    return self

  def __exit__(self, *exc) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None
