"""Writing output files atomically, with one clear error when the write fails.

Every result, list, checkpoint and log-side file goes through ``atomic_file``: the content
is written to a temporary file beside the target (a per-process name, so two processes
writing the same target never share one), flushed to disk, then renamed over the target.
A crash or a failed write (disk full, permission, quota) therefore never leaves a truncated
or half-written target: the earlier file of that name, if any, stays as it was, and the
temporary file is removed. The failure is raised as ``OutputWriteError`` naming the target
and the reason ("No space left on device").
"""
import contextlib
import os
import shutil
from typing import Callable


class OutputWriteError(ValueError):
    """An output file could not be written; ``path`` is the target, ``reason`` the OS's words."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"could not write {path}: {reason}; any earlier file of that name is unchanged "
                         f"(free some space or choose another output folder, then run again)")
        self.path = path
        self.reason = reason


def _reason(error: BaseException, folder: str) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error) or type(error).__name__
    try:                              # torch.save reports a full disk as "... iostream error"
        if shutil.disk_usage(folder).free < (1 << 20):
            return f"No space left on device ({text})"
    except OSError:
        pass
    return text


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path to write ``path``'s new content to; on success it replaces
    ``path``, on any failure it is removed and ``OutputWriteError`` is raised."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        os.makedirs(folder, exist_ok=True)
        yield tmp
        with open(tmp, "rb+") as handle:          # the bytes are on disk before the rename
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:      # RuntimeError: torch.save's stream errors
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise OutputWriteError(path, _reason(error, folder)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "w", **kwargs):
    """``open`` for writing that replaces ``path`` only once the content is complete
    (see ``atomic_path``); text mode defaults to UTF-8."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as handle:
            yield handle


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """``write(temporary_path)`` (e.g. ``torch.save``), then the rename of ``atomic_path``."""
    with atomic_path(path) as tmp:
        write(tmp)
