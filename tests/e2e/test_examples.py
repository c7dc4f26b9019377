"""The examples in examples/ run against a live server, so they never rot."""
import ast
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class examples(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.troupe_server().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def test_curl_script(self):
        p = subprocess.run(["bash", os.path.join(ROOT, "examples", "curl.sh"), self.srv.url],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('"object":"chat.completion"', p.stdout)
        self.assertIn("data: [DONE]", p.stdout)
        self.assertIn('"param":"temperature"', p.stdout)

    def test_openai_script(self):
        p = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "openai_client.py"),
                            self.srv.url], capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("chat: ", p.stdout)
        self.assertIn("streamed: ", p.stdout)
        line = [l for l in p.stdout.splitlines() if l.startswith("completion with stop")][0]
        text = ast.literal_eval(line.split(": ", 1)[1])
        self.assertNotIn(" 7", text)
        self.assertIn("finish_reason: stop", p.stdout)


if __name__ == "__main__":
    harness.main()
