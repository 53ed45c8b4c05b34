"""The Python client of the Drover manager's HTTP API (standard library only).

It mirrors the TypeScript client (``src/client``): every call is declared once in
:data:`CALLS` (the route's name, which is its ``operationId`` in ``/api/v1/openapi.json``,
its method, path template and query parameters), several manager addresses with sticky
failover, a timeout per request, and the manager's JSON errors raised as typed exceptions
(:mod:`drover.errors`). Replies are the manager's JSON (dicts and lists); the wrapper of a
single value (``{"job": …}``) is removed.
"""

import json
import os
import socket
import time
import uuid
from collections import namedtuple
from urllib import error as urlerror
from urllib import parse, request

from .errors import DroverError, Unavailable, error_for
from .jobs import TERMINAL_STATES, JobSpec, camel_case

__all__ = ["Client", "Call", "CALLS", "API_PREFIX"]

API_PREFIX = "/api/v1"

#: One route of the manager: ``name`` is its operationId, ``path`` a template with ``{param}``.
Call = namedtuple("Call", ["name", "method", "path", "query"])

#: Every call this client makes. The drift test checks each against the OpenAPI document.
CALLS = dict(
    (c.name, c)
    for c in (
        Call("health", "GET", "/health", ()),
        Call("openapi", "GET", "/openapi.json", ()),
        Call("whoami", "GET", "/whoami", ()),
        Call("listEvents", "GET", "/events", ("after", "limit", "type", "job")),
        Call("listLimits", "GET", "/limits", ()),
        Call("setLimit", "PUT", "/limits/{name}", ()),
        Call("submitJob", "POST", "/jobs", ()),
        Call("listJobs", "GET", "/jobs", ("state", "user", "limit", "offset", "all")),
        Call("getJob", "GET", "/jobs/{id}", ()),
        Call("updateJob", "PATCH", "/jobs/{id}", ()),
        Call("jobAction", "POST", "/jobs/{id}/actions", ()),
        Call("listTasks", "GET", "/jobs/{id}/tasks", ("limit", "offset")),
        Call("requeueTasks", "POST", "/jobs/{id}/tasks/requeue", ()),
        Call("taskLog", "GET", "/jobs/{id}/tasks/{index}/log", ("attempt", "after", "limit")),
        Call("listWorkers", "GET", "/workers", ()),
        Call("getWorker", "GET", "/workers/{name}", ()),
        Call("setWorkerEnabled", "PATCH", "/workers/{name}", ()),
        Call("listPathMappings", "GET", "/paths", ()),
        Call("mapPath", "POST", "/paths/map", ()),
        Call("addPathMapping", "POST", "/paths", ()),
        Call("removePathMapping", "DELETE", "/paths/{id}", ()),
        Call("replication", "GET", "/regions/replication", ()),
        Call("latestOutput", "GET", "/jobs/{id}/outputs/latest", ()),
        Call("listPlugins", "GET", "/plugins", ()),
        Call("getPlugin", "GET", "/plugins/{name}", ()),
        Call("configurePlugin", "PATCH", "/plugins/{name}", ()),
        Call("createToken", "POST", "/tokens", ()),
        Call("listTokens", "GET", "/tokens", ()),
        Call("revokeToken", "DELETE", "/tokens/{id}", ()),
        Call("listProducts", "GET", "/products", ("prefix", "limit")),
        Call("listVersions", "GET", "/versions", ("product", "all", "limit", "before")),
        Call("latestVersion", "GET", "/versions/latest", ("product",)),
        Call("getVersion", "GET", "/versions/{id}", ()),
        Call("approveVersion", "POST", "/versions/{id}/approve", ()),
        Call("rejectVersion", "POST", "/versions/{id}/reject", ()),
        Call("publishFolder", "POST", "/versions", ()),
    )
)

#: The job actions of ``POST /jobs/{id}/actions``.
JOB_ACTIONS = ("suspend", "resume", "requeue", "fail", "delete", "archive", "pend", "release")

DEFAULT_TIMEOUT = 30.0


class _ConnectionFailure(Exception):
    """The manager could not be reached; ``before_sending`` when the request never left."""

    def __init__(self, message, before_sending):
        super(_ConnectionFailure, self).__init__(message)
        self.before_sending = before_sending


def _before_sending(reason):
    # Refused, unknown host, unreachable network: nothing was sent, so the next address may
    # be tried even for a POST. A timeout or reset after sending may have been applied.
    if isinstance(reason, (ConnectionRefusedError, socket.gaierror)):
        return True
    if isinstance(reason, OSError) and reason.errno in (101, 113, 99):  # ENETUNREACH…
        return True
    return False


