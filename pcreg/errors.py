"""User-facing errors: printed as one clear line by the command line, never as a traceback."""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path


class UserError(Exception):
    """A problem the user can fix (bad config value, missing file, unknown name)."""


class MethodFailed(Exception):
    """A method's own code failed (its fit, or its set-up): one line naming the run.

    Not a :class:`UserError`: the workflow records the method as failed and every other method goes on
    (pcreg.methods.runner), where a user error stops the job. ``reason`` is the method's own error in one line
    (``Type: message``), for the tables.
    """

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


@contextlib.contextmanager
def disk_full_is_one_line(path: str | Path, *partial: str | Path) -> Iterator[None]:
    """Turn a full disk (``ENOSPC``, ``EDQUOT``) while writing ``path`` into one :class:`UserError` naming it.

    Files in ``partial`` (a temporary file being written) are removed first, which also frees the space
    needed to write the error to the job's log. Libraries that wrap the ``OSError`` (torch's
    ``RuntimeError: ... unexpected pos``) are recognised by the ``OSError`` in their cause chain or, as a
    last resort, by a zero free space on the file's disk.
    """
    try:
        yield
    except Exception as exc:
        if not _is_disk_full(exc, Path(path)):
            raise
        for p in partial:
            with contextlib.suppress(OSError):
                Path(p).unlink(missing_ok=True)
        raise UserError(f"disk full while writing {path}: free some space (or point `results_dir`/`data_dir` "
                        "at a larger disk) and run again") from None


def _is_disk_full(exc: BaseException, path: Path) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, RuntimeError | OSError):  # torch's writer hides the errno: look at the disk itself
        try:
            return shutil.disk_usage(path.parent).free == 0
        except OSError:
            return False
    return False
