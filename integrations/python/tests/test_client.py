"""The ``drover`` client against a real ``drover dev`` farm (a manager and one worker)."""

import os
import socket
import sys
import threading
import time
import unittest
import uuid
from urllib import request

import drover
from farm import Farm, wait_until

FARM = None


def setUpModule():
    global FARM
    FARM = Farm("dev", ["--regions", "py", "--workers-per-region", "1", "--sync-delay", "0"])


def tearDownModule():
    if FARM is not None:
        FARM.stop()


def python_job(code, **fields):
    """A CommandLine job running this Python with ``code`` (``{frame}`` is replaced)."""
    info = {"executable": sys.executable, "arguments": ["-c", code]}
    return drover.JobSpec(plugin="CommandLine", plugin_info=info, **fields)


def dead_address():
    """An address where nothing listens (a port bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d" % port


class ApplyThenDrop(object):
    """A stand-in manager address that forwards one request to the real manager and then
    drops the connection without answering: the request was applied, its reply lost."""

    def __init__(self, target):
        self.target = target
        self.keys = []
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.url = "http://127.0.0.1:%d" % self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ")
            headers = dict(line.split(": ", 1) for line in lines[1:])
            length = int(headers.get("Content-Length", "0"))
            while len(body) < length:
                body += conn.recv(65536)
            self.keys.append(headers.get("Idempotency-Key"))
            forward = request.Request(self.target + path, data=body or None, method=method)
            for name in ("Authorization", "Content-Type", "Idempotency-Key"):
                if name in headers:
                    forward.add_header(name, headers[name])
            request.urlopen(forward).read()
            conn.close()

    def close(self):
        self.server.close()


class ClientTest(unittest.TestCase):
    def client(self, **kw):
        return drover.Client(FARM.url, token=FARM.token, **kw)

    def test_submit_wait_and_follow_the_log(self):
        c = self.client()
        code = "print('Progress: 50%'); print('hello frame {frame}')"
        job = c.submit_job(python_job(code, name="py-wait", frames="1-3", user="alice"))
        self.assertEqual(job["name"], "py-wait")
        self.assertEqual(job["taskCount"], 3)
        seen = []
        done = c.wait_for_completion(job["id"], callback=seen.append, poll_interval=0.2, timeout=60)
        self.assertEqual(done["state"], "completed")
        self.assertEqual(done["counts"]["completed"], 3)
        self.assertTrue(seen and seen[-1]["state"] == "completed")
        lines = "".join(chunk["text"] for chunk in c.follow_task_log(job["id"], 1, timeout=30))
        self.assertIn("hello frame 2", lines)
        self.assertIn("task completed", lines)
        tasks = c.list_tasks(job["id"])
        self.assertEqual([t["index"] for t in tasks], [0, 1, 2])
        self.assertEqual(tasks[0]["frames"], [1])
        # Filters reach the manager.
        mine = c.list_jobs(user="alice", state=["completed"])
        self.assertIn(job["id"], [j["id"] for j in mine])
        self.assertNotIn(job["id"], [j["id"] for j in c.list_jobs(state="failed")])
        events = c.list_events(job=job["id"], type=["job.submitted"])
        self.assertEqual([e["type"] for e in events], ["job.submitted"])

    def test_publish_a_render_as_a_version_and_approve_it(self):
        c = self.client()
        product = "py/seq010/sh010/beauty"
        job = c.submit_job(
            plugin="builtin-render",
            plugin_info={"width": 32, "height": 18},
            frames="1-4",
            publish=product,
        )
        version_id = job["extraInfo"]["DROVER_VERSION"]
        self.assertEqual(job["outputDirectories"], ["/gfs/publish/%s/v001" % product])
        self.assertEqual(c.wait_for_completion(job["id"], timeout=120)["state"], "completed")
        deadline = time.monotonic() + 120
        version = c.get_version(version_id)
        while version["status"] == "rendering" and time.monotonic() < deadline:
            time.sleep(0.5)
            version = c.get_version(version_id)
        self.assertEqual(version["status"], "pending review", version)
        self.assertEqual(version["name"], "v001")
        self.assertEqual(c.list_versions(product=product), [])
        self.assertEqual(c.approve_version(version_id, comment="ok")["status"], "approved")
        self.assertEqual([v["name"] for v in c.list_versions(product=product)], ["v001"])
        self.assertEqual(c.latest_version(product)["id"], version_id)
        names = [p["name"] for p in c.list_products(prefix="py")]
        self.assertIn(product, names)

    def test_follow_a_log_while_the_task_runs(self):
        c = self.client()
        code = (
            "import time\n"
            "for i in range(5):\n"
            "    print('line %d' % i, flush=True); time.sleep(0.3)\n"
        )
        job = c.submit_job(python_job(code, frames="0"))
        text = "".join(chunk["text"] for chunk in c.follow_task_log(job["id"], 0, timeout=60))
        for i in range(5):
            self.assertIn("line %d" % i, text)
        self.assertTrue(text.rstrip().endswith("task completed"), text[-200:])

    def test_keyword_submission_actions_and_requeue(self):
        c = self.client()
        job = c.submit_job(
            plugin="CommandLine",
            plugin_info={"executable": sys.executable, "arguments": ["-c", "pass"]},
            frames="1-2",
            initial_state="suspended",
            priority=7,
            extra_info={"shot": "010"},
        )
        # Event plugins may hold a new job pending for a moment before it is suspended.
        wait_until(lambda: c.get_job(job["id"])["state"] == "suspended", what="suspended")
        self.assertEqual(job["priority"], 7)
        self.assertEqual(job["extraInfo"], {"shot": "010"})
        self.assertEqual(c.update_job(job["id"], priority=9, batch_name="b")["batchName"], "b")
        c.resume_job(job["id"])
        done = c.wait_for_completion(job["id"], poll_interval=0.2, timeout=60)
        self.assertEqual(done["state"], "completed")
        tasks = c.requeue_tasks(job["id"], [1])
        self.assertEqual([t["state"] for t in tasks if t["index"] == 1], ["queued"])
        done = c.wait_for_completion(job["id"], poll_interval=0.2, timeout=60)
        self.assertEqual(done["state"], "completed")
        self.assertEqual(c._task(job["id"], 1)["attempt"], 2)
        self.assertEqual(c.delete_job(job["id"])["state"], "deleted")
        self.assertIn(job["id"], [j["id"] for j in c.list_jobs(all=True, limit=1000)])
        self.assertNotIn(job["id"], [j["id"] for j in c.list_jobs(limit=1000)])

    def test_workers_and_limits(self):
        c = self.client()
        workers = wait_until(c.list_workers, what="a worker")
        self.assertEqual(workers[0]["region"], "py")
        self.assertEqual(c.get_worker(workers[0]["name"])["name"], workers[0]["name"])
        limits = c.set_limit("py-licence", 3)
        self.assertIn(("py-licence", 3), [(l["name"], l["max"]) for l in limits])
        self.assertIn("py-licence", [l["name"] for l in c.list_limits()])

    def test_plugins_tokens_and_path_mappings(self):
        c = self.client()
        names = [p["name"] for p in c.list_plugins()]
        self.assertIn("gfs-sync", names)
        before = c.get_plugin("gfs-sync")["config"]["iterationCount"]
        changed = c.configure_plugin("gfs-sync", config={"iterationCount": before + 1})
        self.assertEqual(changed["config"]["iterationCount"], before + 1)
        made = c.create_token("py-viewer", "read-only")
        self.assertTrue(made["token"].startswith("drv_"))
        self.assertIn("py-viewer", [t["name"] for t in c.list_tokens()])
        viewer = drover.Client(FARM.url, token=made["token"])
        self.assertEqual(viewer.whoami()["role"], "read-only")
        with self.assertRaises(drover.Forbidden):
            viewer.list_tokens()
        self.assertIsNotNone(c.revoke_token(made["info"]["id"])["revokedAt"])
        with self.assertRaises(drover.Unauthorized):
            viewer.whoami()
        rule = c.add_path_mapping("/py/a/", "/py/b/", region="py")
        self.assertEqual(c.map_path("/py/a/x.exr", "py"), "/py/b/x.exr")
        c.remove_path_mapping(rule["id"])
        self.assertEqual(c.map_path("/py/a/x.exr", "py"), "/py/a/x.exr")
        self.assertIn("gfs", c.replication())

    def test_errors_are_typed(self):
        c = self.client()
        with self.assertRaises(drover.InvalidInput) as caught:
            # Any well-formed name may wait for a worker that offers it; a built-in name in
            # the wrong case is a typo, refused.
            c.submit_job(plugin="commandline")
        self.assertEqual(caught.exception.field, "plugin")
        self.assertIn('did you mean "CommandLine"', caught.exception.message)
        self.assertEqual(caught.exception.code, "invalid_input")
        with self.assertRaises(drover.InvalidInput) as caught:
            c.submit_job(plugin="builtin-render", plugin_info={"width": 99999})
        self.assertEqual(caught.exception.field, "pluginInfo.width")
        with self.assertRaises(drover.NotFound):
            c.get_job("no-such-job")
        with self.assertRaises(drover.Unauthorized):
            drover.Client(FARM.url, token="drv_wrong").list_jobs()
        with self.assertRaises(drover.InvalidInput):
            c.job_action("x", "explode")
        with self.assertRaises(TypeError):
            c.submit_job(plugin="CommandLine", no_such_field=1)
        self.assertTrue(issubclass(drover.NotFound, drover.DroverError))

    def test_failover_and_environment(self):
        dead = dead_address()
        c = drover.Client([dead, FARM.url], token=FARM.token)
        self.assertEqual(c.health()["ok"], True)
        self.assertEqual(c.url, FARM.url)
        old = dict(os.environ)
        try:
            os.environ["DROVER_URL"] = "%s,%s" % (dead, FARM.url)
            os.environ["DROVER_TOKEN"] = FARM.token
            self.assertEqual(drover.Client().whoami()["role"], "admin")
        finally:
            os.environ.clear()
            os.environ.update(old)
        with self.assertRaises(drover.Unavailable) as caught:
            drover.Client([dead], token=FARM.token, timeout=5).health()
        self.assertIn(dead, caught.exception.message)

    def test_a_submission_applied_but_unanswered_is_not_duplicated(self):
        dropper = ApplyThenDrop(FARM.url)
        try:
            c = drover.Client([dropper.url, FARM.url], token=FARM.token)
            name = "once-" + uuid.uuid4().hex
            job = c.submit_job(python_job("pass", name=name, initial_state="suspended"))
            self.assertEqual(len(dropper.keys), 1)
            self.assertTrue(dropper.keys[0])
            same = [j for j in c.list_jobs(limit=1000) if j["name"] == name]
            self.assertEqual([j["id"] for j in same], [job["id"]])
            self.assertEqual(c.url, FARM.url)
        finally:
            dropper.close()

    def test_a_non_idempotent_request_is_not_sent_twice(self):
        dropper = ApplyThenDrop(FARM.url)
        try:
            c = drover.Client([FARM.url], token=FARM.token)
            job = c.submit_job(python_job("pass", frames="1", initial_state="suspended"))
            c2 = drover.Client([dropper.url, FARM.url], token=FARM.token)
            with self.assertRaises(drover.Unavailable):
                c2.job_action(job["id"], "resume")
            self.assertEqual(len(dropper.keys), 1)
        finally:
            dropper.close()


if __name__ == "__main__":
    unittest.main()


class InstalledPackageTest(unittest.TestCase):
    def test_pip_installs_the_package_offline_and_it_submits_and_waits(self):
        import importlib.util
        import subprocess
        import tempfile

        if importlib.util.find_spec("pip") is None:
            self.skipTest("pip is not installed for this python3")
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        target = tempfile.mkdtemp(prefix="drover-pip-")
        try:
            subprocess.check_call(
                [sys.executable, "-m", "pip", "install", "-q", "--no-index",
                 "--no-build-isolation", "--disable-pip-version-check",
                 "--target", target, here],
                stdout=subprocess.DEVNULL,
            )
            script = (
                "import drover, sys\n"
                "c = drover.Client()\n"
                "job = c.submit_job(plugin='CommandLine', plugin_info={'executable': sys.executable,"
                " 'arguments': ['-c', 'pass']})\n"
                "print(drover.__file__)\n"
                "print(c.wait_for_completion(job['id'], poll_interval=0.2, timeout=60)['state'])\n"
            )
            env = dict(os.environ, PYTHONPATH=target, DROVER_URL=FARM.url, DROVER_TOKEN=FARM.token)
            out = subprocess.check_output(
                [sys.executable, "-c", script], env=env, cwd=target, universal_newlines=True
            ).split()
            self.assertTrue(out[0].startswith(target), out)
            self.assertEqual(out[1], "completed")
        finally:
            import shutil

            shutil.rmtree(target, ignore_errors=True)
