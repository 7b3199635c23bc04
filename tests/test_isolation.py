"""Per-pair isolation in the shard runner: time limit, crashes, output checks, setup hook, capped logs."""

import io
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from pcreg.config import validate_config
from pcreg.datasets import PreparedDataset, get_dataset_type
from pcreg.errors import UserError
from pcreg.methods.base import Method, Registration, run_method
from pcreg.methods.isolation import CappedLog, PairWorker
from pcreg.methods.runner import register_shard
from pcreg.schema import validate_params

#: The marker a test pair carries in its top-left pixel to make the methods below misbehave on it.
BAD = 0.123


def _is_bad(moving: np.ndarray) -> bool:
    return abs(float(moving[0, 0]) - BAD) < 1e-6


class Sleeper(Method):
    """Never returns on the marked pair."""

    name = "sleeper"

    def register(self, moving, fixed):
        if _is_bad(moving):
            time.sleep(3600)
        return Registration(field=np.zeros((2, *moving.shape), np.float32))


class Segfaulter(Method):
    """Kills its own process with SIGSEGV on the marked pair, as a crashing C library would."""

    name = "segfaulter"

    def register(self, moving, fixed):
        if _is_bad(moving):
            os.kill(os.getpid(), signal.SIGSEGV)
        return Registration(field=np.zeros((2, *moving.shape), np.float32))


class Scaled(Method):
    """Image output in [0, 255] (a common mistake)."""

    name = "scaled"
    outputs_field = False

    def register(self, moving, fixed):
        return Registration(image=moving * 255.0)


class Uint8(Method):
    name = "uint8"
    outputs_field = False

    def register(self, moving, fixed):
        return Registration(image=(moving * 255).astype(np.uint8))


class Signed(Method):
    name = "signed"
    outputs_field = False

    def register(self, moving, fixed):
        return Registration(image=moving * 3.0 - 1.0)


class NaNs(Method):
    name = "nans"
    outputs_field = False

    def register(self, moving, fixed):
        out = moving.copy()
        out[0, 0] = np.nan
        return Registration(image=out)


class SlowSetup(Method):
    """A setup() hook that takes a while: it runs once, before timing."""

    name = "slow_setup"

    def setup(self):
        time.sleep(0.5)
        self.ready = os.getpid()

    def register(self, moving, fixed):
        assert self.ready == os.getpid()  # set up in the process that registers
        return Registration(field=np.zeros((2, *moving.shape), np.float32))


class Chatty(Method):
    """Prints a lot per pair, through Python and straight to the file descriptor."""

    name = "chatty"

    def register(self, moving, fixed):
        print("x" * 50_000)
        os.write(2, b"y" * 50_000 + b"\n")
        return Registration(field=np.zeros((2, *moving.shape), np.float32))


def _pairs(n=4, bad=(1,), size=16):
    rng = np.random.default_rng(0)
    moving = rng.uniform(0.2, 0.8, (n, size, size)).astype(np.float32)
    fixed = rng.uniform(0.2, 0.8, (n, size, size)).astype(np.float32)
    for i in bad:
        moving[i, 0, 0] = BAD
    return moving, fixed


def test_a_pair_that_never_returns_is_stopped_and_the_others_succeed():
    moving, fixed = _pairs()
    t0 = time.perf_counter()
    with PairWorker(Sleeper, pair_timeout_s=1.0, log=io.BytesIO()) as worker:
        results = [worker.run(moving[i : i + 1], fixed[i : i + 1], [f"p{i}"])[0] for i in range(4)]
    assert time.perf_counter() - t0 < 30
    assert [r.failed for r in results] == [False, True, False, False]
    assert results[1].reason == "timed out after 1 s"
    np.testing.assert_array_equal(results[1].image, moving[1])  # identity fallback
    assert worker.restarts == 1


def test_a_segfault_is_a_failed_pair_with_the_signal_and_the_run_goes_on(capfd):
    moving, fixed = _pairs()
    with PairWorker(Segfaulter, pair_timeout_s=30, log=io.BytesIO(), label="segv run") as worker:
        results = [worker.run(moving[i : i + 1], fixed[i : i + 1], [f"p{i}"])[0] for i in range(4)]
    assert [r.failed for r in results] == [False, True, False, False]
    assert results[1].reason == f"the method crashed (signal {int(signal.SIGSEGV)})"
    assert "segv run: pair p1 failed: the method crashed (signal 11)" in capfd.readouterr().err


def test_a_crash_inside_a_batch_fails_only_the_bad_pair():
    moving, fixed = _pairs(n=4, bad=(2,))
    with PairWorker(Segfaulter, pair_timeout_s=30, log=io.BytesIO()) as worker:
        results = worker.run(moving, fixed, ["a", "b", "c", "d"])
    assert [r.failed for r in results] == [False, False, True, False]
    assert "signal 11" in results[2].reason


@pytest.mark.parametrize(("cls", "reason"), [
    (Scaled, r"values in \[.*\], outside \[0, 1\]"),
    (Uint8, "dtype uint8"),
    (Signed, r"outside \[0, 1\]"),
    (NaNs, "non-finite"),
])
def test_image_outputs_are_checked_like_inputs(cls, reason):
    moving, fixed = _pairs(n=1, bad=())
    result = run_method(cls(), moving[0], fixed[0])
    assert result.failed
    assert re.search(reason, result.reason), result.reason


