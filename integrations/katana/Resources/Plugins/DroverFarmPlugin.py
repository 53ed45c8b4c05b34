"""Drover's Katana farm plug-in (Katana 4+): add ``integrations/katana/Resources`` to
``KATANA_RESOURCES``. A thin adapter: every method maps one FarmAPI call onto
``drover_katana.DroverFarm``. The FarmAPI method and attribute names below marked ASSUMED
could not be checked without Katana; see ``integrations/katana/README.md``."""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (
    os.path.join(_HERE, "..", "..", "python"),  # drover_katana
    os.path.join(_HERE, "..", "..", "..", "python"),  # the drover client
):
    _path = os.path.normpath(_path)
    if _path not in sys.path:
        sys.path.insert(0, _path)

from Katana import FarmAPI  # noqa: E402

import drover_katana  # noqa: E402


def _attr(obj, *names, **default):
    """The first attribute or getter of ``obj`` among ``names`` (JobRequest field names are
    ASSUMED; several spellings are tried)."""
    for name in names:
        value = getattr(obj, name, None)
        if callable(value):
            value = value()
        if value is not None:
            return value
    return default.get("default")


def _translate(fn):
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except drover_katana.JobNotFound as error:
            raise FarmAPI.JobNotFoundException(str(error))
        except drover_katana.FarmError as error:
            raise FarmAPI.FarmPluginException(str(error))

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


class DroverFarmPlugin(FarmAPI.BaseFarmPlugin):
    def __init__(self, *args, **kwargs):
        super(DroverFarmPlugin, self).__init__(*args, **kwargs)
        self._farm = drover_katana.DroverFarm()

    # ----- 1. job submission -----

    @_translate
    def createTemporaryFolder(self, renderContext):  # ASSUMED name
        return self._farm.create_temporary_folder(renderContext)

    @_translate
    def copyRenderFiles(self, renderFiles, temporaryFolder):  # ASSUMED name
        return self._farm.copy_render_files(renderFiles, temporaryFolder)

    @_translate
    def getInstallationMetadata(self, *args):  # ASSUMED name
        path = self._farm.installation_path(sys.platform.startswith("win") and "win32" or "linux")
        return FarmAPI.BaseFarmPlugin.InstallationMetadata(path)

    @_translate
    def getEnvironmentForJob(self, *args):  # ASSUMED name
        return self._farm.environment()

    @_translate
    def submitJob(self, jobRequest):  # verified name
        metadata = _attr(jobRequest, "installationMetadata")
        return self._farm.submit(
            commands=_attr(jobRequest, "commands", "getCommands", default=[]),
            render_context=_attr(jobRequest, "renderContext", "getRenderContext"),
            temporary_folder=_attr(jobRequest, "temporaryFolder", "getTemporaryFolder"),
            render_type=_attr(jobRequest, "renderType", "getRenderType", default="Disk"),
            outputs=_attr(jobRequest, "outputDirectories", "outputs", default=[]),
            environment=_attr(jobRequest, "environment", "getEnvironment", default={}),
            catalog_server=_attr(jobRequest, "catalogServerAddress", "catalogServer"),
            name=_attr(jobRequest, "name", "jobName"),
            installation=_attr(metadata, "installationPath", "path") if metadata else None,
        )

    # ----- 2. information retrieval -----

    def _job(self, info):
        return FarmAPI.Job(
            info["id"],
            name=info["name"],
            state=getattr(FarmAPI.Job.State, info["state"]),
            submitted=info["submitted"],
            completed=info["completed"],
            logFile=info["logFile"],
        )

    @_translate
    def getJobs(self, *args):  # ASSUMED name
        return [self._job(info) for info in self._farm.jobs()]

    @_translate
    def getJob(self, jobId):  # ASSUMED name
        return self._job(self._farm.job(jobId))

    @_translate
    def getJobState(self, jobId):  # ASSUMED name
        return getattr(FarmAPI.Job.State, self._farm.state(jobId))

    @_translate
    def getRenderLogFilename(self, jobId):  # ASSUMED name
        return self._farm.log_file(jobId)

    # ----- 3. job control -----

    @_translate
    def startJob(self, jobId):  # ASSUMED name
        self._farm.start(jobId)

    @_translate
    def restartJob(self, jobId):  # ASSUMED name
        self._farm.restart(jobId)

    @_translate
    def stopJob(self, jobId):  # ASSUMED name
        self._farm.stop(jobId)


PluginRegistry = [("FarmPlugin", 2.0, "Drover", DroverFarmPlugin)]
