"""Starts `troupe serve` on a free port for end-to-end tests and stops it with SIGTERM.

Usage from a test script (run by ctest as `python test_x.py <troupe> <model>`):
    with troupe_server(config_text) as srv:
        srv.url  -> "http://127.0.0.1:PORT"
The server must exit 0 after SIGTERM (graceful shutdown is part of what every test checks), and
its output must hold no sanitizer report (the ASan build, `make test-asan`), however it ended.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import requests

TROUPE = None
MODEL = None


def parse_args():
    global TROUPE, MODEL
    if len(sys.argv) < 3:
        sys.exit("usage: test_x.py <path-to-troupe> <model.gguf> [unittest args]")
    TROUPE, MODEL = sys.argv[1], sys.argv[2]
    if not os.path.exists(MODEL):
        sys.exit(f"model {MODEL} not found: run `make model`")
    del sys.argv[1:3]


# The first line of an ASan/LSan/TSan report, or of a UBSan diagnostic ("file:line:col: runtime
# error: ..."). Matched in the server's output, so a report fails the test even where the test
# expects a non-zero exit (a crash loop) or the server was killed.
SANITIZER_REPORT = re.compile(r"==\d+==(ERROR|WARNING): \w+Sanitizer|: runtime error: ")


def sanitizer_report(output):
    """The output from the first sanitizer report on (at most 6000 characters), or None."""
    m = SANITIZER_REPORT.search(output)
    return output[max(0, m.start() - 200):m.start() + 6000] if m else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Small enough to start fast; tests that need other limits pass their own text.
DEFAULT_CONFIG = """
[server]
max_body_bytes = 65536
shutdown_timeout_s = 10
[kv]
num_blocks = 512
"""


def with_step_timeout(config):
    """config with supervisor.step_timeout_ms = $TROUPE_E2E_STEP_TIMEOUT_MS where that is set
    and the config sets no deadline of its own (a hang test does). `make test-asan` sets it: the
    sanitized build on a loaded 2-core machine computes a long prefill step more slowly than
    the default 30 s deadline allows, and the stage would be restarted as hung."""
    ms = os.environ.get("TROUPE_E2E_STEP_TIMEOUT_MS")
    if not ms or "step_timeout_ms" in config:
        return config
    line = f"step_timeout_ms = {int(ms)}\n"
    if "[supervisor]\n" in config:
        return config.replace("[supervisor]\n", "[supervisor]\n" + line, 1)
    return config + "\n[supervisor]\n" + line


class troupe_server:
    def __init__(self, config=DEFAULT_CONFIG, startup_timeout=180):
        self.config = config
        self.startup_timeout = startup_timeout
        self.proc = None

    def __enter__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cfg_file = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        self.cfg_file.write(with_step_timeout(self.config))
        self.cfg_file.close()
        # TROUPE_E2E_SERVER_LOG=path keeps the server's output for debugging (e.g. ASan reports).
        log_path = os.environ.get("TROUPE_E2E_SERVER_LOG")
        self.log = open(log_path, "w+b") if log_path else tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [TROUPE, "serve", "--model", MODEL, "--port", str(self.port), "--config",
             self.cfg_file.name], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + self.startup_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"troupe serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.proc.kill()
        raise RuntimeError("troupe serve did not become healthy:\n" + self.output())

    def output(self):
        if self.log.closed:
            return getattr(self, "exit_output", "")
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, timeout=60):
        """SIGTERM, then the exit status (must be 0)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
            self.exit_output = self.output()
            return rc
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("troupe serve did not exit within %ss of SIGTERM:\n%s"
                                 % (timeout, self.output()))

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.proc and self.proc.poll() is None:
                rc = self.stop()
                if exc_type is None and rc != 0:
                    raise AssertionError(f"troupe serve exited {rc} after SIGTERM:\n{self.output()}")
            report = sanitizer_report(self.output())
            if report:
                raise AssertionError("sanitizer report in troupe serve's output:\n" + report)
        finally:
            if os.path.exists(self.cfg_file.name):
                os.unlink(self.cfg_file.name)
            self.log.close()
        return False

    def metrics(self):
        """/metrics as {name_with_labels: float}."""
        text = requests.get(self.url + "/metrics", timeout=10).text
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out


def main():
    parse_args()
    unittest.main(verbosity=2)