def test_setup_runs_once_per_worker_and_is_not_timed():
    moving, fixed = _pairs(n=3, bad=())
    with PairWorker(SlowSetup, pair_timeout_s=30, log=io.BytesIO()) as worker:
        results = [worker.run(moving[i : i + 1], fixed[i : i + 1])[0] for i in range(3)]
    assert not any(r.failed for r in results), [r.reason for r in results]
    assert max(r.runtime_s for r in results) < 0.25  # the 0.5 s setup is charged to no pair


def test_method_output_is_capped_per_job():
    moving, fixed = _pairs(n=6, bad=())
    log = io.BytesIO()
    with PairWorker(Chatty, pair_timeout_s=30, log_cap_kb=16, log=log) as worker:
        for i in range(6):
            assert not worker.run(moving[i : i + 1], fixed[i : i + 1])[0].failed
    text = log.getvalue()
    assert len(text) < 16 * 1024 + 500  # 600 KB printed
    assert b"bytes of the method's output left out" in text
    assert text.startswith(b"x") and text.rstrip().endswith(b"y")  # the first and the last output kept


def test_capped_log_keeps_small_output_whole():
    out = io.BytesIO()
    log = CappedLog(out, 1024)
    log.write(b"hello\n")
    log.close()
    assert out.getvalue() == b"hello\n"


def test_a_user_error_in_the_worker_reaches_the_job():
    class Bad(Method):
        name = "bad"

        def register(self, moving, fixed):
            raise UserError("malformed file X")

    moving, fixed = _pairs(n=1, bad=())
    with PairWorker(Bad, log=io.BytesIO()) as worker, pytest.raises(UserError, match="malformed file X"):
        worker.run(moving, fixed)


def _dataset(tmp_path):
    module = get_dataset_type("synthetic-fundus")
    params = validate_params(module, {"image_size": 32, "pairs": {"train": 1, "val": 1, "test": 3}},
                             "t")
    module.prepare(tmp_path / "d", "d", params, 0)
    ds = PreparedDataset(tmp_path / "d")
    moving = np.load(ds.root / "test" / "moving.npy", mmap_mode="r+")
    moving[1, 0, 0] = BAD  # the second test pair makes the methods misbehave
    moving.flush()
    return ds.root


@pytest.mark.parametrize(("method", "reason"), [
    ("test_isolation:Sleeper", "timed out after 1 s"),
    ("test_isolation:Segfaulter", "the method crashed (signal 11)"),
])
def test_register_shard_marks_the_bad_pair_failed_and_finishes(tmp_path, method, reason):
    root = _dataset(tmp_path)
    spec = {"id": "m", "method": method, "params": {}, "pair_timeout_s": 1}
    out = register_shard(root, spec, 0, 1, tmp_path / "m" / "0.npz", seed=0, threads=1)
    shard = np.load(out)
    assert shard["failed"].tolist() == [False, True, False]
    assert shard["reason"][1] == reason


def test_register_shard_fails_an_out_of_range_image_output(tmp_path):
    root = _dataset(tmp_path)
    out = register_shard(root, {"id": "s", "method": "test_isolation:Scaled", "params": {}}, 0, 1,
                         tmp_path / "s" / "0.npz", seed=0, threads=1)
    shard = np.load(out)
    assert shard["failed"].all() and "outside [0, 1]" in shard["reason"][0]


def test_config_keys_validated_and_passed_to_each_run():
    base = {"datasets": {"d": {"type": "synthetic-fundus"}}, "methods": {"identity": {}, "syn": {"pair_timeout_s": 5}}}
    cfg = validate_config(base)
    assert cfg["methods"]["identity"]["pair_timeout_s"] == 600 and cfg["methods"]["syn"]["pair_timeout_s"] == 5
    assert cfg["methods"]["identity"]["log_cap_kb"] == 256
    with pytest.raises(UserError, match="pair_timeout_s"):
        validate_config({**base, "pair_timeout_s": 0})


def test_the_worker_dies_with_the_job(tmp_path):
    """A job killed by its scheduler (SIGKILL) does not leave a hanging method behind."""
    import subprocess
    import sys

    script = tmp_path / "job.py"
    script.write_text(
        "import io, os, sys, numpy as np\n"
        f"sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parents[1])!r}]\n"
        "from test_isolation import Sleeper, _pairs\n"
        "from pcreg.methods.isolation import PairWorker\n"
        "w = PairWorker(Sleeper, pair_timeout_s=600, log=io.BytesIO())\n"
        "w.start()\n"
        "print(w._proc.pid, flush=True)\n"
        "m, f = _pairs(n=1, bad=(0,))\n"
        "w.run(m, f)\n")
    job = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker_pid = int(job.stdout.readline())
    time.sleep(0.5)  # the worker is now sleeping on the bad pair
    job.kill()
    job.wait()
    for _ in range(50):
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(worker_pid, signal.SIGKILL)
        raise AssertionError("the worker outlived its job")


class Exiter(Method):
    """Calls sys.exit on the marked pair (SystemExit is not an Exception)."""

    name = "exiter"

    def register(self, moving, fixed):
        if _is_bad(moving):
            raise SystemExit(3)
        return Registration(field=np.zeros((2, *moving.shape), np.float32))


def test_sys_exit_in_a_method_fails_the_pair_not_the_job():
    moving, fixed = _pairs()
    with PairWorker(Exiter, log=io.BytesIO()) as worker:
        results = [worker.run(moving[i : i + 1], fixed[i : i + 1])[0] for i in range(4)]
    assert [r.failed for r in results] == [False, True, False, False]
    assert results[1].reason == "the method raised SystemExit: 3"
