"""Per-pair isolation: a method runs in a worker process that a bad pair cannot take down with the job.

:class:`PairWorker` builds the method *inside* a worker process (its model, its
libraries and their thread pools live there, never in the job's own process),
calls the method's optional ``setup()`` hook once, and then registers the pairs
it is sent with :func:`pcreg.methods.base.run_method_batch`. The job's process
waits for each answer with a time limit:

* a pair that does not finish within ``pair_timeout_s`` seconds is a failed pair
  ``"timed out after N s"``: the worker is killed and a fresh one is started for
  the next pair;
* a worker that dies on a pair (segfault, abort, ``os._exit``) makes that pair a
  failed pair ``"the method crashed (signal N)"`` (or ``"... exited with status N"``),
  and a fresh worker goes on with the next pair;
* pairs sent as a batch (learned methods on a GPU) are retried one by one after
  a crash or a timeout, so that one bad pair fails only itself.

Runtimes are measured inside the worker around ``register`` only, exactly as
without isolation: building, loading, ``setup()`` and the transfer of the arrays
(a pipe: 3.5-4.3 ms of
job wall time per 256² pair, worker start 54-78 ms, by ``scripts/bench_isolation.py`` on the 2-core
development machine under a load average of 22) are not charged to any pair.
The worker is forked where the platform allows it (so classes defined anywhere
work and the environment, thread limits included, is inherited) and spawned
elsewhere. A :class:`pcreg.errors.UserError` raised by the method (bad input the
user must fix) is raised in the job, as without isolation.

Everything the method prints (its stdout and stderr, at the file-descriptor level,
so also output of C/C++ libraries) goes through :class:`CappedLog`: the first
and the last ``log_cap_kb / 2`` KB of a job are kept in the job's log, with a
note saying how much was left out in between.
"""

from __future__ import annotations

import faulthandler
import multiprocessing as mp
import os
import pickle
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from pcreg.errors import UserError
from pcreg.methods.base import Method, PairResult, run_method_batch

#: Default per-pair time limit (seconds); the config's `pair_timeout_s` (top level or per method run).
DEFAULT_PAIR_TIMEOUT_S = 600.0
#: Default cap of the method output kept in a job's log (KB); the config's `log_cap_kb`.
DEFAULT_LOG_CAP_KB = 256
#: Time allowed for building the method, loading its model and its ``setup()`` hook (seconds), at least.
MIN_STARTUP_S = 600.0


class CappedLog:
    """Pass bytes on to ``stream`` up to ``cap_bytes / 2``; keep only the last ``cap_bytes / 2`` after that.

    :meth:`close` writes a note with the number of bytes left out, then the kept tail.
    """

    def __init__(self, stream: BinaryIO, cap_bytes: int):
        self.stream = stream
        self.head_left = max(0, cap_bytes // 2)
        self.tail_size = max(0, cap_bytes - cap_bytes // 2)
        self.tail = bytearray()
        self.dropped = 0
        self.cap_bytes = cap_bytes

    def write(self, data: bytes) -> None:
        """Pass ``data`` on (while the head budget lasts) or keep it in the tail."""
        if self.head_left > 0:
            head, data = data[: self.head_left], data[self.head_left :]
            self.stream.write(head)
            self.stream.flush()
            self.head_left -= len(head)
        if data:
            self.tail += data
            excess = len(self.tail) - self.tail_size
            if excess > 0:
                del self.tail[:excess]
                self.dropped += excess

    def close(self) -> None:
        """Write the note on what was left out (if anything) and the kept tail."""
        if self.dropped:
            self.stream.write((f"\n[pcreg: {self.dropped} bytes of the method's output left out here "
                               f"(log cap {self.cap_bytes // 1024} KB per job, config `log_cap_kb`)]\n").encode())
        self.stream.write(bytes(self.tail))
        self.stream.flush()
        self.tail = bytearray()


def _worker_main(conn: Any, factory: Callable[[], Method], log_path: str) -> None:  # pragma: no cover - in child
    """The worker process: method output to ``log_path``; build, set up, then register what is sent."""
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    # Python-level output too (sys.stdout may have been replaced, e.g. by a test runner's capture).
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives as long as the worker
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    faulthandler.enable(file=sys.stderr)  # where a crash happened, in the job's log
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the job's process handles Ctrl-C and stops the worker
    _die_with_parent()

    def flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass

    try:
        method = factory()
        setup = getattr(method, "setup", None)
        if callable(setup):
            setup()
    except UserError as exc:
        flush()
        conn.send(("user_error", str(exc)))
        return
    except BaseException as exc:  # noqa: BLE001 - reported to the job, which fails with it
        flush()
        conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc(), _picklable(exc)))
        return
    flush()
    conn.send(("ready", {"outputs_field": bool(method.outputs_field),
                         "batch": max(1, int(getattr(method, "inference_batch_size", 1)))}))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        moving, fixed, ids = msg
        try:
            results = run_method_batch(method, moving, fixed, ids)
            reply: tuple[Any, ...] = ("ok", results)
        except UserError as exc:
            reply = ("user_error", str(exc))
        except BaseException as exc:  # noqa: BLE001 - SystemExit and the like (run_method catches Exception):
            traceback.print_exc()     # the pair fails and this worker, in an unknown state, ends
            flush()
            conn.send(("failed", f"the method raised {type(exc).__name__}: {exc}"))
            return
        flush()
        conn.send(reply)


