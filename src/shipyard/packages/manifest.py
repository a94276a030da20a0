"""``shipyard-model.yaml``: what a package is (flavor, signature, files and their sha256)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from shipyard.errors import Unprocessable
from shipyard.packages.signature import Signature

MANIFEST = "shipyard-model.yaml"
FORMAT = "shipyard-model/1"
FLAVORS = ("onnx", "torch", "python")


class PackageError(Unprocessable):
    """A package that is incomplete, corrupted or tampered with."""

    title = "Invalid model package"


def sha256_of(path: Path) -> str:
    """The sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Manifest:
    """The parsed ``shipyard-model.yaml``."""

    flavor: str
    signature: Signature
    files: dict[str, str] = field(default_factory=dict)
    runtimes: dict[str, str] = field(default_factory=dict)
    frameworks: dict[str, str] = field(default_factory=dict)
    entrypoint: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "flavor": self.flavor,
            "created_at": self.created_at,
            "run_id": self.run_id,
            "signature": self.signature.to_dict(),
            "runtimes": self.runtimes,
            "frameworks": self.frameworks,
            "metadata": self.metadata,
            "files": self.files,
        }
        if self.entrypoint:
            data["entrypoint"] = self.entrypoint
        return data

    def write(self, folder: Path) -> None:
        """Hash every file of ``folder`` into ``files`` and write the manifest there."""
        self.files = {
            p.relative_to(folder).as_posix(): sha256_of(p)
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST
        }
        (folder / MANIFEST).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def parse(cls, data: Any) -> Manifest:
        """Validate a manifest's content."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise PackageError(f"{MANIFEST} is not a {FORMAT} manifest")
        if data.get("flavor") not in FLAVORS:
            raise PackageError(f"{MANIFEST}: unknown flavor {data.get('flavor')!r}")
        try:
            return cls(
                flavor=data["flavor"],
                signature=Signature.from_dict(data["signature"]),
                files=dict(data.get("files") or {}),
                runtimes=dict(data.get("runtimes") or {}),
                frameworks=dict(data.get("frameworks") or {}),
                entrypoint=data.get("entrypoint"),
                run_id=data.get("run_id"),
                metadata=dict(data.get("metadata") or {}),
                created_at=str(data.get("created_at", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PackageError(f"{MANIFEST} is malformed: {exc}") from exc

    @classmethod
    def read(cls, folder: Path, verify: bool = True) -> Manifest:
        """Read a package's manifest; with ``verify``, check every file's sha256."""
        path = folder / MANIFEST
        if not path.is_file():
            raise PackageError(f"{folder} is not a model package: {MANIFEST} is missing")
        try:
            manifest = cls.parse(yaml.safe_load(path.read_text()))
        except yaml.YAMLError as exc:
            raise PackageError(f"{MANIFEST} is not valid YAML: {exc}") from exc
        if verify:
            manifest.verify(folder)
        return manifest

    def verify(self, folder: Path) -> None:
        """Refuse a package whose files are missing or differ from their recorded sha256."""
        for rel, digest in self.files.items():
            file = folder / rel
            if not file.is_file():
                raise PackageError(f"package file {rel!r} is missing")
            if sha256_of(file) != digest:
                raise PackageError(
                    f"package file {rel!r} is corrupted or was modified "
                    "(sha256 differs from the manifest)"
                )
