"""Downloads against a local HTTP(S) server on 127.0.0.1 serving a tiny FIRE-layout archive.

Every scenario ends either with a prepared dataset or with one UserError line that
names the URL, the expected checksum and the manual-placement path; none leaves a
file at the trusted path unless its SHA-256 matches.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers.fire_layout import PAIRS, make_fire_archive  # noqa: E402

from pcreg.config import validate_params  # noqa: E402
from pcreg.datasets import download, fire_reg_256  # noqa: E402
from pcreg.datasets.download import Remote, extract_7z, fetch  # noqa: E402
from pcreg.datasets.format import PreparedDataset  # noqa: E402
from pcreg.errors import UserError  # noqa: E402

pytestmark = pytest.mark.timeout(60)


class _Server:
    """Serves ``files``; can cut responses short, ignore Range, and records the Range headers it saw."""

    def __init__(self, files: dict[str, bytes], tls: ssl.SSLContext | None = None):
        self.files = files
        self.truncate_next = 0  # number of upcoming responses to cut short
        self.cut_fraction = 0.4
        self.ignore_range = False
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                data = server.files.get(self.path)
                server.ranges.append(self.headers.get("Range"))
                if data is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                rng = self.headers.get("Range")
                if rng and not server.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if server.truncate_next > 0:
                    server.truncate_next -= 1
                    self.wfile.write(body[: int(len(body) * server.cut_fraction)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        scheme = "https" if tls is not None else "http"
        self.base = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    path, sha = make_fire_archive(tmp_path_factory.mktemp("fire-src"))
    return path.read_bytes(), sha


@pytest.fixture
def server(archive: tuple[bytes, str]):
    srv = _Server({"/cvrl/fire/FIRE.7z": archive[0]})
    yield srv
    srv.close()


def _remote(srv: _Server, sha: str, **kw: object) -> Remote:
    return Remote(url=f"{srv.base}/cvrl/fire/FIRE.7z", sha256=sha, fname="FIRE.7z", **kw)


def _trusted_files(cache: Path) -> list[str]:
    """Files a later step could mistake for the archive (anything but .part / moved-aside files)."""
    return sorted(p.name for p in cache.iterdir() if p.is_file() and not p.name.endswith((".part", "-mismatch")))


def _assert_clear_message(msg: str, url: str, sha: str, path: Path) -> None:
    assert "\n" not in msg
    assert url in msg and sha in msg and str(path) in msg


def test_download_verify_extract_prepare(server: _Server, archive: tuple[bytes, str], tmp_path: Path) -> None:
    cache = tmp_path / "downloads"
    params = validate_params(fire_reg_256, {
        "url": f"{server.base}/cvrl/fire/FIRE.7z", "sha256": archive[1], "cache_dir": str(cache),
        "working_size": 64, "patch_size": 32, "stride": 16,
        "fractions": {"train": 0.5, "val": 0.0, "test": 0.5},
    }, "test")
    out = fire_reg_256.prepare(tmp_path / "fire-reg-256", "fire-reg-256", params, seed=0)
    assert hashlib.sha256((cache / "FIRE.7z").read_bytes()).hexdigest() == archive[1]
    assert (cache / "FIRE" / ".extracted-from").read_text().strip() == archive[1]
    ds = PreparedDataset(out)
    kept = set(ds.manifest["pair_id"].str[:3])
    assert kept == set(PAIRS) - {"P37"}  # the known-bad pair is dropped
    assert set(ds.manifest["category"]) == {"S", "P", "A"}
    assert ds.original_scale == pytest.approx(2.0)  # 128 px originals cut at 64 px working size
    test = ds.split("test")
    assert len(test) > 0 and test.moving.shape[1:] == (32, 32)
    assert 0.0 <= float(np.min(test.moving)) and float(np.max(test.fixed)) <= 1.0
    # A rerun trusts the verified archive and the marked extraction: no further request.
    n_requests = len(server.ranges)
    fire_reg_256.prepare(tmp_path / "again", "again", params, seed=0)
    assert len(server.ranges) == n_requests


def test_checksum_mismatch(server: _Server, tmp_path: Path) -> None:
    wrong = "0" * 64
    remote = _remote(server, wrong)
    with pytest.raises(UserError) as err:
        fetch(remote, tmp_path, progressbar=False)
    msg = str(err.value)
    _assert_clear_message(msg, remote.url, wrong, tmp_path / "FIRE.7z")
    assert "corrupt or has changed upstream" in msg
    assert list(tmp_path.iterdir()) == []  # neither the bad file, nor a .part, nor pooch's temporary


def test_truncated_download_fails_cleanly(server: _Server, archive: tuple[bytes, str], tmp_path: Path) -> None:
    server.truncate_next = 100  # the server always cuts the transfer short
    remote = _remote(server, archive[1])
    with pytest.raises(UserError) as err:
        fetch(remote, tmp_path, retries=1, progressbar=False)
    _assert_clear_message(str(err.value), remote.url, archive[1], tmp_path / "FIRE.7z")
    assert _trusted_files(tmp_path) == []
    part = tmp_path / "FIRE.7z.part"
    assert part.is_file() and 0 < part.stat().st_size < len(archive[0])
    assert "kept in FIRE.7z.part" in str(err.value)


def test_rerun_resumes_interrupted_download(server: _Server, archive: tuple[bytes, str], tmp_path: Path) -> None:
    server.truncate_next = 1
    remote = _remote(server, archive[1])
    with pytest.raises(UserError):
        fetch(remote, tmp_path, retries=0, progressbar=False)
    got = (tmp_path / "FIRE.7z.part").stat().st_size
    assert _trusted_files(tmp_path) == [] and got > 0
    path = fetch(remote, tmp_path, retries=0, progressbar=False)  # the rerun
    assert server.ranges[-1] == f"bytes={got}-"  # it asked only for the rest
    assert hashlib.sha256(path.read_bytes()).hexdigest() == archive[1]
    assert not (tmp_path / "FIRE.7z.part").exists()


def test_retry_within_one_run_resumes(server: _Server, archive: tuple[bytes, str], tmp_path: Path) -> None:
    server.truncate_next = 2
    path = fetch(_remote(server, archive[1]), tmp_path, retries=2, progressbar=False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == archive[1]
    assert [r is not None for r in server.ranges] == [False, True, True]


def test_stale_part_and_server_without_range(server: _Server, archive: tuple[bytes, str], tmp_path: Path) -> None:
    (tmp_path / "FIRE.7z.part").write_bytes(b"garbage that is not a prefix of the archive")
    server.ignore_range = True  # answers 200 with the whole file: the .part must restart from byte 0
    path = fetch(_remote(server, archive[1]), tmp_path, progressbar=False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == archive[1]


def test_bad_part_from_resume_is_discarded(server: _Server, archive: tuple[bytes, str], tmp_path: Path) -> None:
    # A .part whose first bytes are wrong: the resumed file fails the hash, nothing is kept, the rerun succeeds.
    n = len(archive[0]) // 2
    (tmp_path / "FIRE.7z.part").write_bytes(b"\0" * n)
    with pytest.raises(UserError, match="corrupt"):
        fetch(_remote(server, archive[1]), tmp_path, progressbar=False)
    assert list(tmp_path.iterdir()) == []
    path = fetch(_remote(server, archive[1]), tmp_path, progressbar=False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == archive[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server(archive: tuple[bytes, str], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/cvrl/fire/FIRE.7z"
    remote = Remote(url=url, sha256=archive[1], fname="FIRE.7z")
    with pytest.raises(UserError) as err:
        fetch(remote, tmp_path / "dl", progressbar=False)
    _assert_clear_message(str(err.value), url, archive[1], (tmp_path / "dl" / "FIRE.7z").resolve())
    assert "could not download" in str(err.value)
    assert list((tmp_path / "dl").iterdir()) == []


def test_hand_placed_file_is_verified_and_used(archive: tuple[bytes, str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCREG_OFFLINE", "1")  # prove no network is needed
    remote = Remote(url="https://example.invalid/FIRE.7z", sha256=archive[1], fname="FIRE.7z")
    (tmp_path / "FIRE.7z").write_bytes(archive[0])
    assert fetch(remote, tmp_path, progressbar=False) == (tmp_path / "FIRE.7z").resolve()
    # A wrong hand-placed file is moved aside, never used, and the message says so.
    (tmp_path / "FIRE.7z").write_bytes(archive[0][:-10])
    with pytest.raises(UserError) as err:
        fetch(remote, tmp_path, progressbar=False)
    _assert_clear_message(str(err.value), remote.url, archive[1], tmp_path.resolve() / "FIRE.7z")
    assert "moved to" in str(err.value)
    assert not (tmp_path / "FIRE.7z").exists() and (tmp_path / "FIRE.7z.sha256-mismatch").is_file()


def test_extract_rejects_broken_archive(tmp_path: Path) -> None:
    bad = tmp_path / "FIRE.7z"
    bad.write_bytes(b"7z\xbc\xaf\x27\x1c" + b"\0" * 100)
    with pytest.raises(UserError, match="cannot extract"):
        extract_7z(bad, tmp_path / "FIRE", "ab" * 32)
    assert not (tmp_path / "FIRE").exists() and not (tmp_path / "FIRE.partial").exists()


@pytest.fixture
def tls_server(archive: tuple[bytes, str], tmp_path: Path):
    """An HTTPS server with a self-signed certificate: verification fails like an incomplete chain does."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not available to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=30)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = _Server({"/cvrl/fire/FIRE.7z": archive[0]}, tls=ctx)
    yield srv
    srv.close()


