"""Wire models of the registry (MLflow's words: registered model, version, alias)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shipyard.inputs import Version

MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
# Lower-case, starting with a letter, so an alias never reads as a version number.
ALIAS_NAME = r"^[a-z][a-z0-9_-]{0,63}$"


class ModelCreate(BaseModel):
    name: str = Field(pattern=MODEL_NAME)
    description: str = Field("", max_length=10_000)
    tags: dict[str, str] = Field(default_factory=dict)


class ModelUpdate(BaseModel):
    description: str | None = Field(None, max_length=10_000)
    card: str | None = Field(None, max_length=200_000, description="Model card (markdown).")
    tags: dict[str, str] | None = None


class VersionCreate(BaseModel):
    source: str = Field(description="Where the package is: runs:/RUN_ID/PATH.", max_length=1024)
    description: str = Field("", max_length=10_000)
    tags: dict[str, str] = Field(default_factory=dict)
    parent_version: Version | None = Field(None, description="Default: the latest version.")


class VersionUpdate(BaseModel):
    description: str | None = Field(None, max_length=10_000)
    tags: dict[str, str] | None = None
    status: str | None = Field(None, pattern=r"^(ready|archived)$")


class AliasSet(BaseModel):
    version: Version


class AliasRequestCreate(BaseModel):
    alias: str = Field(pattern=ALIAS_NAME)
    version: Version
    reason: str = Field("", max_length=10_000)


class Decision(BaseModel):
    note: str = Field("", max_length=10_000)


class ProtectedAliases(BaseModel):
    aliases: list[str] = Field(max_length=100)


class VersionOut(BaseModel):
    model: str
    project: str
    version: int
    status: str
    flavor: str
    signature: dict[str, Any]
    files: dict[str, Any]
    manifest_sha256: str
    source: str
    run_id: str | None
    lineage: dict[str, Any]
    description: str
    tags: dict[str, str]
    aliases: list[str]
    created_by: str
    created_at: datetime


class ModelOut(BaseModel):
    name: str
    project: str
    description: str
    card: str
    tags: dict[str, str]
    aliases: dict[str, int]
    latest_version: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    versions: list[VersionOut] = Field(default_factory=list)


class AliasRequestOut(BaseModel):
    id: str
    project: str
    model: str
    alias: str
    version: int
    reason: str
    status: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str
