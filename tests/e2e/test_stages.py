"""Pipeline stages are invisible: `troupe serve --config examples/topologies/two-stage.toml`
gives 16 concurrent greedy clients, streaming and not, exactly the text a single-stage server
gives; three evenly split stages do too. Bad layer ranges are refused at start, naming the key."""
import concurrent.futures as cf
import os
import subprocess
import sys
import tempfile
import unittest

import openai

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
PROMPTS = [f"Write one sentence about a city whose name starts with {chr(65 + i)}."
           for i in range(16)]


def two_stage_config():
    with open(os.path.join(ROOT, "examples", "topologies", "two-stage.toml")) as f:
        return harness.DEFAULT_CONFIG + f.read()


def client_for(srv):
    return openai.OpenAI(base_url=srv.url + "/v1", api_key="none", max_retries=0, timeout=300)


def greedy(client, prompt, stream):
    kw = dict(model="SmolLM2-135M-Instruct.Q4_1", max_tokens=24, temperature=0,
              messages=[{"role": "user", "content": prompt}], extra_body={"ignore_eos": True})
    if stream:
        return "".join(ch.choices[0].delta.content or ""
                       for ch in client.chat.completions.create(stream=True, **kw) if ch.choices)
    return client.chat.completions.create(**kw).choices[0].message.content


def concurrently(client, prompts, stream):
    with cf.ThreadPoolExecutor(len(prompts)) as pool:
        return list(pool.map(lambda p: greedy(client, p, stream), prompts))


class stages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The single-stage reference, each prompt alone.
        with harness.troupe_server() as one:
            c = client_for(one)
            cls.alone = [greedy(c, p, stream=False) for p in PROMPTS]
        assert all(cls.alone) and len(set(cls.alone)) > len(PROMPTS) // 2, cls.alone

    def test_two_stages_give_16_concurrent_clients_the_single_stage_text(self):
        with harness.troupe_server(two_stage_config()) as two:
            c = client_for(two)
            for stream in (False, True):
                together = concurrently(c, PROMPTS, stream)
                for i, (a, t) in enumerate(zip(self.alone, together)):
                    self.assertEqual(a, t, f"client {i} (stream={stream})")
            m = two.metrics()
            self.assertEqual(m["troupe:kv_blocks_used"], 0)
            self.assertEqual(m["troupe:num_requests_running"], 0)
            # Plans really were split: with 16 clients no step had to carry all of them.
            self.assertLess(m['troupe:batch_num_seqs_bucket{le="1"}'],
                            m["troupe:batch_num_seqs_count"])

    def test_three_even_stages_give_the_same_text(self):
        config = harness.DEFAULT_CONFIG + "[[stages]]\nthreads = 1\n" * 3
        with harness.troupe_server(config) as three:
            together = concurrently(client_for(three), PROMPTS[:6], stream=True)
            self.assertEqual(together, self.alone[:6])


def serve_with(config_text):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(config_text)
    try:
        p = subprocess.run([harness.TROUPE, "serve", "--model", harness.MODEL, "--port", "0",
                            "--config", f.name], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stderr
    finally:
        os.unlink(f.name)


class stage_config_errors(unittest.TestCase):
    def test_bad_layer_ranges_are_refused_naming_the_stage(self):
        two = "[[stages]]\nlayers = [{}, {}]\n[[stages]]\nlayers = [{}, {}]\n"
        for text, key, what in [
                (two.format(0, 15, 16, 30), "stages[1].layers", "contiguous"),   # a gap
                (two.format(0, 16, 15, 30), "stages[1].layers", "contiguous"),   # overlap
                (two.format(0, 15, 15, 29), "stages[1].layers", "30 layers"),    # short
                (two.format(0, 15, 15, 31), "stages[1].layers", "30 layers"),    # too long
                (two.format(1, 15, 15, 30), "stages[0].layers", "layer 0"),
                ("[[stages]]\nlayers = [0, 15]\n[[stages]]\nthreads = 1\n", "stages[1].layers",
                 "missing"),
                ("[[stages]]\nlayers = [5, 2]\n", "stages[0].layers", "first < last"),
                ("[[stages]]\nlayers = \"all\"\n", "stages[0].layers", "[first, last]")]:
            rc, err = serve_with(text)
            self.assertEqual(rc, 1, text)
            self.assertIn(key, err, text)
            self.assertIn(what, err, text)


if __name__ == "__main__":
    harness.main()
