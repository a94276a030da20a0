"""Wire models of datasets: file manifests, versions, blob queries, dataset references."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shipyard.inputs import Size

DATASET_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
SHA256 = r"^[0-9a-f]{64}$"
# name, name@3, name@latest, project/name@3
DATASET_REF = r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,127}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}(?:@\w+)?$"
MAX_FILES = 1_000_000


class FileEntry(BaseModel):
    """One file of a manifest: its bytes are the concatenation of its chunks (blobs)."""

    path: str = Field(min_length=1, max_length=1024)
    size: Size
    sha256: str = Field(pattern=SHA256)
    chunks: list[str] = Field(default_factory=list, description="sha256 of each chunk, in order")


class Source(BaseModel):
    """Where a version was pushed from."""

    host: str = Field("", max_length=256)
    path: str = Field("", max_length=4096)


class VersionCreate(BaseModel):
    files: list[FileEntry] = Field(max_length=MAX_FILES)
    description: str = Field("", max_length=10_000)
    source: Source = Field(default_factory=Source)


class BlobQuery(BaseModel):
    hashes: list[str] = Field(max_length=MAX_FILES)


class BlobMissing(BaseModel):
    missing: list[str]


class BlobOut(BaseModel):
    sha256: str
    size: int
    existed: bool


class DatasetUse(BaseModel):
    ref: str = Field(pattern=DATASET_REF, description="name@version, name@latest or name")


class VersionOut(BaseModel):
    dataset: str
    project: str
    version: int
    file_count: int
    size: int
    manifest_sha256: str
    description: str
    source: dict[str, Any]
    created_by: str
    created_at: datetime
    files: list[FileEntry] | None = None


class DatasetOut(BaseModel):
    name: str
    project: str
    description: str
    latest_version: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    versions: list[VersionOut] = Field(default_factory=list)
