"""SLO-aware scheduling over HTTP (issue 9; the stall of issue 10): a 2,000-token prompt arriving
while four streams decode must not stall them for its whole prefill. The same scenario runs on
two servers, one with scheduler.slo_tpot_ms = 0 (the default: the prompt is one step, every
stream waits for it) and one with 50 ms; the streams' largest inter-token gap while the long
prompt is computed must shrink by a wide margin. The bound is relative (same test, same machine,
minutes apart) so that a loaded machine slows both sides alike; measured on the shared 2-core
machine: 2.8 s without the target, 63-83 ms with it (fast arithmetic); 9-25 s against 0.3-1.9 s
(llama.cpp-exact, heavily loaded). Also: the two keys are validated."""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

NUM_STREAMS = 4
LONG_PROMPT_TOKENS = 2000


def config(slo_tpot_ms):
    return f"""
[server]
shutdown_timeout_s = 10
[scheduler]
slo_tpot_ms = {slo_tpot_ms}
[kv]
num_blocks = 1024
"""


class stream_reader(threading.Thread):
    """One streamed completion; records the arrival time of every chunk carrying text."""

    def __init__(self, url, index):
        super().__init__(daemon=True)
        self.url, self.index = url, index
        self.times = []
        self.stop = threading.Event()
        self.error = None

    def run(self):
        body = {"prompt": f"Story number {self.index}: once upon a time", "max_tokens": 4000,
                "temperature": 0, "ignore_eos": True, "stream": True}
        try:
            with requests.post(self.url + "/v1/completions", json=body, stream=True,
                               timeout=600) as r:
                r.raise_for_status()
                for line in r.iter_lines():
                    if self.stop.is_set():
                        break  # closing the connection cancels the request
                    if not line.startswith(b"data: ") or line == b"data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if chunk.get("choices") and chunk["choices"][0].get("text"):
                        self.times.append(time.monotonic())
        except Exception as e:  # noqa: BLE001 -- reported by the test
            self.error = e


def max_gap_during(times, t0, t1):
    """The largest gap between consecutive chunks among those gaps that overlap [t0, t1]."""
    gaps = [b - a for a, b in zip(times, times[1:]) if b >= t0 and a <= t1]
    return max(gaps) if gaps else None


def stall_while_long_prompt(slo_tpot_ms):
    """(max gap of any stream while the long prompt is computed, median gap before it, the long
    prompt's latency), in seconds."""
    with harness.troupe_server(config(slo_tpot_ms)) as srv:
        streams = [stream_reader(srv.url, i) for i in range(NUM_STREAMS)]
        for s in streams:
            s.start()
        deadline = time.monotonic() + 120
        while min(len(s.times) for s in streams) < 20:
            if time.monotonic() > deadline or any(s.error for s in streams):
                raise AssertionError("streams did not start: %s" % [s.error for s in streams])
            time.sleep(0.05)
        time.sleep(0.5)
        before = sorted(b - a for s in streams for a, b in zip(s.times, s.times[1:]))
        t0 = time.monotonic()
        # Token ids, so the prompt is exactly LONG_PROMPT_TOKENS long.
        prompt = [100 + (i * 37) % 20000 for i in range(LONG_PROMPT_TOKENS)]
        r = requests.post(srv.url + "/v1/completions", timeout=600,
                          json={"prompt": prompt, "max_tokens": 1, "temperature": 0})
        r.raise_for_status()
        t1 = time.monotonic()
        time.sleep(0.5)  # every stream must show a chunk after the prompt was done
        for s in streams:
            s.stop.set()
        for s in streams:
            s.join(timeout=60)
        for s in streams:
            if s.error:
                raise AssertionError(f"stream {s.index}: {s.error}")
            if not s.times or s.times[-1] < t1:
                raise AssertionError(f"stream {s.index} ended before the long prompt did")
        worst = max(max_gap_during(s.times, t0, t1) for s in streams)
        return worst, before[len(before) // 2], t1 - t0


class long_prompt_stall(unittest.TestCase):
    def test_tpot_target_keeps_streams_going(self):
        off_gap, off_median, off_latency = stall_while_long_prompt(0)
        on_gap, on_median, on_latency = stall_while_long_prompt(50)
        print(f"\nslo_tpot_ms=0:  max gap {off_gap * 1e3:.0f} ms (median before "
              f"{off_median * 1e3:.1f} ms), long prompt {off_latency:.2f} s\n"
              f"slo_tpot_ms=50: max gap {on_gap * 1e3:.0f} ms (median before "
              f"{on_median * 1e3:.1f} ms), long prompt {on_latency:.2f} s", file=sys.stderr)
        # Without the target the streams wait for the whole prefill: most of the prompt's latency.
        self.assertGreater(off_gap, 0.5 * off_latency)
        # With it the worst gap is a small fraction of that.
        self.assertLess(on_gap, off_gap / 4)


class slo_keys(unittest.TestCase):
    def test_bad_values_are_named(self):
        for key in ["slo_ttft_ms", "slo_tpot_ms"]:
            with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
                f.write(f"[scheduler]\n{key} = -1\n")
            try:
                p = subprocess.run([harness.TROUPE, "serve", "--model", harness.MODEL, "--port",
                                    "0", "--config", f.name], capture_output=True, text=True,
                                   timeout=60)
            finally:
                os.unlink(f.name)
            self.assertEqual(p.returncode, 1, key)
            self.assertIn("scheduler." + key, p.stderr)


if __name__ == "__main__":
    harness.main()
