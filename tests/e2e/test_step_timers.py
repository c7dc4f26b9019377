"""Per-step timers on /metrics (issue 5: where a step's time goes): after a few requests, the
plan-build, round-trip, per-stage forward and sampling histograms and the tokens-per-step
histogram each count exactly one observation per scheduler step, with positive sums; with two
pipeline stages there is one forward histogram per stage."""
import concurrent.futures as cf
import os
import sys
import unittest

import requests

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def complete(srv, prompt):
    r = requests.post(srv.url + "/v1/completions", timeout=300,
                      json={"prompt": prompt, "max_tokens": 6, "temperature": 0,
                            "ignore_eos": True})
    r.raise_for_status()
    return r.json()["choices"][0]["text"]


def run_some(srv):
    prompts = [f"Count from {i} to {i + 5}:" for i in range(4)]
    complete(srv, "Hello")  # one alone: its steps carry a single sequence
    with cf.ThreadPoolExecutor(len(prompts)) as pool:
        list(pool.map(lambda p: complete(srv, p), prompts))
    return srv.metrics()


class step_timers(unittest.TestCase):
    def check(self, m, num_stages):
        steps = m["troupe:num_steps_total"]
        self.assertGreater(steps, 0)
        names = ["troupe:step_plan_build_seconds", "troupe:step_round_trip_seconds",
                 "troupe:step_sample_seconds", "troupe:step_num_tokens"]
        for name in names:
            self.assertEqual(m[name + "_count"], steps, name)
            self.assertEqual(m[name + '_bucket{le="+Inf"}'], steps, name)
            self.assertGreater(m[name + "_sum"], 0, name)
        for k in range(num_stages):
            lab = f'stage="{k}"'
            self.assertEqual(m["troupe:step_forward_seconds_count{" + lab + "}"], steps, k)
            self.assertGreater(m["troupe:step_forward_seconds_sum{" + lab + "}"], 0, k)
        self.assertNotIn(f'troupe:step_forward_seconds_count{{stage="{num_stages}"}}', m)
        # Tokens per step add up to every token the steps computed: prompts and outputs.
        self.assertGreaterEqual(m["troupe:step_num_tokens_sum"],
                                m["troupe:prompt_tokens_computed_total"])
        # A step's round trip contains its forward passes.
        fwd = sum(m["troupe:step_forward_seconds_sum{" + f'stage="{k}"' + "}"]
                  for k in range(num_stages))
        self.assertGreaterEqual(m["troupe:step_round_trip_seconds_sum"], fwd)

    def test_one_stage(self):
        with harness.troupe_server() as srv:
            self.check(run_some(srv), 1)

    def test_two_stages(self):
        with open(os.path.join(ROOT, "examples", "topologies", "two-stage.toml")) as f:
            config = harness.DEFAULT_CONFIG + f.read()
        with harness.troupe_server(config) as srv:
            self.check(run_some(srv), 2)


if __name__ == "__main__":
    harness.main()
