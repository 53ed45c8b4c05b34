"""Drover's Katana farm plug-in through a stand-in FarmAPI and a stand-in renderboot, on a
real miniature farm (``drover dev``: a manager and a worker process)."""

import importlib.util
import json
import os
import socket
import sys
import tempfile
import threading
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "standin")
PLUGIN = os.path.join(HERE, "..", "Resources", "Plugins", "DroverFarmPlugin.py")
RENDERBOOT = os.path.join(STANDIN, "renderboot.py")
if STANDIN not in sys.path:
    sys.path.insert(0, STANDIN)

from Katana import FarmAPI  # noqa: E402  (the stand-in)
from farm import Farm, wait_until  # noqa: E402

FARM = None
WORK = None


def load_plugin_module():
    spec = importlib.util.spec_from_file_location("DroverFarmPlugin", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def setUpModule():
    global FARM, WORK
    FARM = Farm("dev", ["--regions", "ktn", "--workers-per-region", "1", "--sync-delay", "0"])
    WORK = tempfile.mkdtemp(prefix="drover-katana-")
    config = {
        "url": FARM.url,
        "token": FARM.token,
        "sharedRoot": os.path.join(WORK, "shared"),
        "installations": {"linux": {"": os.path.join(WORK, "katana")}},
        "environment": {"KATANA_TEST_VARIABLE": "from-config"},
        "user": "artist",
    }
    path = os.path.join(WORK, "config.json")
    with open(path, "w") as f:
        json.dump(config, f)
    os.environ["DROVER_KATANA_CONFIG"] = path


def tearDownModule():
    os.environ.pop("DROVER_KATANA_CONFIG", None)
    if FARM is not None:
        FARM.stop()


def follow_to_the_end(path, timeout=60):
    """Reads a growing log file as Katana's Render Log does, until its final status line."""
    seen = []

    def grown():
        if not os.path.exists(path):
            return False
        with open(path) as f:
            text = f.read()
        if len(text) > sum(map(len, seen)):
            seen.append(text[sum(map(len, seen)):])
        return "[drover] task completed" in text or "[drover] task failed" in text

    wait_until(grown, timeout=timeout, what="the end of " + path)
    return "".join(seen)


class CatalogServer(object):
    """A stand-in Catalog Server: accepts one connection and keeps what it is sent."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.received = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.sock.accept()
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                self.received += data

    def close(self):
        self.sock.close()


class KatanaPluginTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.module = load_plugin_module()

    def setUp(self):
        self.plugin = self.module.DroverFarmPlugin()

    def stage(self, scene="op tree of the shot"):
        context = str(uuid.uuid4())
        folder = self.plugin.createTemporaryFolder(context)
        local = os.path.join(WORK, "local-" + context + ".optree")
        with open(local, "w") as f:
            f.write(scene)
        remote = self.plugin.copyRenderFiles([local], folder)
        return context, folder, remote[0]

    def test_registry(self):
        self.assertEqual(
            self.module.PluginRegistry, [("FarmPlugin", 2.0, "Drover", self.module.DroverFarmPlugin)]
        )
        self.assertTrue(issubclass(self.module.DroverFarmPlugin, FarmAPI.BaseFarmPlugin))

    def test_disk_render_end_to_end(self):
        context, folder, optree = self.stage()
        self.assertEqual(os.path.dirname(optree), folder)
        self.assertTrue(folder.endswith(context))
        with open(optree) as f:
            self.assertEqual(f.read(), "op tree of the shot")
        metadata = self.plugin.getInstallationMetadata()
        self.assertEqual(metadata.installationPath, os.path.join(WORK, "katana"))
        env = self.plugin.getEnvironmentForJob()
        outputs = os.path.join(WORK, "renders", context)
        os.makedirs(outputs)
        image = os.path.join(outputs, "beauty.png")
        request = FarmAPI.FarmPluginManager.JobRequest(
            renderContext=context,
            renderType="Disk",
            temporaryFolder=folder,
            commands=[
                [sys.executable, RENDERBOOT, "--optree", optree, "--output", image],
                [sys.executable, "-c", "import os; print('KATANA_ROOT=' + os.environ['KATANA_ROOT']"
                 " + ' ' + os.environ['KATANA_TEST_VARIABLE'])"],
            ],
            environment=env,
            outputDirectories=[outputs],
            installationMetadata=metadata,
        )
        job_id = self.plugin.submitJob(request)
        log_file = self.plugin.getRenderLogFilename(job_id)
        self.assertEqual(os.path.dirname(log_file), folder)
        text = follow_to_the_end(log_file)
        self.assertIn("Render progress: 100%", text)
        self.assertIn("KATANA_ROOT=%s from-config" % os.path.join(WORK, "katana"), text)
        self.assertTrue(text.rstrip().endswith("[drover] task completed"), text[-300:])
        with open(image, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        wait_until(
            lambda: self.plugin.getJobState(job_id) == FarmAPI.Job.State.Completed,
            what="Completed",
        )
        jobs = dict((j.jobId, j) for j in self.plugin.getJobs())
        self.assertEqual(jobs[job_id].state, FarmAPI.Job.State.Completed)
        self.assertEqual(jobs[job_id].logFile, log_file)
        job = self.module.drover_katana.drover.Client(FARM.url, token=FARM.token).get_job(job_id)
        self.assertEqual(job["outputDirectories"], [outputs])
        self.assertEqual(job["plugin"], "Katana")

    def test_preview_render_reaches_the_catalog_server(self):
        context, folder, optree = self.stage("preview scene")
        catalog = CatalogServer()
        try:
            request = FarmAPI.FarmPluginManager.JobRequest(
                renderContext=context,
                renderType="Preview",
                temporaryFolder=folder,
                commands=[[sys.executable, RENDERBOOT, "--optree", optree, "--catalog",
                           "{catalogServer}"]],
                catalogServerAddress=catalog.address,
            )
            job_id = self.plugin.submitJob(request)
            text = follow_to_the_end(self.plugin.getRenderLogFilename(job_id))
            self.assertIn("sent pixels to the Catalog Server " + catalog.address, text)
            wait_until(lambda: catalog.received.endswith(b"\n"), what="pixels")
            self.assertEqual(catalog.received, b"PIXELS preview scene\n")
        finally:
            catalog.close()

    def test_stop_and_restart(self):
        context, folder, optree = self.stage()
        request = FarmAPI.FarmPluginManager.JobRequest(
            renderContext=context,
            renderType="Disk",
            temporaryFolder=folder,
            commands=[[sys.executable, RENDERBOOT, "--optree", optree, "--delay", "60"]],
        )
        job_id = self.plugin.submitJob(request)
        log_file = self.plugin.getRenderLogFilename(job_id)
        wait_until(lambda: os.path.exists(log_file) and "loaded op tree" in open(log_file).read(),
                   timeout=60, what="the render to start")
        self.plugin.stopJob(job_id)
        self.assertEqual(self.plugin.getJobState(job_id), FarmAPI.Job.State.Cancelled)
        wait_until(lambda: "[drover] task revoked" in open(log_file).read(), what="the kill")
        self.plugin.startJob(job_id)
        self.assertIn(
            self.plugin.getJobState(job_id), (FarmAPI.Job.State.Waiting, FarmAPI.Job.State.Running)
        )
        wait_until(lambda: open(log_file).read().count("loaded op tree") == 2, timeout=60,
                   what="the second attempt")
        self.plugin.stopJob(job_id)

    def test_unknown_job_and_manager_errors(self):
        with self.assertRaises(FarmAPI.JobNotFoundException):
            self.plugin.getJobState("no-such-job")
        with self.assertRaises(FarmAPI.JobNotFoundException):
            self.plugin.stopJob("no-such-job")
        context, folder, _ = self.stage()
        bad = FarmAPI.FarmPluginManager.JobRequest(
            renderContext=context, renderType="Disk", temporaryFolder=folder,
            commands=[["bin/renderboot"]],
        )
        with self.assertRaises(FarmAPI.FarmPluginException) as caught:
            self.plugin.submitJob(bad)
        self.assertIn("command0", str(caught.exception))
        self.assertNotIsInstance(caught.exception, FarmAPI.JobNotFoundException)
        with self.assertRaises(FarmAPI.FarmPluginException):
            self.plugin.createTemporaryFolder("../escape")


if __name__ == "__main__":
    unittest.main()
