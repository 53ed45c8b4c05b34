"""A real miniature farm for the Python tests: ``drover dev`` (a manager on SQLite and local
workers) or ``drover manager`` alone, in a temporary folder, on a free port.

Needs only ``node`` and the built ``dist/`` (``npm run build``)."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DROVER = os.path.join(ROOT, "bin", "drover.js")
NODE = os.environ.get("DROVER_TEST_NODE", "node")

_URL = re.compile(r"(?:manager\s+|listening on )(http://127\.0\.0\.1:\d+)")


class Farm(object):
    """Starts ``drover <command>`` and waits until it prints its address."""

    def __init__(self, command="dev", extra=(), cwd=None, startup_timeout=60.0):
        self.folder = tempfile.mkdtemp(prefix="drover-py-")
        self.data = os.path.join(self.folder, "data")
        self.log_path = os.path.join(self.folder, "farm.log")
        args = [NODE, DROVER, command, "--data", self.data, "--port", "0"]
        if command == "dev":
            args += ["--headless"]
        args += list(extra)
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            args,
            cwd=cwd or self.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
        )
        self.url = None
        deadline = time.monotonic() + startup_timeout
        seen = []
        while self.url is None:
            line = self.process.stdout.readline()
            if not line:
                self.stop()
                raise RuntimeError("drover %s exited: %s" % (command, "".join(seen)))
            seen.append(line)
            self._log.write(line)
            match = _URL.search(line)
            if match:
                self.url = match.group(1)
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("drover %s printed no address: %s" % (command, "".join(seen)))
        # Keep draining stdout so the farm never blocks on a full pipe.
        import threading

        threading.Thread(target=self._drain, daemon=True).start()
        with open(os.path.join(self.data, "admin-token")) as f:
            self.token = f.read().strip()

    def _drain(self):
        for line in self.process.stdout:
            try:
                self._log.write(line)
                self._log.flush()
            except ValueError:
                return

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            self._log.close()
        except Exception:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


def wait_until(predicate, timeout=30.0, interval=0.1, what="a condition"):
    """Polls ``predicate`` until it returns a true value (returned), or fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)
