"""A burst larger than a tiny KV pool forces preemption (recompute); every greedy output is still
exactly what the request produces alone. Chunked prefill and prefix reuse change nothing either.
Also: the waiting-queue bound answers 429."""
import concurrent.futures as cf
import os
import sys
import unittest

import requests

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

# 24 blocks x 16 tokens = 384 positions; 8 requests of ~25 prompt + 40 output tokens need ~520.
TINY_POOL = """
[scheduler]
max_num_seqs = 8
max_num_batched_tokens = 256
[kv]
block_size = 16
num_blocks = 24
"""

SMALL_QUEUE = """
[scheduler]
max_num_seqs = 1
max_num_waiting_requests = 1
"""


def completion(url, prompt, max_tokens=40):
    r = requests.post(url + "/v1/completions", json={
        "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True},
        timeout=600)
    r.raise_for_status()
    return r.json()["choices"][0]["text"]


class preemption(unittest.TestCase):
    def test_burst_with_tiny_pool_preempts_and_outputs_are_unchanged(self):
        prompts = [f"Here is a list of facts about animal number {i}, one per line:" for i in range(8)]
        with harness.troupe_server(TINY_POOL) as srv:
            alone = [completion(srv.url, p) for p in prompts]
            before = srv.metrics()["troupe:num_preemptions_total"]
            with cf.ThreadPoolExecutor(8) as pool:
                together = list(pool.map(lambda p: completion(srv.url, p), prompts))
            m = srv.metrics()
            self.assertGreater(m["troupe:num_preemptions_total"], before)
            self.assertEqual(m["troupe:kv_blocks_used"], 0)
            for i, (a, t) in enumerate(zip(alone, together)):
                self.assertEqual(a, t, f"request {i}")


PLAIN = """
[scheduler]
enable_prefix_caching = false
"""

CHUNKED_AND_CACHED = """
[scheduler]
enable_prefix_caching = true
long_prefill_token_threshold = 8
"""


def chat_greedy(url, question):
    r = requests.post(url + "/v1/chat/completions", json={
        "messages": [{"role": "user", "content": question}], "max_tokens": 12,
        "temperature": 0, "ignore_eos": True}, timeout=600)
    r.raise_for_status()
    return r.json()["choices"][0]["message"]["content"]


class chunking_and_prefix_reuse(unittest.TestCase):
    def test_outputs_identical_to_plain_prefill(self):
        # Every chat prompt shares the template's system turn, so later ones hit the cache.
        questions = [f"What is the capital of {c}?" for c in ("France", "Spain", "Italy")]
        with harness.troupe_server(PLAIN) as srv:
            plain = [chat_greedy(srv.url, q) for q in questions]
        with harness.troupe_server(CHUNKED_AND_CACHED) as srv:
            chunked = [chat_greedy(srv.url, q) for q in questions]
            again = [chat_greedy(srv.url, q) for q in questions]  # whole prompts cached now
            self.assertGreater(srv.metrics()["troupe:prefix_cache_hit_tokens_total"], 0)
        self.assertEqual(chunked, plain)
        self.assertEqual(again, plain)


class queue_bound(unittest.TestCase):
    def test_full_queue_answers_429(self):
        with harness.troupe_server(SMALL_QUEUE) as srv:
            def post(i):
                return requests.post(srv.url + "/v1/completions", json={
                    "prompt": f"Story {i}:", "max_tokens": 30, "ignore_eos": True}, timeout=600)
            with cf.ThreadPoolExecutor(8) as pool:
                rs = list(pool.map(post, range(8)))
            codes = sorted(r.status_code for r in rs)
            self.assertIn(429, codes)
            self.assertTrue(set(codes) <= {200, 429}, codes)
            for r in rs:
                if r.status_code == 429:
                    e = r.json()["error"]
                    self.assertEqual(e["code"], "queue_full")


if __name__ == "__main__":
    harness.main()
