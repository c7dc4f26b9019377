"""Speculative decoding with a draft model over HTTP (scheduler.speculative_model): the target
serves as its own draft, so greedy drafts all hold and the plumbing shows -- outputs are
byte-identical to the per-request opt-out (plain, streamed, with logprobs), /metrics counts the
drafts, sampled requests repeat themselves per seed, and a draft model that cannot be loaded stops
the start with a message naming it."""
import os
import subprocess
import sys
import unittest

import openai

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

# Continuations the model carries on for the whole max_tokens (a bare instruction as a plain
# completion often gets an immediate end of text, and then nothing is drafted).
PROMPTS = [
    "Once upon a time, in a small village by the sea, there lived",
    "The three primary colours are red, yellow and",
]


def config():
    # 64-grams never match these prompts: every draft comes from the draft model.
    return f"""
[scheduler]
num_speculative_tokens = 4
prompt_lookup_min = 64
prompt_lookup_max = 64
speculative_model = "{harness.MODEL}"
[kv]
num_blocks = 512
"""


def complete(c, prompt, spec=True, stream=False, **kw):
    args = dict(model="SmolLM2-135M-Instruct.Q4_1", prompt=prompt, max_tokens=32, **kw)
    if not spec:
        args["extra_body"] = {"speculative_decoding": False}
    if not stream:
        ch = c.completions.create(**args).choices[0]
        return ch.text, ch.finish_reason, ch.logprobs.token_logprobs if ch.logprobs else None
    text, finish, lp = "", None, []
    for chunk in c.completions.create(stream=True, **args):
        for ch in chunk.choices:
            text += ch.text
            finish = ch.finish_reason or finish
            if ch.logprobs:
                lp += ch.logprobs.token_logprobs
    return text, finish, lp or None


class draft_model(unittest.TestCase):
    def test_greedy_identical_and_counted(self):
        with harness.troupe_server(config()) as srv:
            self.assertIn("speculative model", srv.output())
            c = openai.OpenAI(base_url=srv.url + "/v1", api_key="none", max_retries=0)
            for i, p in enumerate(PROMPTS):
                for kw in (dict(temperature=0), dict(temperature=0, logprobs=2)):
                    ref = complete(c, p, spec=False, **kw)
                    before = srv.metrics()["troupe:spec_decode_num_draft_tokens_total"]
                    self.assertEqual(complete(c, p, **kw), ref, f"prompt {i} {kw}")
                    self.assertEqual(complete(c, p, stream=True, **kw), ref,
                                     f"streamed, prompt {i} {kw}")
                    self.assertGreater(
                        srv.metrics()["troupe:spec_decode_num_draft_tokens_total"], before)
            m = srv.metrics()
            self.assertEqual(m["troupe:spec_decode_num_accepted_tokens_total"],
                             m["troupe:spec_decode_num_draft_tokens_total"])
            # Sampled: the draft's own distribution and the general rule; same seed, same text.
            a = complete(c, PROMPTS[0], temperature=0.9, seed=5)
            self.assertEqual(complete(c, PROMPTS[0], temperature=0.9, seed=5), a)
            self.assertIn(a[1], ("stop", "length"))
            self.assertEqual(srv.metrics()["troupe:kv_blocks_used"], 0)

    def test_unloadable_draft_stops_the_start(self):
        r = subprocess.run([harness.TROUPE, "serve", "--model", harness.MODEL, "--port", "0",
                            "--speculative-model", "/nonexistent/draft.gguf"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("speculative model /nonexistent/draft.gguf", r.stderr)


if __name__ == "__main__":
    harness.main()
