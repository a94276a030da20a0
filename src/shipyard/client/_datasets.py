"""Dataset and snapshot transfer: hash files into chunks, push only missing blobs, pull with
every byte verified, and resume either way.

A file is cut into chunks of ``CHUNK`` bytes; each chunk is a blob named by its sha256, stored
once per project. Pushing asks the server which blobs it lacks and sends only those, so a push
that was interrupted resumes where it stopped and a second push of the same data sends nothing.
Pulling writes each file to ``NAME.partial``, keeps the chunks already there that verify, and
renames the file only once its whole sha256 matches the manifest.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.client._http import Http, error_of
from shipyard.errors import Conflict, NotFound, Unprocessable

CHUNK = 8 * 1024 * 1024  # a chunk is one request; big enough to stream fast, small to resume
THREADS = 4
Progress = Callable[[int], object]


@dataclass
class Transfer:
    """What a push or pull did."""

    files: int = 0
    size: int = 0  # bytes in the version
    sent: int = 0  # bytes that crossed the network
    skipped: int = 0  # files (pull) or chunks (push) already in place


def hash_file(path: Path, rel: str) -> dict[str, Any]:
    """The manifest entry of one file: size, sha256 and the sha256 of each chunk."""
    whole = hashlib.sha256()
    chunks: list[str] = []
    size = 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            whole.update(block)
            chunks.append(hashlib.sha256(block).hexdigest())
            size += len(block)
    return {"path": rel, "size": size, "sha256": whole.hexdigest(), "chunks": chunks}


def folder_files(root: Path) -> list[tuple[Path, str]]:
    """Every file under ``root`` with its relative POSIX path, sorted (links followed)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    return sorted(
        ((p, p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file()),
        key=lambda t: t[1],
    )


def manifest(files: Iterable[tuple[Path, str]], on_hash: Progress | None = None) -> list[Any]:
    """Manifest entries of ``(path, relative name)`` pairs, hashed by a few threads (hashlib
    lets go of the GIL on big buffers, so the cores share the work)."""

    def one(item: tuple[Path, str]) -> dict[str, Any]:
        entry = hash_file(*item)
        if on_hash is not None:
            on_hash(entry["size"])
        return entry

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(one, files))


def ensure_project(http: Http, project: str) -> None:
    """Create the project on first use (the caller owns it), as starting a run does."""
    try:
        http.json("GET", f"/api/projects/{project}/datasets")
    except NotFound:
        try:
            http.json("POST", "/api/projects", {"name": project})
        except Conflict:  # created meanwhile by someone else
            pass


def upload_missing(
    http: Http,
    project: str,
    files: list[tuple[Path, str]],
    entries: list[dict[str, Any]],
    on_progress: Progress | None = None,
) -> Transfer:
    """Send the chunks the project lacks (4 at a time); returns the bytes sent."""
    ensure_project(http, project)
    where: dict[str, tuple[Path, int, int]] = {}
    for (path, _), entry in zip(files, entries, strict=True):
        offset = 0
        for i, sha in enumerate(entry["chunks"]):
            size = min(CHUNK, entry["size"] - i * CHUNK)
            where.setdefault(sha, (path, offset, size))
            offset += size
    hashes = list(where)
    missing: list[str] = []
    for i in range(0, len(hashes), 10_000):
        batch = {"hashes": hashes[i : i + 10_000]}
        reply = http.json("POST", f"/api/projects/{project}/blobs/missing", batch)
        missing.extend(reply["missing"])
    result = Transfer(skipped=len(hashes) - len(missing))
    if on_progress is not None:
        lacking = set(missing)
        on_progress(sum(where[sha][2] for sha in hashes if sha not in lacking))

    def send(sha: str) -> int:
        path, offset, size = where[sha]
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(size)
        try:  # the server hashes what it receives: a file changed since hashing is refused
            http.request("PUT", f"/api/projects/{project}/blobs/{sha}", content=data)
        except Unprocessable as exc:
            raise Unprocessable(f"{path} changed while it was pushed; push again") from exc
        if on_progress is not None:
            on_progress(size)
        return size

    with ThreadPoolExecutor(THREADS) as pool:
        result.sent = sum(pool.map(send, missing))
    return result


def push_dataset(
    http: Http,
    project: str,
    name: str,
    root: Path,
    description: str = "",
    on_hash: Progress | None = None,
    on_progress: Progress | None = None,
) -> tuple[dict[str, Any], Transfer]:
    """Push a folder as the next version of a dataset; returns the version and the transfer."""
    files = folder_files(root)
    entries = manifest(files, on_hash)
    done = upload_missing(http, project, files, entries, on_progress)
    source = {"host": socket.gethostname(), "path": str(root.resolve())}
    version = http.json(
        "POST",
        f"/api/projects/{project}/datasets/{name}/versions",
        {"files": entries, "description": description, "source": source},
    )
    done.files, done.size = len(entries), sum(e["size"] for e in entries)
    return version, done