def _die_with_parent() -> None:  # pragma: no cover - in child
    """Linux: the kernel kills the worker when the job's process dies (a scheduler's SIGKILL included), so a
    hanging method never outlives its job. Elsewhere the worker ends when its pipe closes."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _picklable(exc: BaseException) -> BaseException | None:
    """``exc`` if it survives pickling (to be raised again in the job), else None."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any failure means: send the text only
        return None
    return exc


def _context() -> mp.context.BaseContext:
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


class PairWorker:
    """Run a method's pairs in a worker process with a per-pair time limit (see the module docstring).

    ``factory()`` builds the ready-to-register method (in the worker). Use as a
    context manager, or call :meth:`close`.
    """

    def __init__(self, factory: Callable[[], Method], *, pair_timeout_s: float = DEFAULT_PAIR_TIMEOUT_S,
                 log_cap_kb: int = DEFAULT_LOG_CAP_KB, log: BinaryIO | None = None, label: str = "method"):
        if not pair_timeout_s > 0:
            raise ValueError(f"pair_timeout_s must be positive, got {pair_timeout_s}")
        self.factory = factory
        self.pair_timeout_s = float(pair_timeout_s)
        self.label = label
        self.log = CappedLog(log if log is not None else sys.stderr.buffer, int(log_cap_kb) * 1024)
        self._dir = tempfile.TemporaryDirectory(prefix="pcreg-worker-")
        self._log_path = Path(self._dir.name) / "method-output.log"
        self._log_path.touch()
        self._offset = 0
        self._proc: Any = None
        self._conn: Any = None
        self.outputs_field: bool | None = None
        #: Pairs per call the method asks for (its ``inference_batch_size``; 1 for most methods).
        self.batch = 1
        self.restarts = 0
        self._last_reason = ""
        self._last_seconds = float("nan")

    # -- process management -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker (build the method, ``setup()``) unless one is running."""
        if self._proc is not None and self._proc.is_alive():
            return
        ctx = _context()
        parent, child = ctx.Pipe()
        for stream in (sys.stdout, sys.stderr):  # a forked child must not repeat the job's buffered output
            stream.flush()
        self._proc = ctx.Process(target=_worker_main, args=(child, self.factory, str(self._log_path)), daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        limit = max(MIN_STARTUP_S, self.pair_timeout_s)
        reply = self._receive(limit)
        self._drain()
        if reply is None:
            why = self._death(limit)
            self._stop()
            raise RuntimeError(f"{self.label}: the method could not be started: {why}")
        if reply[0] == "user_error":
            self._stop()
            raise UserError(reply[1])
        if reply[0] == "error":  # as without isolation: the job fails with the method's own exception
            self._stop()
            self.log.write(reply[2].encode())
            if reply[3] is not None:
                raise reply[3]
            raise RuntimeError(f"{self.label}: building or setting up the method failed: {reply[1]}")
        self.outputs_field = reply[1]["outputs_field"]
        self.batch = reply[1]["batch"]

    def _receive(self, timeout: float) -> tuple[Any, ...] | None:
        """The worker's next message, or None if it died or did not answer within ``timeout`` seconds."""
        try:
            if not self._conn.poll(timeout):
                return None
            return self._conn.recv()
        except (EOFError, OSError):
            return None

    def _death(self, timeout: float) -> str:
        """Why the worker gave no answer: crashed (signal), exited, or timed out (then it is killed)."""
        self._proc.join(0.5)
        code = self._proc.exitcode
        if code is None:
            return f"timed out after {timeout:g} s"
        if code < 0:
            return f"the method crashed (signal {-code})"
        return f"the method's process exited with status {code}"

    def _stop(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(10)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def _drain(self) -> None:
        """Pass the method's new output on to the capped log."""
        sys.stderr.flush()
        with open(self._log_path, "rb") as fh:
            fh.seek(self._offset)
            while chunk := fh.read(1 << 20):
                self.log.write(chunk)
                self._offset += len(chunk)

    def close(self) -> None:
        """Stop the worker and finish the log."""
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(None)
                self._proc.join(5)
            except OSError:
                pass
        self._stop()
        self._drain()
        self.log.close()
        self._dir.cleanup()

    def __enter__(self) -> PairWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running pairs ------------------------------------------------------------------------------------------
    def run(self, moving: np.ndarray, fixed: np.ndarray, pair_ids: list[str] | None = None) -> list[PairResult]:
        """Register stacks ``(N, H, W)`` of pairs in the worker; failures (timeouts, crashes) are failed pairs."""
        moving = np.asarray(moving, dtype=np.float32)
        fixed = np.asarray(fixed, dtype=np.float32)
        ids = list(pair_ids) if pair_ids is not None else [None] * len(moving)
        results = self._attempt(moving, fixed, ids)
        if results is not None:
            return results[0]
        if len(moving) == 1:
            return [self._failed(moving[0], self._last_reason, ids[0])]
        # A batch failed as a whole: run its pairs one by one so that only the bad one fails.
        out = []
        for m, f, pid in zip(moving, fixed, ids):
            one = self._attempt(m[None], f[None], [pid])
            out.append(one[0][0] if one is not None else self._failed(m, self._last_reason, pid))
        return out

    def _attempt(self, moving: np.ndarray, fixed: np.ndarray, ids: list[str | None]
                 ) -> tuple[list[PairResult]] | None:
        self.start()
        limit = self.pair_timeout_s * len(moving)
        t0 = time.perf_counter()
        try:
            self._conn.send((moving, fixed, ids))
        except (BrokenPipeError, OSError):
            reply = None
        else:
            reply = self._receive(limit)
        self._drain()
        if reply is None:
            self._last_seconds = (time.perf_counter() - t0) / len(moving)
            self._last_reason = self._death(limit)
            self._stop()
            self._drain()
            self.restarts += 1
            return None
        if reply[0] == "user_error":
            raise UserError(reply[1])
        if reply[0] == "failed":
            self._last_seconds = (time.perf_counter() - t0) / len(moving)
            self._last_reason = reply[1]
            self._stop()
            self._drain()
            self.restarts += 1
            return None
        return (reply[1],)

    def _failed(self, moving: np.ndarray, reason: str, pair_id: str | None) -> PairResult:
        """The identity result of a pair the worker did not survive, with a line in the job's log."""
        where = f"pair {pair_id}" if pair_id is not None else "a pair"
        sys.stderr.write(f"{self.label}: {where} failed: {reason}\n")
        sys.stderr.flush()
        zero = np.zeros((2, *moving.shape), np.float32) if self.outputs_field else None
        return PairResult(moving.copy(), zero, self._last_seconds, True, reason)
