"""Artifacts, images and checkpoints of runs, kept in the blob store under ``runs/<id>/``."""

from __future__ import annotations

import io
import math
from collections.abc import AsyncIterator

from PIL import Image as PILImage
from PIL import UnidentifiedImageError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipyard.errors import BadRequest, NotFound, Unprocessable
from shipyard.storage import Storage, StoredBlob, safe_path
from shipyard.tracking.service import finite_or_str
from shipyard.tracking.tables import Artifact, Checkpoint, Image

MAX_IMAGE_BYTES = 32 * 1024 * 1024


def blob_path(run_id: str, path: str) -> str:
    """Where an artifact of a run lives in the blob store."""
    return f"runs/{run_id}/artifacts/{path}"


async def upload_artifact(
    storage: Storage, run_id: str, path: str, chunks: AsyncIterator[bytes], *, limit: int
) -> StoredBlob:
    """Stream an artifact into the blob store (call :func:`record_artifact` after)."""
    return await storage.write_stream(blob_path(run_id, safe_path(path)), chunks, limit=limit)


def record_artifact(session: Session, run_id: str, path: str, blob: StoredBlob) -> Artifact:
    """Remember a stored artifact (a re-upload to the same path replaces it)."""
    path = safe_path(path)
    row = session.get(Artifact, (run_id, path))
    if row is None:
        row = Artifact(run_id=run_id, path=path, size=blob.size, sha256=blob.sha256)
        session.add(row)
    else:
        row.size, row.sha256 = blob.size, blob.sha256
    session.flush()
    return row


def list_artifacts(session: Session, run_id: str, prefix: str = "") -> list[Artifact]:
    """Artifacts of a run under ``prefix``, by path."""
    stmt = select(Artifact).where(Artifact.run_id == run_id)
    if prefix:
        stmt = stmt.where(Artifact.path.startswith(safe_path(prefix.rstrip("/")), autoescape=True))
    return list(session.scalars(stmt.order_by(Artifact.path)))


def get_artifact(session: Session, run_id: str, path: str) -> Artifact:
    """One artifact of a run."""
    row = session.get(Artifact, (run_id, safe_path(path)))
    if row is None:
        raise NotFound(f"run {run_id!r} has no artifact {path!r}")
    return row


def log_image(
    session: Session, storage: Storage, run_id: str, key: str, step: int, caption: str, png: bytes
) -> Image:
    """Store a PNG logged under ``key`` at ``step``."""
    key_path = safe_path(key)
    if len(png) > MAX_IMAGE_BYTES:
        raise BadRequest(f"image {key!r} is larger than {MAX_IMAGE_BYTES} bytes")
    try:
        with PILImage.open(io.BytesIO(png)) as img:
            if img.format != "PNG":
                raise BadRequest(f"image {key!r} must be a PNG, got {img.format}")
            width, height = img.size
    except (UnidentifiedImageError, OSError) as exc:
        raise BadRequest(f"image {key!r} is not a readable PNG") from exc
    n = session.scalar(
        select(func.count()).where(Image.run_id == run_id, Image.key == key, Image.step == step)
    )
    path = f"media/images/{key_path}/{step}_{n or 0}.png"
    blob = storage.write_bytes(blob_path(run_id, path), png)
    record_artifact(session, run_id, path, blob)
    image = Image(
        run_id=run_id, key=key, step=step, caption=caption, path=path, width=width, height=height
    )
    session.add(image)
    session.flush()
    return image


def list_images(session: Session, run_id: str, key: str | None = None) -> list[Image]:
    """Images of a run, by key then step."""
    stmt = select(Image).where(Image.run_id == run_id)
    if key is not None:
        stmt = stmt.where(Image.key == key)
    return list(session.scalars(stmt.order_by(Image.key, Image.step, Image.id)))


def add_checkpoint(
    session: Session, run_id: str, path: str, step: int | None, metrics: dict[str, float]
) -> Checkpoint:
    """Mark an uploaded artifact as a checkpoint scoring ``metrics``."""
    artifact = get_artifact(session, run_id, path)
    clean = {k: finite_or_str(v) for k, v in metrics.items()}  # JSON columns refuse NaN
    checkpoint = Checkpoint(run_id=run_id, path=artifact.path, step=step, metrics=clean)
    session.add(checkpoint)
    session.flush()
    return checkpoint


def list_checkpoints(
    session: Session, run_id: str, best: str | None = None, goal: str = "max"
) -> list[Checkpoint]:
    """A run's checkpoints, oldest first; with ``best``, only the best one by that metric."""
    if goal not in ("max", "min"):
        raise Unprocessable("goal must be 'max' or 'min'")
    rows = list(
        session.scalars(
            select(Checkpoint).where(Checkpoint.run_id == run_id).order_by(Checkpoint.id)
        )
    )
    if best is None:
        return rows
    scored = [
        c
        for c in rows
        if isinstance(c.metrics.get(best), int | float) and not math.isnan(c.metrics[best])
    ]
    if not scored:
        raise NotFound(f"no checkpoint of run {run_id!r} has metric {best!r}")
    pick = max if goal == "max" else min
    return [pick(scored, key=lambda c: c.metrics[best])]
