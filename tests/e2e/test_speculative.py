"""Speculative decoding (prompt lookup) over HTTP: with drafts on, every output is byte-identical
to the same request with drafts off (the per-request `speculative_decoding: false` opt-out, and a
server with speculation off) -- greedy and seeded sampling, streaming or not, with logprobs, with
a stop string or max_tokens landing inside an accepted run, with n > 1 and echo + logprobs -- and
/metrics counts the drafts."""
import os
import sys
import unittest

import openai

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

SPEC = """
[scheduler]
num_speculative_tokens = 4
[kv]
num_blocks = 512
"""

OFF = """
[scheduler]
num_speculative_tokens = 0
[kv]
num_blocks = 512
"""

# Input-grounded prompts: the answer copies long stretches of the prompt.
PROMPTS = [
    "Rewrite the following sentence with every word in the same order, exactly as written: "
    "'The quick brown fox jumps over the lazy dog near the quiet river bank.'\nRewritten: "
    "'The quick brown fox",
    "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\n"
    "# The same two functions again, unchanged:\ndef add(a, b):\n",
    "Quote: \"All happy families are alike; each unhappy family is unhappy in its own way.\"\n"
    "Repeat the quote word for word: \"All happy",
]


def client(srv):
    return openai.OpenAI(base_url=srv.url + "/v1", api_key="none", max_retries=0)


def complete(c, prompt, spec=True, stream=False, **kw):
    args = dict(model="SmolLM2-135M-Instruct.Q4_1", prompt=prompt, max_tokens=kw.pop("max_tokens", 48), **kw)
    if not spec:
        args["extra_body"] = {"speculative_decoding": False}
    if not stream:
        r = c.completions.create(**args)
        ch = r.choices[0]
        lp = ch.logprobs.token_logprobs if ch.logprobs else None
        return ch.text, ch.finish_reason, r.usage.completion_tokens, lp
    text, finish, lp = "", None, []
    for chunk in c.completions.create(stream=True, **args):
        for ch in chunk.choices:
            text += ch.text
            finish = ch.finish_reason or finish
            if ch.logprobs:
                lp += ch.logprobs.token_logprobs
    return text, finish, None, lp or None


class speculative_decoding(unittest.TestCase):
    def test_outputs_identical_with_and_without_drafts(self):
        cases = []
        for p in PROMPTS:
            cases.append((p, dict(temperature=0)))
            cases.append((p, dict(temperature=0, logprobs=2)))
            cases.append((p, dict(temperature=0.8, seed=11)))
            cases.append((p, dict(temperature=0, max_tokens=7)))
        with harness.troupe_server(OFF) as srv:
            c = client(srv)
            reference = [complete(c, p, **dict(kw)) for p, kw in cases]
            m = srv.metrics()
            self.assertEqual(m["troupe:spec_decode_num_draft_tokens_total"], 0)
        with harness.troupe_server(SPEC) as srv:
            c = client(srv)
            for i, (p, kw) in enumerate(cases):
                ref = reference[i]
                before = srv.metrics()["troupe:spec_decode_num_draft_tokens_total"]
                self.assertEqual(complete(c, p, spec=False, **dict(kw)), ref, f"opt-out, case {i}")
                self.assertEqual(srv.metrics()["troupe:spec_decode_num_draft_tokens_total"], before,
                                 f"an opted-out request drafted, case {i}")
                self.assertEqual(complete(c, p, **dict(kw)), ref, f"case {i}")
                got = complete(c, p, stream=True, **dict(kw))
                self.assertEqual((got[0], got[1], got[3]), (ref[0], ref[1], ref[3]),
                                 f"streamed, case {i}")
            m = srv.metrics()
            drafts = m["troupe:spec_decode_num_draft_tokens_total"]
            accepted = m["troupe:spec_decode_num_accepted_tokens_total"]
            self.assertGreater(accepted, 0)
            self.assertGreater(accepted / drafts, 0.3)  # these prompts copy their input
            self.assertEqual(m["troupe:kv_blocks_used"], 0)

    def test_stop_string_inside_an_accepted_run(self):
        with harness.troupe_server(SPEC) as srv:
            c = client(srv)
            full = complete(c, PROMPTS[0], spec=False, temperature=0)[0]
            words = full.split()
            self.assertGreater(len(words), 4, full)
            for stop in (words[2], words[3] + " " + words[4]):
                for stream in (False, True):
                    want = complete(c, PROMPTS[0], spec=False, stream=stream, temperature=0,
                                    stop=[stop])
                    got = complete(c, PROMPTS[0], stream=stream, temperature=0, stop=[stop])
                    self.assertEqual(got, want, f"stop {stop!r} stream {stream}")
                    self.assertNotIn(stop, got[0])
            self.assertGreater(srv.metrics()["troupe:spec_decode_num_accepted_tokens_total"], 0)

    def test_n_choices_and_echo_logprobs(self):
        def all_choices(c, spec, **kw):
            args = dict(model="SmolLM2-135M-Instruct.Q4_1", prompt=PROMPTS[2], max_tokens=40, **kw)
            if not spec:
                args["extra_body"] = {"speculative_decoding": False}
            r = c.completions.create(**args)
            return [(ch.index, ch.text, ch.finish_reason,
                     ch.logprobs.token_logprobs if ch.logprobs else None) for ch in r.choices]
        with harness.troupe_server(SPEC) as srv:
            c = client(srv)
            for kw in (dict(n=3, temperature=0.9, seed=3), dict(n=2, temperature=0),
                       dict(echo=True, logprobs=1, temperature=0)):
                before = srv.metrics()["troupe:spec_decode_num_accepted_tokens_total"]
                self.assertEqual(all_choices(c, True, **kw), all_choices(c, False, **kw), str(kw))
                self.assertGreater(srv.metrics()["troupe:spec_decode_num_accepted_tokens_total"],
                                   before, str(kw))
            self.assertEqual(srv.metrics()["troupe:kv_blocks_used"], 0)


if __name__ == "__main__":
    harness.main()
