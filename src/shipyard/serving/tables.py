"""Endpoints and the model versions they serve, with traffic weights: the desired state.

The model is referenced by id and name, without a foreign key: the registry knows no endpoints,
and an endpoint whose version disappeared reports it instead of blocking the registry.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.db import Base, new_id, utcnow


class Endpoint(Base):
    """A named inference endpoint (unique on the server: protocol URLs carry no project)."""

    __tablename__ = "endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(String(32))
    model_name: Mapped[str] = mapped_column(String(128))
    min_replicas: Mapped[int] = mapped_column(Integer, default=1)
    max_replicas: Mapped[int] = mapped_column(Integer, default=1)
    target_in_flight: Mapped[float] = mapped_column(Float, default=8.0)
    idle_timeout_s: Mapped[float] = mapped_column(Float, default=300.0)
    max_batch_size: Mapped[int] = mapped_column(Integer, default=32)
    max_delay_ms: Mapped[float] = mapped_column(Float, default=5.0)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class EndpointVersion(Base):
    """A model version behind an endpoint and its share of the traffic (0 while draining)."""

    __tablename__ = "endpoint_versions"

    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    weight: Mapped[int] = mapped_column(Integer, default=100)
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)
