"""Blob storage for artifacts through fsspec: a local folder by default, or s3://.

Paths are always relative to the store root; :func:`safe_path` refuses anything that could escape
the folder it is meant for.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import fsspec

from shipyard.errors import NotFound, PathNotAllowed, PayloadTooLarge

CHUNK = 1024 * 1024


MAX_PATH = 1024  # characters of a whole path (the artifact columns' width, S3's key limit)
MAX_NAME = 255  # bytes of one part of it (NAME_MAX of Linux file systems)


def safe_path(path: str) -> str:
    """Normalise a user-given relative path; refuse absolute paths, ``..`` and names too long
    for a file system."""
    if not path or "\x00" in path or "\\" in path:
        raise PathNotAllowed(f"artifact path {path!r} is not allowed")
    if len(path) > MAX_PATH or any(
        len(p.encode(errors="replace")) > MAX_NAME for p in path.split("/")
    ):
        raise PathNotAllowed(
            f"artifact path {path[:64]!r}... is too long: at most {MAX_PATH} characters, "
            f"{MAX_NAME} bytes between slashes"
        )
    parts = path.split("/")
    if path.startswith("/") or any(p in ("..", ".") for p in parts):
        raise PathNotAllowed(f"artifact path {path!r} must be relative and stay inside the run")
    clean = posixpath.normpath(path)
    if clean.startswith("..") or clean.startswith("/") or clean == ".":
        raise PathNotAllowed(f"artifact path {path!r} must be relative and stay inside the run")
    return clean


@dataclass(frozen=True)
class StoredBlob:
    """What a write stored: where, how many bytes, and their sha256."""

    path: str
    size: int
    sha256: str


class Storage:
    """A blob store rooted at a local folder or an ``s3://`` prefix."""

    def __init__(self, root: str, *, s3_endpoint_url: str | None = None) -> None:
        options: dict[str, Any] = {}
        if root.startswith("s3://") and s3_endpoint_url:
            options["client_kwargs"] = {"endpoint_url": s3_endpoint_url}
        self.fs, self.root = fsspec.url_to_fs(root, **options)
        self.local = self.fs.protocol in ("file", ("file", "local")) or "file" in self.fs.protocol
        if self.local:
            self.fs.makedirs(self.root, exist_ok=True)

    def _full(self, path: str) -> str:
        return f"{self.root.rstrip('/')}/{path}"

    async def write_stream(
        self, path: str, chunks: AsyncIterator[bytes], *, limit: int
    ) -> StoredBlob:
        """Stream chunks into ``path``, hashing as they pass; refuse more than ``limit`` bytes."""
        full = self._full(path)
        if self.local:
            self.fs.makedirs(posixpath.dirname(full), exist_ok=True)
        tmp = full + ".partial"
        digest = hashlib.sha256()
        size = 0
        try:
            with self.fs.open(tmp, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(f"artifact {path!r} is larger than {limit} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            self.fs.mv(tmp, full)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise
        return StoredBlob(path, size, digest.hexdigest())

    def write_bytes(self, path: str, data: bytes) -> StoredBlob:
        """Store ``data`` at ``path``."""
        full = self._full(path)
        if self.local:
            self.fs.makedirs(posixpath.dirname(full), exist_ok=True)
        self.fs.pipe_file(full, data)
        return StoredBlob(path, len(data), hashlib.sha256(data).hexdigest())

    def open(self, path: str) -> BinaryIO:
        """Open a stored blob for reading."""
        try:
            return self.fs.open(self._full(path), "rb")  # type: ignore[no-any-return]
        except FileNotFoundError as exc:
            raise NotFound(f"blob {path!r} does not exist") from exc

    def iter_bytes(self, path: str) -> Iterator[bytes]:
        """Yield a stored blob in chunks."""
        with self.open(path) as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def copy(self, src: str, dst: str) -> None:
        """Copy a blob inside the store (server-side on S3)."""
        full = self._full(dst)
        if self.local:
            self.fs.makedirs(posixpath.dirname(full), exist_ok=True)
        try:
            self.fs.copy(self._full(src), full)
        except FileNotFoundError as exc:
            raise NotFound(f"blob {src!r} does not exist") from exc

    def move(self, src: str, dst: str) -> None:
        """Rename a blob inside the store (atomic within a local folder)."""
        full = self._full(dst)
        if self.local:
            self.fs.makedirs(posixpath.dirname(full), exist_ok=True)
        try:
            self.fs.mv(self._full(src), full)
        except FileNotFoundError as exc:
            raise NotFound(f"blob {src!r} does not exist") from exc

    def read_bytes(self, path: str) -> bytes:
        """A whole (small) blob."""
        with self.open(path) as f:
            return f.read()

    def delete_prefix(self, prefix: str) -> None:
        """Remove every blob under ``prefix``."""
        full = self._full(prefix)
        if self.fs.exists(full):
            self.fs.rm(full, recursive=True)

    def delete(self, path: str) -> None:
        """Remove a blob if it exists."""
        full = self._full(path)
        if self.fs.exists(full):
            self.fs.rm(full)
