"""Verified, resumable downloads of dataset archives (pooch) and their atomic extraction (py7zr).

Guarantees, whatever fails:

- ``<cache>/<fname>`` only ever holds a file whose SHA-256 equals the pinned one.
  Bytes in flight live in ``<cache>/<fname>.part``; pooch hashes the finished
  file in a temporary name and moves it into place only if the hash matches,
  otherwise it is deleted (and the ``.part`` with it).
- An interrupted transfer keeps its ``.part``; the next attempt (a retry here or a
  rerun) asks the server for the rest with an HTTP ``Range`` request and starts
  over if the server ignores it.
- A file placed by hand at ``<cache>/<fname>`` is hashed and used when it matches;
  a mismatching one is moved aside to ``<fname>.sha256-mismatch`` (never trusted).
- Every failure ends in one :class:`~pcreg.errors.UserError` line naming the URL,
  the expected SHA-256 and the path where the file can be placed by hand.
- TLS: some dataset servers present an incomplete certificate chain. Only for a
  :class:`Remote` with ``allow_unverified_tls=True`` is the download retried
  without certificate verification after a TLS failure. That gives up the
  server's authentication but not integrity: the file is accepted only if its
  SHA-256 matches the pinned value, which is what actually guarantees the data.

Set ``PCREG_OFFLINE=1`` to never touch the network (files must be in place).
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import pooch

from pcreg.errors import UserError

log = logging.getLogger(__name__)

#: Seconds to wait for the server to answer / between bytes.
TIMEOUT_S = 60


@dataclass(frozen=True)
class Remote:
    """A downloadable file pinned by its SHA-256."""

    url: str
    sha256: str
    fname: str
    size: int | None = None  # informative only (messages); the hash is the check
    allow_unverified_tls: bool = False


def _is_offline() -> bool:
    return os.environ.get("PCREG_OFFLINE", "").strip().lower() in {"1", "true", "yes"}


def _describe_size(size: int | None) -> str:
    return f", {size:,} bytes" if size else ""


def _manual_hint(remote: Remote, target: Path) -> str:
    return (
        f"expected sha256 {remote.sha256}{_describe_size(remote.size)}; download it by other means and place it at "
        f"{target} (it is verified before use), then rerun"
    )


class _ResumingDownloader:
    """A pooch downloader that streams into ``<target>.part`` and resumes it with a Range request.

    The transfer itself (requests, streaming, tqdm progress bar) is pooch's
    :class:`pooch.HTTPDownloader`; this class only chooses the byte offset and
    hands the finished ``.part`` to pooch, which verifies the hash and moves it
    into place atomically.
    """

    def __init__(self, part: Path, progressbar: bool, verify: bool):
        self.part = part
        self.progressbar = progressbar
        self.verify = verify

    def __call__(self, url: str, output_file: str, pooch_instance: object, check_only: bool = False) -> None:
        import requests

        offset = self.part.stat().st_size if self.part.is_file() else 0
        mode = "r+b" if offset else "w+b"
        with open(self.part, mode) as fh:
            fh.seek(offset)

            def on_response(response: requests.Response, *args: object, **kwargs: object) -> None:
                # The server decides whether it honours the Range: 206 continues the .part, anything else
                # that succeeds is the whole file from byte 0.
                if offset and response.status_code == 200:
                    log.info("server ignored the Range request; downloading %s from the start", url)
                    fh.seek(0)
                    fh.truncate()

            headers = {"Range": f"bytes={offset}-"} if offset else {}
            downloader = pooch.HTTPDownloader(
                progressbar=self.progressbar,
                chunk_size=1 << 14,  # an interruption loses at most one chunk
                headers=headers,
                hooks={"response": on_response},
                verify=self.verify,
                timeout=TIMEOUT_S,
            )
            try:
                downloader(url, fh, pooch_instance)
            except requests.HTTPError as exc:
                # 416: the .part already holds every byte (or more); let the hash decide.
                if not (offset and exc.response is not None and exc.response.status_code == 416):
                    raise
        # pooch created ``output_file`` (empty) and will hash it and move it into place, or delete it.
        os.replace(self.part, output_file)


def _retrieve(remote: Remote, cache: Path, progressbar: bool, verify: bool) -> Path:
    part = cache / (remote.fname + ".part")
    path = pooch.retrieve(
        remote.url,
        known_hash=f"sha256:{remote.sha256}",
        fname=remote.fname,
        path=cache,
        downloader=_ResumingDownloader(part, progressbar, verify),
    )
    return Path(path)


def fetch(remote: Remote, cache_dir: str | Path, *, retries: int = 2, progressbar: bool = True) -> Path:
    """Return the path of ``remote`` in ``cache_dir``, downloading and verifying it if needed.

    ``retries`` extra attempts follow an interrupted transfer (each resumes the
    ``.part``). Raises :class:`UserError` with the URL, the checksum and the
    manual-placement path when the file cannot be obtained.
    """
    import requests

    cache = Path(cache_dir).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / remote.fname
    note = ""
    if target.is_file():
        actual = pooch.file_hash(str(target), alg="sha256")
        if actual == remote.sha256.lower():
            return target
        aside = target.with_name(target.name + ".sha256-mismatch")
        os.replace(target, aside)
        note = f" (the file that was at {target} had sha256 {actual}; moved to {aside})"
        log.warning("%s has the wrong sha256 %s; moved aside to %s", target, actual, aside)
    if _is_offline():
        raise UserError(f"{remote.fname} is not available offline (PCREG_OFFLINE is set){note}: it comes from "
                        f"{remote.url}; {_manual_hint(remote, target)}")

    verify = True
    last: Exception | None = None
    for attempt in range(1 + retries):
        try:
            return _retrieve(remote, cache, progressbar, verify)
        except requests.exceptions.SSLError as exc:
            if not (verify and remote.allow_unverified_tls):
                last = exc
                break
            # Pinned sha256 => integrity does not depend on the certificate chain (see module docstring).
            warnings.warn(
                f"TLS verification of {remote.url} failed ({exc.__class__.__name__}); retrying without certificate "
                "verification: the file is accepted only if its sha256 matches the pinned value",
                stacklevel=2,
            )
            verify = False
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            last = exc
        except ValueError as exc:
            # pooch: the finished file's hash differs; it (and the .part) are already deleted.
            (cache / (remote.fname + ".part")).unlink(missing_ok=True)
            raise UserError(
                f"download of {remote.url} is corrupt or has changed upstream: {_one_line(exc)}{note}; "
                f"{_manual_hint(remote, target)}"
            ) from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
                requests.exceptions.Timeout) as exc:
            last = exc
            part = cache / (remote.fname + ".part")
            got = part.stat().st_size if part.is_file() else 0
            if isinstance(exc, requests.exceptions.ConnectionError) and not got and attempt == 0:
                break  # unreachable: do not keep knocking
            log.warning("download of %s interrupted after %d bytes (attempt %d of %d)", remote.url, got,
                        attempt + 1, 1 + retries)
        except requests.exceptions.RequestException as exc:
            last = exc
            break
    part = cache / (remote.fname + ".part")
    if part.is_file() and part.stat().st_size == 0:
        part.unlink()
    kept = f"; {part.stat().st_size:,} bytes kept in {part.name} for a resumed rerun" if part.is_file() else ""
    raise UserError(f"could not download {remote.url}: {_one_line(last)}{kept}{note}; {_manual_hint(remote, target)}")


def _one_line(exc: BaseException | None) -> str:
    text = " ".join(str(exc).split()) if exc is not None else "unknown error"
    return f"{exc.__class__.__name__}: {text}"[:400] if exc is not None else text


def extract_7z(archive: Path, dest: Path, sha256: str) -> Path:
    """Extract ``archive`` to ``dest`` atomically; reuse ``dest`` when it was extracted from this very archive.

    Extraction goes to ``<dest>.partial`` and is renamed at the end; a marker
    file records the archive's hash so a changed archive is re-extracted.
    """
    import py7zr

    marker = dest / ".extracted-from"
    if marker.is_file() and marker.read_text().strip() == sha256:
        return dest
    if dest.exists() and not marker.is_file() and any(dest.iterdir()):
        raise UserError(f"{dest} exists and was not extracted by this suite (no {marker.name}); stopped without "
                        "touching it: move it away, or set the dataset's cache_dir to another folder")
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with py7zr.SevenZipFile(archive, mode="r") as zf:
            zf.extractall(path=tmp)
    except (py7zr.exceptions.ArchiveError, OSError, EOFError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot extract {archive}: {_one_line(exc)}; delete it and rerun to fetch it again") from None
    (tmp / ".extracted-from").write_text(sha256 + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest
