"""What a job's token may reach: its own project, run and datasets, never more than its user.

A job runs code its submitter wrote, on a worker, with a token in its environment; anything that
can read the job's environment (its code, its dependencies, a shared GPU box's other users through
``/proc`` when they can) can use that token. So the token minted for a job is scoped:

- in the job's project it acts with its user's role there, at most ``developer`` (log into runs,
  register versions, read datasets and models), never ``maintainer`` or ``owner``;
- it writes only to the job's own run (heartbeats, metrics, artifacts, checkpoints), and starts no
  other run;
- in other projects it reads the datasets the job mounts (their versions and blobs), and nothing
  else there: no runs, models or other datasets;
- it is no server admin even when its user is one, cannot mint tokens or login links, manage
  users or members, or act as a worker;
- it is revoked when the job ends (and expires as a backstop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard.errors import Forbidden


@dataclass(frozen=True, slots=True)
class TokenScope:
    """The reach of a job's token (stored as JSON on the token)."""

    job_id: str
    project_id: str
    run_id: str
    datasets: tuple[str, ...] = ()  # "PROJECT_ID/NAME" of each dataset the job mounts
    user_is_admin: bool = False  # the user's own flag (an admin's job: a developer in its project)

    def to_json(self) -> dict[str, Any]:
        """The stored form (the user's admin flag is read from the user, not stored)."""
        return {
            "job_id": self.job_id,
            "project_id": self.project_id,
            "run_id": self.run_id,
            "datasets": list(self.datasets),
        }

    def mounts(self, project_id: str, dataset: str | None) -> bool:
        """Whether the job mounts ``dataset`` of that project (None: any of its datasets, for
        blobs, which are named by their content's hash)."""
        if dataset is None:
            return any(d.split("/", 1)[0] == project_id for d in self.datasets)
        return f"{project_id}/{dataset}" in self.datasets

    @classmethod
    def from_json(cls, data: dict[str, Any], user_is_admin: bool) -> TokenScope:
        """The scope stored on a token, for a user who is (or is not) a server admin."""
        return cls(
            job_id=str(data["job_id"]),
            project_id=str(data["project_id"]),
            run_id=str(data["run_id"]),
            datasets=tuple(str(d) for d in data.get("datasets", ())),
            user_is_admin=user_is_admin,
        )

    def refuse(self, what: str) -> Forbidden:
        """The error for something no job token may do."""
        return Forbidden(f"the token of job {self.job_id} may not {what}")
