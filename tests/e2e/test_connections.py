"""The connection side of issue 10, over raw sockets (a client library would hide each case):
a client that stops reading is cut and its request's KV blocks freed (write-stall timeout and
the bounded stream buffer); a trickled request is dropped (minimum rate, header timeout);
max_connections answers 503; 431 / 414 / 415 / 400 without Host; Retry-After on 429 and 503;
after SIGTERM new connections get 503 while a stream drains, and a stream cut at the deadline
ends with an error event and [DONE], not finish_reason "abort"."""
import json
import os
import signal
import socket
import sys
import threading
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

LONG = {"prompt": "Tell me a very long story.", "max_tokens": 8000, "stream": True,
        "ignore_eos": True}


def connect(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:  # before connect, so that the window the server sees is small from the start
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    return s


def post(path, body, headers=b"Host: x\r\nContent-Type: application/json\r\n"):
    body = json.dumps(body).encode() if isinstance(body, dict) else body
    return (b"POST " + path.encode() + b" HTTP/1.1\r\n" + headers + b"Content-Length: " +
            str(len(body)).encode() + b"\r\n\r\n" + body)


def read_response(s):
    """(status, headers {lower name: value}, body) of one Content-Length answer."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before an answer: %r" % data)
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    n = int(headers.get("content-length", 0))
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:n]


def ask(port, raw):
    with connect(port) as s:
        s.sendall(raw)
        return read_response(s)


def seconds_until_closed(s, trickle, limit):
    """Sends `trickle` one byte every 0.1 s... until the server closes; the seconds it took."""
    t0 = time.time()
    s.settimeout(0.05)
    i = 0
    while time.time() - t0 < limit:
        try:
            if s.recv(4096) == b"":
                return time.time() - t0
        except socket.timeout:
            pass
        except OSError:
            return time.time() - t0
        try:
            s.send(trickle[i % len(trickle):i % len(trickle) + 1])
        except OSError:
            return time.time() - t0
        i += 1
        time.sleep(trickle_period[0])
    return time.time() - t0


trickle_period = [1.0]


def wait_blocks_free(srv, limit):
    """Seconds until no KV block is used and nothing runs, or None after `limit` seconds."""
    t0 = time.time()
    while time.time() - t0 < limit:
        m = srv.metrics()
        if m["troupe:kv_blocks_used"] == 0 and m["troupe:num_requests_running"] == 0:
            return time.time() - t0
        time.sleep(0.2)
    return None


def stop_reading_after_start(port):
    """A stream whose client reads its first frames and then nothing more (small window)."""
    s = connect(port, rcvbuf=4096)
    s.sendall(post("/v1/completions", LONG))
    got = b""
    while got.count(b"data: ") < 3:
        got += s.recv(1024)
    assert b" 200 " in got.split(b"\r\n")[0], got
    return s


class slow_readers_and_requests(unittest.TestCase):
    CONFIG = harness.DEFAULT_CONFIG.replace(
        "[server]", "[server]\nwrite_timeout_s = 3\nheader_timeout_s = 15")

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.troupe_server(cls.CONFIG).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def test_a_client_that_stops_reading_is_cut_and_its_blocks_freed(self):
        s = stop_reading_after_start(self.srv.port)
        try:
            self.assertGreater(self.srv.metrics()["troupe:kv_blocks_used"], 0)
            # 8000 tokens take far longer than this: only the write-stall cut frees them.
            took = wait_blocks_free(self.srv, 25)
            self.assertIsNotNone(took, "the stalled stream kept its blocks")
            # Others are served meanwhile and after.
            r = requests.post(self.srv.url + "/v1/completions",
                              json={"prompt": "Hi", "max_tokens": 4}, timeout=30)
            self.assertEqual(r.status_code, 200)
        finally:
            s.close()

    def test_a_request_trickled_at_1_byte_per_second_is_dropped_soon(self):
        with connect(self.srv.port) as s:
            trickle_period[0] = 1.0
            took = seconds_until_closed(s, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n", 20)
        # The keep-alive timeout (60 s) used to apply; now the minimum rate drops it.
        self.assertLess(took, 8)

    def test_headers_too_large_are_431(self):
        raw = (b"GET /health HTTP/1.1\r\nHost: x\r\n" +
               b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(80)) + b"\r\n")
        status, headers, body = ask(self.srv.port, raw)
        self.assertEqual(status, 431, body)
        self.assertEqual(json.loads(body)["error"]["code"], "headers_too_large")

    def test_a_long_uri_is_414(self):
        status, _, body = ask(self.srv.port,
                              b"GET /v1/models?" + b"q" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(status, 414, body)
        status, _, body = ask(self.srv.port,
                              b"GET /" + b"q" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(status, 414, body)

    def test_a_json_endpoint_refuses_another_content_type_with_415(self):
        body = {"prompt": "Hi", "max_tokens": 2}
        for path in ("/v1/completions", "/tokenize"):
            status, _, err = ask(self.srv.port, post(path, body, b"Host: x\r\nContent-Type: "
                                                     b"application/x-www-form-urlencoded\r\n"))
            self.assertEqual(status, 415, err)
            self.assertEqual(json.loads(err)["error"]["code"], "unsupported_media_type")
        # JSON with parameters, and no Content-Type at all, are taken.
        status, _, _ = ask(self.srv.port, post("/v1/completions", body, b"Host: x\r\nContent-Type:"
                                               b" Application/JSON; charset=utf-8\r\n"))
        self.assertEqual(status, 200)
        status, _, _ = ask(self.srv.port, post("/v1/completions", body, b"Host: x\r\n"))
        self.assertEqual(status, 200)

    def test_http_1_1_without_host_is_400(self):
        status, _, body = ask(self.srv.port, b"GET /health HTTP/1.1\r\n\r\n")
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body)["error"]["code"], "missing_host")
        status, _, _ = ask(self.srv.port, b"GET /health HTTP/1.0\r\n\r\n")
        self.assertEqual(status, 200)  # Host is optional in HTTP/1.0


class limits(unittest.TestCase):
    CONFIG = harness.DEFAULT_CONFIG.replace("[server]", """[server]
header_timeout_s = 2
min_request_bytes_per_s = 0
max_connections = 3
write_timeout_s = 600
max_stream_buffer_bytes = 4096""")

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.troupe_server(cls.CONFIG).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def test_a_header_is_dropped_at_the_header_timeout_even_at_a_fair_rate(self):
        with connect(self.srv.port) as s:
            trickle_period[0] = 0.1
            took = seconds_until_closed(s, b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 5000, 20)
        self.assertGreater(took, 1.5)
        self.assertLess(took, 5)

    def test_a_stream_lagging_past_the_buffer_bound_is_cut(self):
        # write_timeout_s is 600 here: only the buffer bound can end this stream early.
        s = stop_reading_after_start(self.srv.port)
        try:
            self.assertIsNotNone(wait_blocks_free(self.srv, 25), "the lagging stream kept its blocks")
        finally:
            s.close()

    def test_connections_past_max_connections_get_503_with_retry_after(self):
        idle = [connect(self.srv.port) for _ in range(3)]
        try:
            time.sleep(0.3)
            status, headers, body = ask(self.srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(status, 503, body)
            self.assertEqual(json.loads(body)["error"]["code"], "too_many_connections")
            self.assertEqual(headers.get("retry-after"), "1")
        finally:
            for s in idle:
                s.close()
        time.sleep(0.3)
        status, _, _ = ask(self.srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(status, 200)


class queue_full(unittest.TestCase):
    def test_429_carries_retry_after(self):
        config = harness.DEFAULT_CONFIG.replace("[kv]", """[scheduler]
max_num_seqs = 1
max_num_waiting_requests = 1
[kv]""")
        with harness.troupe_server(config) as srv:
            running = stop_reading_after_start(srv.port)  # takes the one sequence slot
            waiting = connect(srv.port)
            try:
                waiting.sendall(post("/v1/completions", LONG))
                time.sleep(0.5)  # admitted into the queue (its stream starts at once)
                status, headers, body = ask(srv.port, post("/v1/completions",
                                                           {"prompt": "Hi", "max_tokens": 2}))
                self.assertEqual(status, 429, body)
                self.assertEqual(headers.get("retry-after"), "1")
            finally:
                running.close()
                waiting.close()


class drain(unittest.TestCase):
    def test_after_sigterm_new_requests_get_503_and_a_cut_stream_ends_with_an_error_event(self):
        config = harness.DEFAULT_CONFIG.replace("shutdown_timeout_s = 10", "shutdown_timeout_s = 4")
        with harness.troupe_server(config) as srv:
            s = connect(srv.port)
            s.sendall(post("/v1/completions", LONG))
            got = b""
            while got.count(b"data: ") < 2:
                got += s.recv(4096)
            reader_done = threading.Event()
            stream = [got]

            def read_rest():
                s.settimeout(60)
                while True:
                    try:
                        chunk = s.recv(65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    stream[0] += chunk
                reader_done.set()

            threading.Thread(target=read_rest, daemon=True).start()
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            # Still accepted, and answered 503 (JSON, Retry-After) while the stream drains.
            status, headers, body = ask(srv.port, post("/v1/completions",
                                                       {"prompt": "Hi", "max_tokens": 2}))
            self.assertEqual(status, 503, body)
            self.assertEqual(json.loads(body)["error"]["code"], "shutting_down")
            self.assertEqual(headers.get("retry-after"), "1")
            self.assertEqual(headers.get("connection"), "close")
            self.assertTrue(reader_done.wait(30), "the stream did not end")
            self.assertEqual(srv.proc.wait(timeout=30), 0, srv.output())
            text = stream[0].decode(errors="replace")
            self.assertNotIn('"finish_reason":"abort"', text)
            events = [l[6:] for l in text.splitlines() if l.startswith("data: ")]
            self.assertEqual(events[-1], "[DONE]", text[-500:])
            err = json.loads(events[-2])["error"]
            self.assertEqual(err["code"], "shutting_down")


if __name__ == "__main__":
    harness.main()
