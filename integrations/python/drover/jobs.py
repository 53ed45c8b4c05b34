"""A job submission with typed fields (Drover's job fields, modelled on Deadline's JobInfo).

Every field but ``plugin`` is optional: a field left ``None`` is not sent and the manager
applies its default. Field names are the manager's in snake_case (``output_directories`` is
sent as ``outputDirectories``).
"""

from dataclasses import dataclass, field, fields
from typing import Dict, List, Optional, Union

__all__ = ["JobSpec", "camel_case", "TERMINAL_STATES"]

PluginValue = Union[str, int, float, bool, List[str]]

#: Job states after which nothing more happens on their own.
TERMINAL_STATES = ("completed", "failed", "archived", "deleted")


def camel_case(name):
    """``output_directories`` -> ``outputDirectories``."""
    head, _, rest = name.partition("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest.split("_") if part)


@dataclass
class JobSpec:
    """One job to submit. See the manager's OpenAPI document (``Job``) for each field."""

    #: The application plugin (``CommandLine``, ``builtin-render``, ``Blender``, ``Katana``).
    plugin: str
    plugin_info: Optional[Dict[str, PluginValue]] = None
    name: Optional[str] = None
    batch_name: Optional[str] = None
    user: Optional[str] = None
    machine_name: Optional[str] = None
    department: Optional[str] = None
    comment: Optional[str] = None
    #: Deadline's frame list syntax: ``1-100``, ``1-100x5``, ``1,3,7``.
    frames: Optional[str] = None
    chunk_size: Optional[int] = None
    priority: Optional[int] = None
    pool: Optional[str] = None
    secondary_pool: Optional[str] = None
    group: Optional[str] = None
    machine_limit: Optional[int] = None
    allow_list: Optional[List[str]] = None
    deny_list: Optional[List[str]] = None
    limits: Optional[List[str]] = None
    dependencies: Optional[List[str]] = None
    frame_dependent: Optional[bool] = None
    resume_on_failed_dependencies: Optional[bool] = None
    resume_on_deleted_dependencies: Optional[bool] = None
    regions: Optional[List[str]] = None
    output_directories: Optional[List[str]] = None
    output_filenames: Optional[List[str]] = None
    extra_info: Optional[Dict[str, str]] = None
    environment: Optional[Dict[str, str]] = None
    #: ``queued`` or ``suspended``.
    initial_state: Optional[str] = None
    task_timeout_seconds: Optional[int] = None
    task_retries: Optional[int] = None
    job_error_limit: Optional[int] = None
    bad_worker_errors: Optional[int] = None
    #: ``nothing``, ``archive`` or ``delete``.
    on_complete: Optional[str] = None
    event_opt_ins: Optional[List[str]] = None
    #: An absolute folder: each task's log is mirrored to ``<folder>/<jobId>_<task>.log``.
    log_directory: Optional[str] = None
    #: Publish the render as the next version of this product
    #: (``show/seq010/sh010/lightingMain``): it renders straight into the version's folder.
    publish: Optional[str] = None
    #: Fields this class does not know yet, sent as given (camelCase names).
    extra_fields: Dict[str, object] = field(default_factory=dict)

    def to_body(self):
        """The JSON body of ``POST /api/v1/jobs``."""
        body = {}
        for f in fields(self):
            if f.name == "extra_fields":
                continue
            value = getattr(self, f.name)
            if value is not None:
                body[camel_case(f.name)] = value
        body.update(self.extra_fields)
        return body