def parse_ref(ref: str, project: str | None) -> tuple[str, str, str]:
    """``(project, name, version)`` of ``[project/]name[@version]``."""
    head, _, version = ref.partition("@")
    proj, _, name = head.rpartition("/")
    proj = proj or project or ""
    if not proj or not name:
        raise Unprocessable(f"dataset {ref!r}: name the project (--project or PROJECT/NAME)")
    return proj, name, version or "latest"


def get_version(http: Http, project: str, name: str, version: str) -> dict[str, Any]:
    """A dataset version with its manifest."""
    result: dict[str, Any] = http.json(
        "GET", f"/api/projects/{project}/datasets/{name}/versions/{version}"
    )
    return result


def http_blobs(http: Http, project: str) -> Callable[[str], Iterator[bytes]]:
    """A chunk source reading the project's blobs from the server."""

    def fetch(sha: str) -> Iterator[bytes]:
        with http.client.stream("GET", f"/api/projects/{project}/blobs/{sha}") as r:
            if r.status_code >= 400:
                r.read()
                raise error_of(r)
            yield from r.iter_bytes(1 << 20)

    return fetch


def _valid_prefix(partial: Path, chunks: list[str], whole: Any) -> int:
    """How many leading chunks of a partial file are intact (fed to ``whole``); the file is
    cut after them."""
    good = 0
    with open(partial, "r+b") as f:
        for sha in chunks:
            block = f.read(CHUNK)
            if len(block) == 0 or hashlib.sha256(block).hexdigest() != sha:
                break
            whole.update(block)
            good += 1
        f.truncate(good * CHUNK)
    return good


def _prefetch(fetch: Callable[[str], Iterator[bytes]], hashes: list[str]) -> Iterator[bytes]:
    """Each chunk's bytes, in order, with up to ``THREADS`` downloads in flight."""
    with ThreadPoolExecutor(THREADS) as pool:
        window: deque[Future[bytes]] = deque()
        todo = iter(hashes)
        for sha in itertools.islice(todo, THREADS):
            window.append(pool.submit(lambda h: b"".join(fetch(h)), sha))
        while window:
            data = window.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                window.append(pool.submit(lambda h: b"".join(fetch(h)), nxt))
            yield data


def materialize(
    entries: list[dict[str, Any]],
    dest: Path,
    fetch: Callable[[str], Iterator[bytes]],
    on_progress: Progress | None = None,
) -> Transfer:
    """Write every file of a manifest under ``dest`` from a chunk source, verifying each chunk
    and each file; files already there and intact are kept, partial files are resumed."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    done = Transfer()
    for e in entries:
        target = (dest / e["path"]).resolve()
        if root not in target.parents:
            raise Unprocessable(f"file {e['path']!r} would land outside {dest}")
        done.files += 1
        done.size += e["size"]
        if target.is_file() and target.stat().st_size == e["size"]:
            if hash_file(target, e["path"])["sha256"] == e["sha256"]:
                done.skipped += 1
                if on_progress is not None:
                    on_progress(e["size"])
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        whole = hashlib.sha256()
        start = _valid_prefix(partial, e["chunks"], whole) if partial.exists() else 0
        if on_progress is not None and start:
            on_progress(start * CHUNK)
        wanted = e["chunks"][start:]
        with open(partial, "ab") as out:
            for sha, data in zip(wanted, _prefetch(fetch, wanted), strict=True):
                got = hashlib.sha256(data).hexdigest()
                if got != sha:
                    out.close()
                    partial.unlink(missing_ok=True)
                    raise Unprocessable(
                        f"file {e['path']!r} is corrupted: a chunk named {sha[:12]}... "
                        f"hashes to {got[:12]}...; pull refused"
                    )
                whole.update(data)
                out.write(data)
                done.sent += len(data)
                if on_progress is not None:
                    on_progress(len(data))
        if whole.hexdigest() != e["sha256"]:
            partial.unlink(missing_ok=True)
            raise Unprocessable(f"file {e['path']!r} is corrupted: its sha256 does not match")
        os.replace(partial, target)
    return done


def pull_dataset(
    http: Http,
    project: str,
    ref: str,
    dest: Path,
    on_start: Callable[[dict[str, Any]], object] | None = None,
    on_progress: Progress | None = None,
) -> tuple[dict[str, Any], Transfer]:
    """Pull ``[project/]name[@version]`` into ``dest``; every hash is checked."""
    proj, name, version = parse_ref(ref, project)
    info = get_version(http, proj, name, version)
    if on_start is not None:
        on_start(info)
    return info, materialize(info["files"], dest, http_blobs(http, proj), on_progress)
