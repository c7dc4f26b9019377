"""Batching is invisible: 32 concurrent greedy clients each get exactly the text they get alone;
a client that disconnects mid-stream is cancelled and its KV blocks return (seen on /metrics);
SIGTERM with a request in flight still ends in exit 0."""
import concurrent.futures as cf
import os
import socket
import sys
import time
import unittest

import openai
import requests

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

srv = None
client = None
PROMPTS = [f"Write a short sentence about the number {i}." for i in range(32)]


def setUpModule():
    global srv, client
    srv = harness.troupe_server().__enter__()
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="none", max_retries=0, timeout=300)


def tearDownModule():
    srv.__exit__(None, None, None)


def greedy(prompt, stream=False):
    kw = dict(model="SmolLM2-135M-Instruct.Q4_1", max_tokens=10, temperature=0,
              messages=[{"role": "user", "content": prompt}], extra_body={"ignore_eos": True})
    if stream:
        return "".join(ch.choices[0].delta.content or ""
                       for ch in client.chat.completions.create(stream=True, **kw) if ch.choices)
    return client.chat.completions.create(**kw).choices[0].message.content


class concurrency(unittest.TestCase):
    def test_32_concurrent_clients_match_solo_outputs(self):
        alone = [greedy(p) for p in PROMPTS]
        with cf.ThreadPoolExecutor(32) as pool:
            together = list(pool.map(lambda ip: greedy(ip[1], stream=ip[0] % 2 == 1),
                                     enumerate(PROMPTS)))
        for i, (a, t) in enumerate(zip(alone, together)):
            self.assertEqual(a, t, f"client {i}")
        m = srv.metrics()
        self.assertEqual(m["troupe:kv_blocks_used"], 0)
        # Some steps really batched several sequences.
        self.assertLess(m['troupe:batch_num_seqs_bucket{le="1"}'],
                        m["troupe:batch_num_seqs_count"])

    def test_disconnect_mid_stream_cancels_and_frees_blocks(self):
        body = (b'{"prompt":"Tell me a very long story.","max_tokens":2000,"stream":true,'
                b'"ignore_eos":true}')
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        got = b""
        while got.count(b"data: ") < 3:
            got += s.recv(4096)
        self.assertIn(b" 200 ", got.split(b"\r\n")[0])
        self.assertGreater(srv.metrics()["troupe:kv_blocks_used"], 0)
        s.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            m = srv.metrics()
            if m["troupe:kv_blocks_used"] == 0 and m["troupe:num_requests_running"] == 0:
                break
            time.sleep(0.1)
        self.assertEqual(m["troupe:kv_blocks_used"], 0)
        self.assertEqual(m["troupe:num_requests_running"], 0)
        self.assertGreaterEqual(m.get('troupe:request_success_total{finished_reason="abort"}', 0), 1)


class request_timeout(unittest.TestCase):
    def test_a_request_past_its_deadline_is_cancelled_and_frees_its_blocks(self):
        config = harness.DEFAULT_CONFIG.replace("[server]", "[server]\nrequest_timeout_s = 1")
        with harness.troupe_server(config) as s2:
            t0 = time.time()
            r = requests.post(s2.url + "/v1/completions", json={
                "prompt": "Count:", "max_tokens": 4000, "ignore_eos": True}, timeout=120)
            self.assertLess(time.time() - t0, 30)
            self.assertEqual(r.status_code, 200)
            c = r.json()["choices"][0]
            self.assertEqual(c["finish_reason"], "abort")
            self.assertLess(r.json()["usage"]["completion_tokens"], 4000)
            self.assertEqual(s2.metrics()["troupe:kv_blocks_used"], 0)


class shutdown(unittest.TestCase):
    def test_sigterm_with_a_stream_in_flight_exits_0(self):
        with harness.troupe_server(harness.DEFAULT_CONFIG.replace(
                "shutdown_timeout_s = 10", "shutdown_timeout_s = 2")) as s2:
            r = requests.post(s2.url + "/v1/completions", stream=True, json={
                "prompt": "Count:", "max_tokens": 4000, "stream": True, "ignore_eos": True})
            lines = r.iter_lines()
            next(lines)
            t0 = time.time()
            rc = s2.stop()
            self.assertEqual(rc, 0, s2.output())
            self.assertLess(time.time() - t0, 20)
            rest = b"\n".join(lines)  # the stream ended cleanly, with [DONE]
            self.assertIn(b"data: [DONE]", rest)


if __name__ == "__main__":
    harness.main()