def test_tls_fallback_only_with_pinned_hash(tls_server: _Server, archive: tuple[bytes, str], tmp_path: Path) -> None:
    strict = _remote(tls_server, archive[1])
    with pytest.raises(UserError, match="SSLError"):
        fetch(strict, tmp_path / "a", progressbar=False)
    assert list((tmp_path / "a").iterdir()) == []
    lenient = _remote(tls_server, archive[1], allow_unverified_tls=True)
    with pytest.warns(UserWarning, match="without certificate verification"):
        path = fetch(lenient, tmp_path / "b", progressbar=False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == archive[1]
    # Without verification the pinned hash still decides: a wrong one is refused.
    with pytest.warns(UserWarning), pytest.raises(UserError, match="corrupt"):
        fetch(_remote(tls_server, "f" * 64, allow_unverified_tls=True), tmp_path / "c", progressbar=False)
    assert list((tmp_path / "c").iterdir()) == []


def test_offline_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCREG_OFFLINE", "1")
    remote = Remote(url="https://example.invalid/FIRE.7z", sha256="a" * 64, fname="FIRE.7z", size=123)
    with pytest.raises(UserError) as err:
        download.fetch(remote, tmp_path, progressbar=False)
    _assert_clear_message(str(err.value), remote.url, "a" * 64, tmp_path.resolve() / "FIRE.7z")
