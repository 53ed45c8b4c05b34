"""The logic of Drover's Katana farm plug-in, without Katana: the adapter
``Resources/Plugins/DroverFarmPlugin.py`` maps FarmAPI's methods onto :class:`DroverFarm`,
so the method names can be adjusted against a Katana install without touching this.

Configuration (a dict, or the JSON file named by ``DROVER_KATANA_CONFIG``)::

    {
      "url": "http://manager:8642",            # or DROVER_URL; several: a list
      "token": "drv_…",                        # or DROVER_TOKEN
      "sharedRoot": "/gfs/katana-tmp",         # seen by the workstation and the render nodes
      "installations": {                       # the render nodes' Katana, per OS and region
        "linux": {"": "/opt/Katana6.0v1", "eu-west-2": "/opt/Katana6.0v1"}
      },
      "environment": {"FOUNDRY_LICENSE": "…"},  # added to every render's environment
      "pool": "katana", "group": "none", "priority": 50, "regions": []
    }
"""

import json
import os
import re
import shutil
import getpass

import drover

__all__ = ["DroverFarm", "FarmError", "JobNotFound", "STATES", "load_config"]

#: Drover job states as Katana's Job.State member names (as Katana Queue shows them).
STATES = {
    "pending": "Waiting",
    "queued": "Waiting",
    "rendering": "Running",
    "completed": "Completed",
    "suspended": "Cancelled",
    "archived": "Cancelled",
    "deleted": "Cancelled",
    "failed": "Failed",
}

#: extraInfo keys marking a job as a Katana render.
CONTEXT_KEY = "katanaRenderContext"
TYPE_KEY = "katanaRenderType"
FOLDER_KEY = "katanaTemporaryFolder"

_CONTEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class FarmError(Exception):
    """Anything that went wrong, with the manager's message (FarmPluginException)."""


class JobNotFound(FarmError):
    """No such job (JobNotFoundException)."""


def load_config(config=None):
    if config is not None:
        return dict(config)
    path = os.environ.get("DROVER_KATANA_CONFIG")
    if not path:
        return {}
    with open(path) as f:
        return json.load(f)


