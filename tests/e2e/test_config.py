"""`troupe serve --config`: unknown keys and bad values are refused at start, naming them."""
import os
import subprocess
import sys
import tempfile
import unittest

import requests

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402


def serve_with(config_text):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(config_text)
    try:
        p = subprocess.run([harness.TROUPE, "serve", "--model", harness.MODEL, "--port", "0",
                            "--config", f.name], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stderr
    finally:
        os.unlink(f.name)


class config_errors(unittest.TestCase):
    def test_unknown_key_is_named(self):
        rc, err = serve_with("[server]\nport = 8000\nbogus_knob = 1\n")
        self.assertEqual(rc, 1)
        self.assertIn("server.bogus_knob", err)

    def test_unknown_section_is_named(self):
        rc, err = serve_with("[servr]\nport = 1\n")
        self.assertEqual(rc, 1)
        self.assertIn("servr", err)

    def test_bad_values_are_named(self):
        for text, key in [("[server]\nport = 70000\n", "server.port"),
                          ("[scheduler]\nmax_num_seqs = 0\n", "scheduler.max_num_seqs"),
                          ("[kv]\nnum_blocks = \"many\"\n", "kv.num_blocks"),
                          ("[[stages]]\nbackend = \"tpu\"\n", "stages[0].backend"),
                          ("[engine]\narithmetic = \"fp64\"\n", "engine.arithmetic"),
                          ("[server]\nignore_unknown_fields = 1\n",
                           "server.ignore_unknown_fields"),
                          ("[server]\ncors_origins = \"*\"\n", "server.cors_origins"),
                          ("[server]\ncors_origins = [\"app.example.com\"]\n",
                           "server.cors_origins"),
                          ("[faults]\ncrash_every_steps = -1\n", "faults.crash_every_steps"),
                          ("[faults]\nhang_every_steps = 5\n", "faults.hang_ms"),
                          ("[faults]\nsurprise = 1\n", "faults.surprise"),
                          ("[supervisor]\nstep_timeout_ms = -5\n",
                           "supervisor.step_timeout_ms")]:
            rc, err = serve_with(text)
            self.assertEqual(rc, 1, text)
            self.assertIn(key, err, text)

    def test_bad_arithmetic_flag_is_named(self):
        p = subprocess.run([harness.TROUPE, "serve", "--model", harness.MODEL, "--port", "0",
                            "--arithmetic", "fp64"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--arithmetic fp64", p.stderr)

    def test_fault_flags_are_checked_like_the_file(self):
        p = subprocess.run([harness.TROUPE, "serve", "--model", harness.MODEL, "--port", "0",
                            "--faults.hang_every_steps", "3"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("faults.hang_ms", p.stderr)

    def test_syntax_error_names_the_line(self):
        rc, err = serve_with("[server]\nport = \n")
        self.assertEqual(rc, 1)
        self.assertIn("line 2", err)

    def test_shipped_default_topology_parses(self):
        root = os.path.join(os.path.dirname(__file__), "..", "..")
        cfg = os.path.join(root, "examples", "topologies", "default.toml")
        with open(cfg) as f:
            text = f.read()
        # Port 0 so it cannot clash; the server must come up healthy with this file.
        with harness.troupe_server(text.replace("port = 8000", "port = 0")) as srv:
            self.assertTrue(srv.url)


class arithmetic_modes(unittest.TestCase):
    """engine.arithmetic is what the user gets: the fast default answers with the model's own
    answer; llama.cpp-exact answers exactly as llama.cpp does (its 8-bit activations turn the
    same weights into "L'Étoile, ...")."""

    def ask(self, config):
        with harness.troupe_server(harness.DEFAULT_CONFIG + config) as srv:
            r = requests.post(srv.url + "/v1/chat/completions", timeout=120, json={
                "model": "SmolLM2-135M-Instruct.Q4_1", "max_tokens": 12, "temperature": 0,
                "messages": [{"role": "user", "content": "What is the capital of France?"}]})
            self.assertEqual(r.status_code, 200, r.text)
            return r.json()["choices"][0]["message"]["content"], srv.output()

    def test_fast_is_the_default_and_exact_is_llama_cpp(self):
        fast, log = self.ask("")
        self.assertEqual(fast, "The capital of France is Paris.")
        self.assertIn("fast arithmetic", log)
        exact, _ = self.ask('[engine]\narithmetic = "llama.cpp-exact"\n')
        self.assertTrue(exact.startswith("L'Étoile, la Cité"), exact)


if __name__ == "__main__":
    harness.main()