class Client(object):
    """A client of one farm.

    ``url``: the manager's address (``http://host:8642``), a list of addresses, or a
    comma-separated string; defaults to ``DROVER_URL``. ``token``: defaults to
    ``DROVER_TOKEN``. When an address cannot be reached the next is tried, and the one that
    answered is used first from then on.
    """

    def __init__(self, url=None, token=None, timeout=DEFAULT_TIMEOUT):
        if url is None:
            url = os.environ.get("DROVER_URL", "")
        if isinstance(url, str):
            url = [u.strip() for u in url.split(",")]
        urls = [u.rstrip("/") for u in url if u and u.strip()]
        if not urls:
            raise DroverError(
                "url: name at least one manager address (or set DROVER_URL)",
                code="invalid_input",
                field="url",
            )
        self._urls = urls
        self._token = token if token is not None else os.environ.get("DROVER_TOKEN") or None
        self._timeout = timeout
        self._active = 0

    @property
    def url(self):
        """The address in use (the one that answered last)."""
        return self._urls[self._active]

    # ----- the transport -----

    def call(self, name, params=None, query=None, body=None, headers=None, timeout=None):
        """Calls the route ``name`` of :data:`CALLS`; returns its JSON reply."""
        spec = CALLS[name]
        path = spec.path
        for key, value in (params or {}).items():
            token = "{%s}" % key
            if token not in path:
                raise ValueError("%s has no path parameter %r" % (name, key))
            path = path.replace(token, parse.quote(str(value), safe=""))
        if "{" in path:
            raise ValueError("%s: missing path parameters in %s" % (name, path))
        pairs = []
        for key, value in (query or {}).items():
            if key not in spec.query:
                raise ValueError("%s takes no query parameter %r" % (name, key))
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            pairs.append((key, str(value)))
        target = API_PREFIX + path + ("?" + parse.urlencode(pairs) if pairs else "")
        # A submission carrying an Idempotency-Key is safe to send again: the manager answers
        # a retry with the job the first one made, so it fails over like a GET.
        idempotent = spec.method == "GET" or bool(
            headers and headers.get("Idempotency-Key")
        )
        return self._request(spec.method, target, body, headers or {}, timeout, idempotent)

    def _request(self, method, target, body, headers, timeout, idempotent):
        failures = []
        count = len(self._urls)
        for i in range(count):
            index = (self._active + i) % count
            base = self._urls[index]
            try:
                reply = self._once(base, method, target, body, headers, timeout)
            except _ConnectionFailure as failure:
                failures.append("%s: %s" % (base, failure))
                if not (failure.before_sending or idempotent):
                    break
                continue
            self._active = index
            return reply
        raise Unavailable("cannot reach the manager at " + "; ".join(failures))

    def _once(self, base, method, target, body, headers, timeout):
        all_headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        if self._token:
            all_headers["Authorization"] = "Bearer " + self._token
        all_headers.update(headers)
        req = request.Request(base + target, data=data, headers=all_headers, method=method)
        seconds = self._timeout if timeout is None else timeout
        what = "%s %s" % (method, target.split("?")[0])
        try:
            response = request.urlopen(req, timeout=seconds)
            status, text = response.status, response.read()
            response.close()
        except urlerror.HTTPError as http_error:
            text = http_error.read()
            http_error.close()
            raise error_for(http_error.code, _parse(text), what)
        except urlerror.URLError as url_error:
            reason = url_error.reason
            if isinstance(reason, socket.timeout):
                raise _ConnectionFailure("no reply within %s s" % seconds, False)
            raise _ConnectionFailure(str(reason), _before_sending(reason))
        except socket.timeout:
            raise _ConnectionFailure("no reply within %s s" % seconds, False)
        except (ConnectionError, OSError) as os_error:  # reset while reading, …
            raise _ConnectionFailure(str(os_error), False)
        if not text:
            return None
        parsed = _parse(text)
        if parsed is None:
            raise Unavailable("%s answered %s with non-JSON (%d)" % (base, what, status))
        return parsed

    # ----- the farm -----

    def health(self):
        return self.call("health")

    def openapi(self):
        """The manager's OpenAPI 3.1 document."""
        return self.call("openapi")

    def whoami(self):
        return self.call("whoami")

    # ----- jobs -----

    def submit_job(self, spec=None, idempotency_key=None, **fields):
        """Submits a job: a :class:`JobSpec`, or its fields as keyword arguments
        (``submit_job(plugin="CommandLine", plugin_info={...}, frames="1-10")``).

        An ``Idempotency-Key`` (a new uuid4 unless given) is sent, and reused when the request
        is sent again to the next address after a connection failure, so failover never
        submits the job twice. Returns the job.
        """
        if spec is None:
            spec = JobSpec(**fields)
        elif fields:
            raise TypeError("give a JobSpec or keyword fields, not both")
        body = spec.to_body() if isinstance(spec, JobSpec) else dict(spec)
        key = idempotency_key or str(uuid.uuid4())
        reply = self.call("submitJob", body=body, headers={"Idempotency-Key": key})
        return reply["job"]

    def list_jobs(self, state=None, user=None, limit=None, offset=None, all=False):
        """Jobs, newest first; ``state`` one state or a list, ``all`` includes archived and
        deleted jobs."""
        if isinstance(state, (list, tuple)):
            state = ",".join(state) or None
        query = {"state": state, "user": user or None, "limit": limit, "offset": offset}
        if all:
            query["all"] = True
        return self.call("listJobs", query=query)["jobs"]

    def get_job(self, job_id):
        return self.call("getJob", params={"id": job_id})["job"]

    def update_job(self, job_id, **changes):
        """Changes scheduling fields (``name``, ``priority``, ``pool``, ``allowList``…)."""
        body = dict((_camel(k), v) for k, v in changes.items())
        return self.call("updateJob", params={"id": job_id}, body=body)["job"]

    def job_action(self, job_id, action):
        """One of :data:`JOB_ACTIONS`; returns the job."""
        return self.call("jobAction", params={"id": job_id}, body={"action": action})["job"]

    def suspend_job(self, job_id):
        return self.job_action(job_id, "suspend")

    def resume_job(self, job_id):
        return self.job_action(job_id, "resume")

    def requeue_job(self, job_id):
        return self.job_action(job_id, "requeue")

    def fail_job(self, job_id):
        return self.job_action(job_id, "fail")

    def delete_job(self, job_id):
        return self.job_action(job_id, "delete")

    def archive_job(self, job_id):
        return self.job_action(job_id, "archive")

    def list_tasks(self, job_id, limit=None, offset=None):
        query = {"limit": limit, "offset": offset}
        return self.call("listTasks", params={"id": job_id}, query=query)["tasks"]

    def requeue_tasks(self, job_id, indexes):
        body = {"tasks": list(indexes)}
        return self.call("requeueTasks", params={"id": job_id}, body=body)["tasks"]

    def task_log(self, job_id, index, attempt=None, after=None, limit=None):
        """One page of a task attempt's log: ``{"attempt", "chunks": [{seq, stream, text…}]}``."""
        query = {"attempt": attempt, "after": after, "limit": limit}
        return self.call("taskLog", params={"id": job_id, "index": index}, query=query)

    def follow_task_log(self, job_id, index, attempt=None, poll_interval=0.5, timeout=None):
        """Yields a task attempt's log chunks as they arrive, until the attempt has ended and
        every chunk has been read (``timeout`` seconds without that: TimeoutError). Without
        ``attempt`` it follows the latest one, moving on when the task is tried again."""
        deadline = None if timeout is None else time.monotonic() + timeout
        follow_latest = attempt is None
        after = None
        while True:
            page = self.task_log(job_id, index, attempt=attempt, after=after)
            if attempt is None and page["attempt"] >= 1:
                attempt = page["attempt"]  # attempt 0: the task has not started yet
            for chunk in page["chunks"]:
                after = chunk["seq"]
                yield chunk
            if page["chunks"]:
                continue
            task = self._task(job_id, index)
            if follow_latest and task["attempt"] > (attempt or 0):
                attempt, after = task["attempt"], None
                continue
            running = task["attempt"] == attempt and task["state"] == "rendering"
            waiting = follow_latest and task["state"] == "queued"
            if not (running or waiting):
                # Ended: one last read for what arrived since the empty page.
                page = self.task_log(job_id, index, attempt=attempt, after=after)
                for chunk in page["chunks"]:
                    yield chunk
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("the log of task %s of %s did not end" % (index, job_id))
            time.sleep(poll_interval)

    def _task(self, job_id, index):
        for task in self.list_tasks(job_id, offset=index, limit=1):
            if task["index"] == index:
                return task
        raise error_for(404, None, "task %s of job %s" % (index, job_id))

    def wait_for_completion(self, job_id, callback=None, poll_interval=1.0, timeout=None):
        """Polls the job until it is completed, failed, archived or deleted and returns it.
        ``callback(job)`` is called after each poll (progress: ``job["counts"]``).
        ``timeout`` in seconds raises TimeoutError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if callback is not None:
                callback(job)
            if job["state"] in TERMINAL_STATES:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("job %s is still %s" % (job_id, job["state"]))
            time.sleep(poll_interval)

    # ----- workers, limits, events, paths -----

    def list_workers(self):
        return self.call("listWorkers")["workers"]

    def get_worker(self, name):
        return self.call("getWorker", params={"name": name})["worker"]

    def set_worker_enabled(self, name, enabled):
        body = {"enabled": bool(enabled)}
        return self.call("setWorkerEnabled", params={"name": name}, body=body)["worker"]

    def list_limits(self):
        return self.call("listLimits")["limits"]

    def set_limit(self, name, maximum):
        return self.call("setLimit", params={"name": name}, body={"max": maximum})["limits"]

    def list_events(self, after=None, limit=None, type=None, job=None):
        """Events after the cursor ``after`` (an event's ``seq``); ``type`` one or a list."""
        if isinstance(type, (list, tuple)):
            type = ",".join(type) or None
        query = {"after": after, "limit": limit, "type": type, "job": job}
        return self.call("listEvents", query=query)["events"]

    def list_path_mappings(self):
        return self.call("listPathMappings")["rules"]

    def map_path(self, path, region, os=None):
        """What ``path`` becomes on workers of ``region`` (and ``os``: linux, darwin, win32)."""
        body = {"path": path, "region": region}
        if os:
            body["os"] = os
        return self.call("mapPath", body=body)["path"]

    def add_path_mapping(self, prefix, replacement, region="", os="", case_sensitive=True):
        """Adds a path mapping rule (admin); returns it with its id."""
        body = {
            "prefix": prefix,
            "replacement": replacement,
            "region": region,
            "os": os,
            "caseSensitive": case_sensitive,
        }
        return self.call("addPathMapping", body=body)["rule"]

    def remove_path_mapping(self, rule_id):
        self.call("removePathMapping", params={"id": rule_id})

    def replication(self):
        """Each GFS site's replication lag, as the gfs-sync plugin's GFS reports it."""
        return self.call("replication")

    def latest_output(self, job_id):
        """The newest image in the job's output directories (or None)."""
        return self.call("latestOutput", params={"id": job_id})["image"]

    # ----- event plugins and tokens (admin for changes) -----

    def list_plugins(self):
        return self.call("listPlugins")["plugins"]

    def get_plugin(self, name):
        return self.call("getPlugin", params={"name": name})["plugin"]

    def configure_plugin(self, name, state=None, config=None):
        """Sets an event plugin's state (disabled, opt-in, global) and/or configuration."""
        body = {}
        if state is not None:
            body["state"] = state
        if config is not None:
            body["config"] = config
        return self.call("configurePlugin", params={"name": name}, body=body)["plugin"]

    def create_token(self, name, role, workers=None):
        """Creates an access token (admin); the reply's ``token`` is its secret, shown once."""
        body = {"name": name, "role": role}
        if workers is not None:
            body["workers"] = workers
        return self.call("createToken", body=body)

    def list_tokens(self):
        return self.call("listTokens")["tokens"]

    def revoke_token(self, token_id):
        return self.call("revokeToken", params={"id": token_id})["token"]

    # ----- products and versions (publishing) -----

    def list_products(self, prefix=None, limit=None):
        """Products (``show/seq010/sh010/lightingMain``) with their latest version numbers."""
        return self.call("listProducts", query={"prefix": prefix, "limit": limit})["products"]

    def list_versions(self, product=None, all=False, limit=None, before=None):
        """Versions, newest first: approved only unless ``all`` (the loader's default view)."""
        query = {"product": product, "all": bool(all), "limit": limit, "before": before}
        return self.call("listVersions", query=query)["versions"]

    def latest_version(self, product):
        """The product's newest approved version, or None."""
        return self.call("latestVersion", query={"product": product})["version"]

    def get_version(self, version_id):
        return self.call("getVersion", params={"id": version_id})["version"]

    def approve_version(self, version_id, comment=""):
        """Approves a version (its submitter or an admin)."""
        body = {"comment": comment}
        return self.call("approveVersion", params={"id": version_id}, body=body)["version"]

    def reject_version(self, version_id, comment=""):
        body = {"comment": comment}
        return self.call("rejectVersion", params={"id": version_id}, body=body)["version"]

    def publish_folder(self, folder, product, comment=""):
        """Publishes an existing folder (inside the publish roots) as the product's next
        version, without copying; returns the version."""
        body = {"folder": folder, "product": product, "comment": comment}
        return self.call("publishFolder", body=body)["version"]


def _camel(name):
    return camel_case(name)


def _parse(text):
    try:
        return json.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
