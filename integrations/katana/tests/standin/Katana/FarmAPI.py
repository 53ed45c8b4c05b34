"""A stand-in for Katana's ``FarmAPI`` module, following the documented structure
(../../README.md lists which names are verified and which are assumed)."""

import enum


class FarmPluginException(Exception):
    pass


class JobNotFoundException(FarmPluginException):
    pass


class Job(object):
    class State(enum.Enum):  # ASSUMED members (Katana Queue's columns)
        Waiting = "Waiting"
        Running = "Running"
        Completed = "Completed"
        Cancelled = "Cancelled"
        Failed = "Failed"

    def __init__(self, jobId, name="", state=None, submitted=None, completed=None, logFile=None):
        self.jobId = jobId
        self.name = name
        self.state = state
        self.submitted = submitted
        self.completed = completed
        self.logFile = logFile


class BaseFarmPlugin(object):
    class InstallationMetadata(object):
        def __init__(self, installationPath):
            self.installationPath = installationPath


class FarmPluginManager(object):
    class JobRequest(object):
        def __init__(self, **fields):
            self.__dict__.update(fields)