class DroverFarm(object):
    def __init__(self, config=None, client=None):
        self.config = load_config(config)
        self.client = client or drover.Client(
            self.config.get("url"), token=self.config.get("token")
        )

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except drover.NotFound as error:
            raise JobNotFound(error.message)
        except drover.DroverError as error:
            where = " (%s)" % error.field if error.field else ""
            raise FarmError(error.message + where)

    # ----- 1. job submission -----

    def create_temporary_folder(self, render_context):
        """``<sharedRoot>/<render context>``, made now; the render context keeps it unique."""
        root = self.config.get("sharedRoot")
        if not root or not os.path.isabs(root):
            raise FarmError("sharedRoot: configure an absolute folder the render nodes see")
        if not _CONTEXT.match(str(render_context)):
            raise FarmError("render context %r is not a plain name" % (render_context,))
        folder = os.path.join(root, str(render_context))
        os.makedirs(folder, exist_ok=True)
        return folder

    def copy_render_files(self, render_files, temporary_folder):
        """Copies each file into the folder (before returning); returns the copies' paths."""
        remote = []
        for path in render_files:
            target = os.path.join(temporary_folder, os.path.basename(path))
            if os.path.abspath(path) != os.path.abspath(target):
                shutil.copy2(path, target)
            remote.append(target)
        return remote

    def installation_path(self, os_name="linux", region=""):
        """The render nodes' Katana for an OS and region (``""``: any region)."""
        per_os = self.config.get("installations", {}).get(os_name, {})
        if isinstance(per_os, str):
            return per_os
        path = per_os.get(region) or per_os.get("")
        if not path:
            raise FarmError("installations.%s: no Katana installation configured" % os_name)
        return path

    def environment(self):
        """The variables every render gets, from the configuration."""
        return dict(self.config.get("environment", {}))

    def submit(
        self,
        commands,
        render_context,
        temporary_folder,
        render_type="Disk",
        outputs=(),
        environment=None,
        catalog_server=None,
        name=None,
        installation=None,
    ):
        """Submits the ordered ``commands`` (argv lists) as one Drover job of the ``Katana``
        application plugin; returns its id. Disk Render ``outputs`` become the job's output
        directories; the task log is mirrored into the temporary folder."""
        if not commands:
            raise FarmError("the job request has no command to run")
        info = dict(("command%d" % i, list(map(str, argv))) for i, argv in enumerate(commands))
        info["renderType"] = render_type
        if installation:
            info["katanaRoot"] = installation
        if catalog_server and render_type in ("Preview", "Live"):
            info["catalogServer"] = catalog_server
        env = self.environment()
        env.update(environment or {})
        spec = drover.JobSpec(
            plugin="Katana",
            plugin_info=info,
            name=name or "Katana %s Render %s" % (render_type, render_context),
            batch_name="Katana",
            user=self.config.get("user") or getpass.getuser(),
            frames="0",
            output_directories=list(outputs) if render_type == "Disk" else [],
            environment=env,
            extra_info={
                CONTEXT_KEY: str(render_context),
                TYPE_KEY: render_type,
                FOLDER_KEY: temporary_folder,
            },
            log_directory=temporary_folder,
            task_retries=0,
        )
        for key in ("pool", "group", "priority", "regions"):
            if key in self.config:
                setattr(spec, key, self.config[key])
        return self._call(self.client.submit_job, spec)["id"]

    # ----- 2. information retrieval -----

    def jobs(self, all_users=False):
        """The artist's Katana jobs, newest first: dicts with id, name, state (a Job.State
        member name), submitted/completed times (epoch seconds), log file."""
        user = None if all_users else (self.config.get("user") or getpass.getuser())
        found = self._call(self.client.list_jobs, user=user, limit=1000)
        return [self._describe(j) for j in found if CONTEXT_KEY in j.get("extraInfo", {})]

    def job(self, job_id):
        return self._describe(self._job(job_id))

    def _job(self, job_id):
        job = self._call(self.client.get_job, job_id)
        if CONTEXT_KEY not in job.get("extraInfo", {}):
            raise JobNotFound("%s is not a Katana job" % job_id)
        return job

    def _describe(self, job):
        def seconds(ms):
            return None if ms is None else ms / 1000.0

        return {
            "id": job["id"],
            "name": job["name"],
            "state": STATES.get(job["state"], "Waiting"),
            "droverState": job["state"],
            "submitted": seconds(job["submittedAt"]),
            "completed": seconds(job["finishedAt"]),
            "renderType": job["extraInfo"].get(TYPE_KEY, ""),
            "logFile": self._log_file(job),
        }

    def state(self, job_id):
        return STATES.get(self._job(job_id)["state"], "Waiting")

    def log_file(self, job_id):
        return self._log_file(self._job(job_id))

    def _log_file(self, job):
        # The worker mirrors task 0's log here (a Katana job is one task); see
        # src/worker/log-mirror.ts for the name.
        folder = job["extraInfo"].get(FOLDER_KEY)
        return os.path.join(folder, "%s_0.log" % job["id"]) if folder else None

    # ----- 3. job control -----

    def start(self, job_id):
        """Starts a stopped job again, or restarts a finished one (from the beginning)."""
        state = self._job(job_id)["state"]
        if state == "suspended":
            self._call(self.client.resume_job, job_id)
        elif state in ("completed", "failed"):
            self._call(self.client.requeue_job, job_id)
        elif state in ("archived", "deleted"):
            raise FarmError("job %s is %s and cannot be started" % (job_id, state))

    def restart(self, job_id):
        job = self._job(job_id)
        if job["state"] == "suspended":
            self._call(self.client.resume_job, job_id)
        self._call(self.client.requeue_job, job_id)

    def stop(self, job_id):
        """Stops a job: a render in progress is killed; the job waits to be started again."""
        if self._job(job_id)["state"] in ("pending", "queued", "rendering"):
            self._call(self.client.suspend_job, job_id)
