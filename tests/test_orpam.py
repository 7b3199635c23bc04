"""OR-PAM adapter: layout detection, temporal order, clear layout errors, and the Hub download path.

The download test runs huggingface_hub's real snapshot_download against a minimal fake Hub on
127.0.0.1 that answers the four endpoints huggingface_hub 2.x calls (revision info, recursive tree,
HEAD and GET of resolve/<commit>/<file>).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from pcreg.config import validate_params
from pcreg.datasets import orpam
from pcreg.datasets.format import PreparedDataset
from pcreg.errors import UserError

pytestmark = [pytest.mark.timeout(60), pytest.mark.filterwarnings("ignore:orpam .*differ from the published")]


def _png(value: float, shape: tuple[int, int] = (16, 24)) -> bytes:
    import cv2

    img = np.full(shape, int(value * 255), np.uint8)
    img[0, 0] = 0
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def layout_files(temporal: bool, roles_first: bool = False) -> dict[str, bytes]:
    """Relative path -> bytes for a small OR-PAM-like repository (even = moving, odd = fixed)."""
    files = {"README.md": b"# tiny"}
    names = {"train": [f"seq{s}/{f:04d}" for s in (2, 10) for f in (3, 1, 12, 2)] if temporal else ["a", "b", "c"],
             "val": ["seq1/0001", "seq1/0002"] if temporal else ["d"],
             "test": [f"seq{s}_{f}" for s in (7,) for f in (10, 9, 1)] if temporal else ["e", "f"]}
    for split, stems in names.items():
        for i, stem in enumerate(stems):
            for role, val in (("even", 0.2), ("odd", 0.6)):
                path = f"{role}/{split}/{stem}.png" if roles_first else f"{split}/{role}/{stem}.png"
                files[f"data/{path}"] = _png(val + 0.01 * i)
    return files


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _params(**kw: object) -> dict:
    return validate_params(orpam, kw, "datasets.orpam.params")


@pytest.mark.parametrize("roles_first", [False, True])
def test_4k_layout_from_local_copy(tmp_path: Path, roles_first: bool) -> None:
    src = write_tree(tmp_path / "copy", layout_files(temporal=False, roles_first=roles_first))
    ds = PreparedDataset(orpam.prepare(tmp_path / "out", "orpam-4k", _params(source_dir=str(src)), 0))
    assert {s: len(ds.split(s)) for s in ("train", "val", "test")} == {"train": 3, "val": 1, "test": 2}
    moving, fixed = ds.split("train").pair(1)
    assert moving.shape == (16, 24)  # native size kept
    assert moving[1, 1] == pytest.approx(int(0.21 * 255) / 255)  # the even image is the moving one
    assert fixed[1, 1] == pytest.approx(int(0.61 * 255) / 255)
    assert (ds.manifest["sequence"] == "").all()  # no sequences in the 4K variant


def test_temporal_order_is_preserved(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "copy", layout_files(temporal=True))
    with pytest.warns(UserWarning, match="differ from the published"):
        ds = PreparedDataset(orpam.prepare(tmp_path / "out", "t", _params(source_dir=str(src),
                                                                           variant="temporal-26k"), 0))
    train = ds.split("train")
    assert train.manifest["sequence"].tolist() == ["seq2"] * 4 + ["seq10"] * 4  # natural order of sequences
    assert train.manifest["frame"].astype(int).tolist() == [1, 2, 3, 12] * 2  # numeric order of frames
    assert train.pair_ids[:2] == ["seq2/0001", "seq2/0002"]
    test = ds.split("test")
    assert test.manifest["sequence"].tolist() == ["seq7"] * 3 and test.manifest["frame"].astype(int).tolist() == [
        1, 9, 10]


def test_sequence_and_frame_rule() -> None:
    assert orpam.sequence_and_frame("seq03/0005") == ("seq03", 5)
    assert orpam.sequence_and_frame("mouse1_seq03_frame0012") == ("mouse1_seq03_frame", 12)
    assert orpam.sequence_and_frame("a/b/img_7") == ("a/b/img", 7)
    assert orpam.sequence_and_frame("still") == ("still", None)


def test_unexpected_layout_lists_what_was_found(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "copy", {"data/train-00000-of-00001.parquet": b"PAR1", "images/x.png": _png(0.5)})
    with pytest.raises(UserError) as err:
        orpam.prepare(tmp_path / "out", "o", _params(source_dir=str(src)), 0)
    msg = str(err.value)
    assert "does not match the expected layout" in msg and "LAYOUT" in msg
    assert "parquet" in msg and "images/: 1 .png" in msg and "data/: 1 .parquet" in msg
    assert not (tmp_path / "out").exists()


def test_role_folder_names_can_be_given(tmp_path: Path) -> None:
    files = {k.replace("/even/", "/bscan/").replace("/odd/", "/fscan/"): v for k, v in layout_files(False).items()}
    src = write_tree(tmp_path / "copy", files)
    with pytest.raises(UserError, match="does not match"):
        orpam.prepare(tmp_path / "out", "o", _params(source_dir=str(src)), 0)
    params = _params(source_dir=str(src), moving_dir="bscan", fixed_dir="fscan")
    assert len(PreparedDataset(orpam.prepare(tmp_path / "out", "o", params, 0)).split("test")) == 2


def test_unmatched_files(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "copy", layout_files(False))
    (src / "data/test/odd/f.png").unlink()
    with pytest.raises(UserError, match=r"test: 1 moving images without a fixed one \(f\)"):
        orpam.prepare(tmp_path / "out", "o", _params(source_dir=str(src)), 0)


class _FakeHub:
    """Answers the Hub API calls of huggingface_hub for one dataset repository at one commit."""

    def __init__(self, files: dict[str, bytes], commit: str):
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, code: int, body: bytes = b"", headers: tuple = ()) -> None:
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self) -> None:  # noqa: N802
                self.do_GET()

            def do_GET(self) -> None:  # noqa: N802
                hub.requests.append(f"{self.command} {self.path}")
                js = ("Content-Type", "application/json")
                if self.path.startswith("/api/datasets/") and "/tree/" in self.path:
                    tree = [{"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                            for f, d in files.items()]
                    return self._send(200, json.dumps(tree).encode(), (js,))
                if self.path.startswith("/api/datasets/"):
                    info = {"id": "x", "sha": commit, "siblings": [{"rfilename": f} for f in files]}
                    return self._send(200, json.dumps(info).encode(), (js,))
                if "/resolve/" in self.path:
                    rel = self.path.split("/resolve/", 1)[1].split("/", 1)[1]
                    if rel in files:
                        data = files[rel]
                        etag = f'"{hashlib.sha1(data).hexdigest()}"'
                        return self._send(200, data, (("X-Repo-Commit", commit), ("ETag", etag)))
                self._send(404)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def test_download_from_hub_and_pin(tmp_path: Path) -> None:
    commit = "c0ffee" + "0" * 34
    hub = _FakeHub(layout_files(temporal=False), commit)
    try:
        params = _params(endpoint=hub.url, cache_dir=str(tmp_path / "dl"))
        with pytest.warns(UserWarning, match=f"not pinned; it resolved to commit {commit}"):
            ds = PreparedDataset(orpam.prepare(tmp_path / "out", "orpam-4k", params, 0))
        assert ds.meta["spec"]["commit"] == commit and ds.meta["spec"]["repo_id"] == "chengliuyan/OR-PAM-Reg-4K"
        assert len(ds.split("train")) == 3
        snap = tmp_path / "dl" / f"OR-PAM-Reg-4K@{commit}"
        assert (snap / ".pcreg-complete").read_text().strip() == commit
        # Pinned to that commit, a rerun needs no network at all.
        hub.close()
        pinned = _params(endpoint=hub.url, cache_dir=str(tmp_path / "dl"), revision=commit)
        assert len(PreparedDataset(orpam.prepare(tmp_path / "again", "o", pinned, 0)).split("test")) == 2
    finally:
        hub.close()


def test_unreachable_hub_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    params = _params(endpoint=f"http://127.0.0.1:{port}", cache_dir=str(tmp_path / "dl"),
                     variant="temporal-26k")
    with pytest.raises(UserError) as err:
        orpam.prepare(tmp_path / "out", "o", params, 0)
    msg = str(err.value)
    assert "\n" not in msg and "could not download" in msg
    assert f"127.0.0.1:{port}/datasets/chengliuyan/OR-PAM-Reg-Temporal-26K/tree/main" in msg
    assert "source_dir" in msg and str(tmp_path / "dl") in msg
    assert not (tmp_path / "out").exists()
    assert not any((tmp_path / "dl").glob("*/.pcreg-complete")) if (tmp_path / "dl").exists() else True
