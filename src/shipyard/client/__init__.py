"""The SDK: talks to a Shipyard server over HTTP; never imports the server's code.

Its modules are private (``_run``, ``_http``...); this package is what the root ``shipyard``
surface, the feature commands (``*/cli.py``) and the job runners use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.surface import exports, names

if TYPE_CHECKING:
    from shipyard.client._cli import ProjectOpt as ProjectOpt
    from shipyard.client._cli import parse_duration as parse_duration
    from shipyard.client._cli import require_project as require_project
    from shipyard.client._client import Client as Client
    from shipyard.client._client import RunView as RunView
    from shipyard.client._config import ClientSettings as ClientSettings
    from shipyard.client._datasets import CHUNK as CHUNK
    from shipyard.client._datasets import folder_files as folder_files
    from shipyard.client._datasets import http_blobs as http_blobs
    from shipyard.client._datasets import materialize as materialize
    from shipyard.client._datasets import pull_dataset as pull_dataset
    from shipyard.client._datasets import push_dataset as push_dataset
    from shipyard.client._http import Http as Http
    from shipyard.client._http import ServerUnreachable as ServerUnreachable
    from shipyard.client._jobs import follow_job as follow_job
    from shipyard.client._jobs import iter_jobs as iter_jobs
    from shipyard.client._jobs import job_logs as job_logs
    from shipyard.client._jobs import submit_job as submit_job
    from shipyard.client._jobs import upload_snapshot as upload_snapshot
    from shipyard.client._jobs import wait_job as wait_job
    from shipyard.client._media import Image as Image
    from shipyard.client._models import load_model as load_model
    from shipyard.client._run import Run as Run
    from shipyard.client._spool import deliver as deliver
    from shipyard.client._spool import spooled_runs as spooled_runs

_SURFACE = {
    "_cli": ["ProjectOpt", "parse_duration", "require_project"],
    "_client": ["Client", "RunView"],
    "_config": ["ClientSettings"],
    "_datasets": [
        "CHUNK",
        "folder_files",
        "http_blobs",
        "materialize",
        "pull_dataset",
        "push_dataset",
    ],
    "_http": ["Http", "ServerUnreachable"],
    "_jobs": ["follow_job", "iter_jobs", "job_logs", "submit_job", "upload_snapshot", "wait_job"],
    "_media": ["Image"],
    "_models": ["load_model"],
    "_run": ["Run"],
    "_spool": ["deliver", "spooled_runs"],
}
__all__ = names(_SURFACE)
__getattr__ = exports(__name__, _SURFACE)
