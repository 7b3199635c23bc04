"""One HTTP server on 127.0.0.1 for the rehearsal: ``FIRE.7z`` and a minimal Hugging Face Hub.

Routes (``<repo>`` is ``owner/name``; ``<rev>`` is ``main`` or the repository's commit):

- ``GET|HEAD /fire/FIRE.7z``: the archive, honouring ``Range: bytes=N-`` (206), as the downloader resumes.
- ``GET /api/datasets/<repo>`` and ``/api/datasets/<repo>/revision/<rev>``: the dataset info (``sha``,
  ``siblings``), what ``HfApi.dataset_info`` and ``snapshot_download`` read.
- ``GET /api/datasets/<repo>/tree/<rev>[/<path>]``: every file (recursive), one page.
- ``GET|HEAD /datasets/<repo>/resolve/<rev>/<path>``: a file, with ``X-Repo-Commit`` and ``ETag``.

A repository's commit is a SHA-1 of its files' paths and contents, so it is stable across runs.
Anything else answers 404. The server is meant to run in its own process (``python -m pcreg.rehearsal serve``)
and be stopped by its pid.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


def read_repo(root: Path) -> dict[str, bytes]:
    """Relative POSIX path -> bytes of every file below ``root``."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def commit_of(files: dict[str, bytes]) -> str:
    """A stable 40-hex commit id for a repository's content."""
    h = hashlib.sha1()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha1(files[rel]).digest())
    return h.hexdigest()


class RehearsalServer:
    """Serves ``fire_archive`` and the repositories ``repos`` (repo id -> folder) on 127.0.0.1:``port``."""

    def __init__(self, fire_archive: Path, repos: dict[str, Path], port: int = 0):
        self.fire = Path(fire_archive).read_bytes()
        self.repos = {rid: read_repo(Path(root)) for rid, root in repos.items()}
        self.commits = {rid: commit_of(files) for rid, files in self.repos.items()}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, code: int, body: bytes = b"", headers: tuple = ()) -> None:
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self) -> None:  # noqa: N802 (http.server API)
                self.do_GET()

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append(f"{self.command} {self.path}")
                path = unquote(urlsplit(self.path).path)
                if path == "/fire/FIRE.7z":
                    return self._archive()
                js = (("Content-Type", "application/json"),)
                for rid, files in server.repos.items():
                    commit = server.commits[rid]
                    api = f"/api/datasets/{rid}"
                    if path == api or path.startswith(api + "/revision/"):
                        info = {"id": rid, "sha": commit, "siblings": [{"rfilename": f} for f in files],
                                "private": False, "disabled": False, "gated": False}
                        return self._send(200, json.dumps(info).encode(), js)
                    if path.startswith(api + "/tree/"):
                        rest = path[len(api + "/tree/"):].split("/", 1)
                        prefix = rest[1].rstrip("/") + "/" if len(rest) > 1 and rest[1] else ""
                        tree = [{"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                                for f, d in files.items() if f.startswith(prefix)]
                        return self._send(200, json.dumps(tree).encode(), js)
                    res = f"/datasets/{rid}/resolve/"
                    if path.startswith(res):
                        rev_rel = path[len(res):].split("/", 1)
                        if len(rev_rel) == 2 and rev_rel[0] in ("main", commit) and rev_rel[1] in files:
                            data = files[rev_rel[1]]
                            etag = f'"{hashlib.sha1(data).hexdigest()}"'
                            return self._send(200, data, (("X-Repo-Commit", commit), ("ETag", etag)))
                self._send(404)

            def _archive(self) -> None:
                data, start, status = server.fire, 0, 200
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng.removeprefix("bytes=").split("-")[0] or 0)
                    if start >= len(data):
                        return self._send(416, b"", (("Content-Range", f"bytes */{len(data)}"),))
                    status = 206
                headers = [("Accept-Ranges", "bytes"), ("Content-Type", "application/x-7z-compressed")]
                if status == 206:
                    headers.append(("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"))
                self._send(status, data[start:], tuple(headers))

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> RehearsalServer:
        """Serve in a background thread (tests); :meth:`close` stops it."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()


def serve_forever(standins: dict, ready_file: Path, port: int = 0) -> None:
    """Serve the stand-ins of ``standins.json`` until the process is killed; write the base URL to ``ready_file``.

    The URL is written (atomically) only once the socket listens, so a waiting script can start its clients.
    """
    server = RehearsalServer(Path(standins["fire_archive"]), {k: Path(v) for k, v in standins["repos"].items()},
                             port)
    tmp = ready_file.with_name(ready_file.name + ".tmp")
    tmp.write_text(json.dumps({"url": server.url, "commits": server.commits}) + "\n")
    tmp.replace(ready_file)
    try:
        server.httpd.serve_forever(poll_interval=0.2)
    finally:
        server.httpd.server_close()
