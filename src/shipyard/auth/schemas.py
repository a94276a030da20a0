"""Wire models of users and tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class UserCreate(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, description="Login name: letters, digits, . _ -")
    is_admin: bool = False


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    is_admin: bool
    created_at: datetime


class TokenCreate(BaseModel):
    name: str = Field("", max_length=128, description="What the token is for.")
    user: str | None = Field(None, description="Create for this user (admins only).")


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret; shown once, store it now.")


class LoginLinkOut(BaseModel):
    url: str = Field(description="Open it in a browser once; it signs that browser in.")
    expires_at: datetime


class MemberOut(BaseModel):
    user: str
    role: str


class MemberSet(BaseModel):
    role: str = Field(description="viewer, developer, maintainer or owner")
