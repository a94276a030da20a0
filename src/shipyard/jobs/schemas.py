"""Wire models of jobs, workers, quotas, usage and sweeps."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field

from shipyard.data.schemas import DATASET_REF, FileEntry
from shipyard.inputs import Attempt, Count, Finite, FreeForm, Int32

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
CLASS_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
DatasetRef = Annotated[str, Field(pattern=DATASET_REF, description="NAME@VERSION or NAME@latest")]


class JobState(StrEnum):
    queued = "queued"
    starting = "starting"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    timed_out = "timed_out"
    lost = "lost"


ACTIVE = {JobState.starting, JobState.running}
FINAL = {JobState.succeeded, JobState.failed, JobState.cancelled, JobState.timed_out, JobState.lost}


class JobCreate(BaseModel):
    name: str | None = Field(None, max_length=256)
    command: list[str] = Field(min_length=1, max_length=1000)
    snapshot: list[FileEntry] = Field(default_factory=list, max_length=100_000)
    env: dict[str, str] = Field(default_factory=dict)
    config: FreeForm = Field(default_factory=dict, description="The run's config.")
    cpus: Finite = Field(1.0, gt=0, le=4096, description="CPU cores (slots) the job needs.")
    gpus: int = Field(0, ge=0, le=64, description="GPUs, handed out as CUDA_VISIBLE_DEVICES.")
    memory_gb: Finite = Field(0.0, ge=0, le=65536, description="Memory the job needs (0: any).")
    resource_class: str | None = Field(None, pattern=CLASS_NAME)
    priority: int = Field(0, ge=-1000, le=1000, description="Higher runs first.")
    timeout_s: Finite | None = Field(None, gt=0, le=366 * 86400)
    retries: int = Field(0, ge=0, le=20, description="Retries after a failed or lost attempt.")
    retry_backoff_s: Finite = Field(10.0, ge=0, le=86400, description="Doubles each retry.")
    datasets: list[DatasetRef] = Field(default_factory=list, max_length=100)


class JobOut(BaseModel):
    id: str
    project: str
    name: str
    state: JobState
    command: list[str]
    env: list[str] = Field(description="Names of the environment variables set (not values).")
    cpus: float
    gpus: int
    memory_gb: float
    resource_class: str | None
    priority: int
    timeout_s: float | None
    retries: int
    attempts: int
    datasets: list[dict[str, Any]]
    snapshot_files: int
    snapshot_size: int
    worker: str | None
    gpu_ids: list[str]
    run_id: str | None
    sweep_id: str | None
    exit_code: int | None
    message: str
    cancel_requested: bool
    cost: float
    cpu_hours: float
    gpu_hours: float
    user: str
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class WorkerCreate(BaseModel):
    name: str = Field(min_length=1, max_length=256)
    host: str = Field("", max_length=256)
    cpus: Finite = Field(gt=0, le=4096)
    gpus: list[str] = Field(default_factory=list, max_length=64)
    memory_gb: Finite = Field(0.0, ge=0)
    resource_class: str = Field("default", pattern=CLASS_NAME)


class WorkerOut(BaseModel):
    id: str
    name: str
    kind: str
    host: str
    cpus: float
    gpus: list[str]
    memory_gb: float
    resource_class: str
    status: str
    running: int
    heartbeat_at: datetime
    created_at: datetime


class Heartbeat(BaseModel):
    running: list[str] = Field(default_factory=list, description="Ids of the jobs it runs.")


class HeartbeatOut(BaseModel):
    cancel: list[str] = Field(description="Jobs to stop: cancelled, or no longer this worker's.")


class DatasetMount(BaseModel):
    project: str
    name: str
    version: int
    files: list[FileEntry]


class Assignment(BaseModel):
    """Everything a worker needs to run one attempt of a job."""

    job_id: str
    attempt: int
    project: str
    run_id: str
    command: list[str]
    env: dict[str, str]
    snapshot: list[FileEntry]
    datasets: list[DatasetMount]
    timeout_s: float | None
    gpu_ids: list[str] | None = Field(description="CUDA_VISIBLE_DEVICES; None: leave it be.")
    token: str
    cancel_grace_s: float
    memory_gb: float = Field(0.0, description="The job's memory request, enforced (0: none).")


class JobStateIn(BaseModel):
    worker_id: str = Field(max_length=32)
    attempt: Attempt
    state: JobState
    exit_code: Int32 | None = None
    message: str = Field("", max_length=10_000)


class QuotaIn(BaseModel):
    max_gpus: Count | None = Field(None, description="GPUs the project may use at once.")
    cpu_hours_per_month: Finite | None = Field(None, ge=0, description="CPU-hours a month.")


class QuotaOut(BaseModel):
    project: str
    max_gpus: int | None
    cpu_hours_per_month: float | None
    gpus_in_use: int
    cpu_hours_this_month: float


class UsageRow(BaseModel):
    key: str
    jobs: int
    hours: float
    cpu_hours: float
    gpu_hours: float
    cost: float


class UsageOut(BaseModel):
    by: str
    since: datetime | None
    until: datetime
    currency: str
    rows: list[UsageRow]
    total: UsageRow


class SweepCreate(BaseModel):
    config: FreeForm = Field(description="The sweep.yaml, as JSON.")
    snapshot: list[FileEntry] = Field(default_factory=list, max_length=100_000)


class TrialOut(BaseModel):
    number: int
    params: dict[str, Any]
    job_id: str
    run_id: str | None
    state: str
    value: float | None
    created_at: datetime
    finished_at: datetime | None


class SweepOut(BaseModel):
    id: str
    project: str
    name: str
    method: str
    metric: str
    goal: str
    state: str
    message: str
    config: dict[str, Any]
    trials: list[TrialOut]
    best: TrialOut | None
    user: str
    created_at: datetime
    finished_at: datetime | None
