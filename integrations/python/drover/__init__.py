"""Drover's Python client (standard library only, Python 3.7+).

    import drover
    client = drover.Client("http://127.0.0.1:8642", token="drv_…")  # or DROVER_URL/DROVER_TOKEN
    job = client.submit_job(plugin="builtin-render", frames="1-10",
                            output_directories=["/gfs/show/renders"])
    client.wait_for_completion(job["id"], callback=lambda j: print(j["state"], j["counts"]))
"""

from .client import API_PREFIX, CALLS, JOB_ACTIONS, Call, Client
from .errors import (
    Conflict,
    DroverError,
    Forbidden,
    InsufficientStorage,
    InvalidInput,
    LeaseLost,
    NotFound,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from .jobs import TERMINAL_STATES, JobSpec

__version__ = "0.1.0"

__all__ = [
    "API_PREFIX",
    "CALLS",
    "JOB_ACTIONS",
    "Call",
    "Client",
    "Conflict",
    "DroverError",
    "Forbidden",
    "InsufficientStorage",
    "InvalidInput",
    "JobSpec",
    "LeaseLost",
    "NotFound",
    "TERMINAL_STATES",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
]
