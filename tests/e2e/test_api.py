"""OpenAI API end to end: the official `openai` client and raw HTTP against `troupe serve`.

Covers chat and completions (streaming and not, which must agree under greedy decoding), stop
strings, n=2, logprobs in both shapes, seed reproducibility, /tokenize, /detokenize, /v1/models,
/health, /metrics and every client error (400/404/405/413) in OpenAI's error shape.
"""
import json
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
MODEL_ID = "SmolLM2-135M-Instruct.Q4_1"


def setUpModule():
    global srv, client
    srv = harness.troupe_server().__enter__()
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="none", max_retries=0)


def tearDownModule():
    srv.__exit__(None, None, None)


def complete(**kw):
    kw.setdefault("model", MODEL_ID)
    return client.completions.create(**kw)


def chat(**kw):
    kw.setdefault("model", MODEL_ID)
    return client.chat.completions.create(**kw)


class models_and_health(unittest.TestCase):
    def test_models_lists_the_model_with_vllm_fields(self):
        r = requests.get(srv.url + "/v1/models").json()
        self.assertEqual(r["object"], "list")
        m = r["data"][0]
        self.assertEqual(m["id"], MODEL_ID)
        self.assertEqual(m["root"], MODEL_ID)  # the served name, never the file's path (issue 10)
        self.assertEqual(m["max_model_len"], 8192)
        self.assertEqual([x.id for x in client.models.list().data], [MODEL_ID])

    def test_health_and_metrics(self):
        self.assertEqual(requests.get(srv.url + "/health").status_code, 200)
        m = srv.metrics()
        self.assertEqual(m["troupe:kv_blocks_total"], 512)
        self.assertIn("troupe:num_requests_running", m)
        self.assertIn("troupe:time_to_first_token_seconds_count", m)


class completions(unittest.TestCase):
    def test_greedy_stream_equals_non_stream(self):
        kw = dict(prompt="The capital of France is", max_tokens=12, temperature=0,
                  extra_body={"ignore_eos": True})
        full = complete(**kw)
        c = full.choices[0]
        self.assertEqual(full.object, "text_completion")
        self.assertEqual(c.finish_reason, "length")
        self.assertTrue(len(c.text) > 0)
        self.assertEqual(full.usage.completion_tokens, 12)
        self.assertEqual(full.usage.total_tokens, full.usage.prompt_tokens + 12)
        chunks = list(complete(stream=True, stream_options={"include_usage": True}, **kw))
        text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
        self.assertEqual(text, c.text)
        self.assertEqual([ch.choices[0].finish_reason for ch in chunks if ch.choices][-1], "length")
        self.assertEqual(chunks[-1].choices, [])
        self.assertEqual(chunks[-1].usage.completion_tokens, 12)

    def test_raw_sse_framing_ends_with_done(self):
        r = requests.post(srv.url + "/v1/completions", stream=True, json={
            "prompt": "Hello", "max_tokens": 4, "stream": True, "temperature": 0})
        self.assertEqual(r.status_code, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/event-stream"))
        events = [e for e in r.text.split("\n\n") if e]
        self.assertEqual(events[-1], "data: [DONE]")
        for e in events[:-1]:
            self.assertTrue(e.startswith("data: "))
            json.loads(e[len("data: "):])

    def test_stop_string_cuts_text_and_is_never_emitted(self):
        base = complete(prompt="One, two, three, four,", max_tokens=16, temperature=0,
                        extra_body={"ignore_eos": True}).choices[0].text
        self.assertGreater(len(base), 8, base)
        stop = base[4:7]  # inside the text, likely spanning token boundaries
        want = base[:base.index(stop)]
        for stream in (False, True):
            kw = dict(prompt="One, two, three, four,", max_tokens=16, temperature=0,
                      stop=[stop, "\u2603never"], extra_body={"ignore_eos": True})
            if stream:
                chunks = list(complete(stream=True, **kw))
                text = "".join(ch.choices[0].text for ch in chunks)
                reason = chunks[-1].choices[0].finish_reason
            else:
                c = complete(**kw).choices[0]
                text, reason = c.text, c.finish_reason
            self.assertEqual(text, want, f"stream={stream} stop={stop!r} base={base!r}")
            self.assertEqual(reason, "stop")

    def test_n2_gives_two_choices(self):
        r = complete(prompt="Once upon a time", max_tokens=6, n=2, temperature=1.0, seed=3)
        self.assertEqual(sorted(c.index for c in r.choices), [0, 1])
        self.assertGreater(r.usage.completion_tokens, 6 - 1)  # both choices count
        self.assertLessEqual(r.usage.completion_tokens, 12)
        chunks = list(complete(prompt="Once upon a time", max_tokens=6, n=2, temperature=1.0,
                               seed=3, stream=True))
        streamed = {0: "", 1: ""}
        for ch in chunks:
            for c in ch.choices:
                streamed[c.index] += c.text
        self.assertEqual(streamed, {c.index: c.text for c in r.choices})

    def test_logprobs_completions_shape(self):
        r = complete(prompt="The sky is", max_tokens=5, temperature=0, logprobs=2,
                     extra_body={"ignore_eos": True})
        lp = r.choices[0].logprobs
        self.assertEqual(len(lp.tokens), 5)
        self.assertEqual(len(lp.token_logprobs), 5)
        self.assertEqual(len(lp.top_logprobs), 5)
        for t, l, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
            self.assertLessEqual(l, 0.0)
            self.assertEqual(len(top), 2)
            # Greedy: the chosen token is the most likely one.
            self.assertAlmostEqual(max(top.values()), l, places=4)
        self.assertEqual(lp.text_offset[0], 0)

    def test_seed_reproducibility(self):
        kw = dict(prompt="In a distant galaxy", max_tokens=10, temperature=1.0, top_p=0.95,
                  extra_body={"ignore_eos": True})
        a = complete(seed=1234, **kw).choices[0].text
        b = complete(seed=1234, **kw).choices[0].text
        self.assertEqual(a, b)
        others = {complete(seed=s, **kw).choices[0].text for s in (1, 2, 3)}
        self.assertGreater(len(others | {a}), 1)


class prompt_batches(unittest.TestCase):
    """A prompt array is generated prompt by prompt; it must equal separate requests (greedy)."""
    PROMPTS = ["The capital of France is", "1, 2, 3, 4,", "Once upon a time"]
    KW = dict(max_tokens=8, temperature=0, extra_body={"ignore_eos": True})

    def separate(self, prompts, **kw):
        return [complete(prompt=p, **self.KW, **kw) for p in prompts]

    def test_batch_of_strings_equals_separate_requests(self):
        alone = self.separate(self.PROMPTS)
        r = complete(prompt=self.PROMPTS, **self.KW)
        self.assertEqual([c.index for c in r.choices], [0, 1, 2])
        self.assertEqual([c.text for c in r.choices], [a.choices[0].text for a in alone])
        self.assertEqual([c.finish_reason for c in r.choices], ["length"] * 3)
        self.assertEqual(r.usage.prompt_tokens, sum(a.usage.prompt_tokens for a in alone))
        self.assertEqual(r.usage.completion_tokens, 3 * 8)

    def test_batch_of_token_lists_equals_separate_requests(self):
        ids = [requests.post(srv.url + "/tokenize", json={"prompt": p}).json()["tokens"]
               for p in self.PROMPTS[:2]]
        alone = self.separate(ids)
        r = complete(prompt=ids, **self.KW)
        self.assertEqual([c.text for c in r.choices], [a.choices[0].text for a in alone])
        self.assertEqual(r.usage.prompt_tokens, len(ids[0]) + len(ids[1]))

    def test_n2_indexes_choices_by_prompt_then_choice(self):
        alone = self.separate(self.PROMPTS[:2])
        r = complete(prompt=self.PROMPTS[:2], n=2, **self.KW)
        self.assertEqual(sorted(c.index for c in r.choices), [0, 1, 2, 3])
        by_index = {c.index: c.text for c in r.choices}
        for k in range(2):
            for c in range(2):  # greedy: every choice of a prompt is that prompt's text
                self.assertEqual(by_index[k * 2 + c], alone[k].choices[0].text)
        # prompt_tokens counts each prompt once, whatever n is.
        self.assertEqual(r.usage.prompt_tokens, sum(a.usage.prompt_tokens for a in alone))
        self.assertEqual(r.usage.completion_tokens, 4 * 8)

    def test_streamed_batch_equals_non_streamed(self):
        full = complete(prompt=self.PROMPTS, n=2, **self.KW)
        chunks = list(complete(prompt=self.PROMPTS, n=2, stream=True,
                               stream_options={"include_usage": True}, **self.KW))
        text, finish = {}, {}
        for ch in chunks:
            for c in ch.choices:
                text[c.index] = text.get(c.index, "") + c.text
                if c.finish_reason:
                    self.assertNotIn(c.index, finish)
                    finish[c.index] = c.finish_reason
        self.assertEqual(text, {c.index: c.text for c in full.choices})
        self.assertEqual(finish, {i: "length" for i in range(6)})
        self.assertEqual(chunks[-1].usage.prompt_tokens, full.usage.prompt_tokens)
        self.assertEqual(chunks[-1].usage.completion_tokens, 6 * 8)

    def test_echo_repeats_each_prompt_before_its_choices(self):
        r = complete(prompt=self.PROMPTS[:2], n=2, echo=True, **self.KW)
        for c in r.choices:
            self.assertTrue(c.text.startswith(self.PROMPTS[c.index // 2]), (c.index, c.text))

    def test_stop_strings_apply_per_choice(self):
        base = self.separate(self.PROMPTS[:2])
        stop = base[1].choices[0].text[2:4]
        alone = self.separate(self.PROMPTS[:2], stop=[stop])
        r = complete(prompt=self.PROMPTS[:2], stop=[stop], **self.KW)
        self.assertEqual([c.text for c in r.choices], [a.choices[0].text for a in alone])
        self.assertEqual([c.finish_reason for c in r.choices],
                         [a.choices[0].finish_reason for a in alone])
        self.assertEqual(r.choices[1].finish_reason, "stop")

    def test_disconnected_batch_frees_every_prompts_blocks(self):
        body = json.dumps({"prompt": self.PROMPTS, "n": 2, "max_tokens": 2000, "stream": True,
                           "ignore_eos": True}).encode()
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        got = b""
        while got.count(b"data: ") < 12:
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

    def test_bad_batches_are_400_naming_prompt(self):
        url = srv.url + "/v1/completions"
        for prompt, where in [([], "empty"), ([[1, 2], []], "prompt[1]"),
                              ([[1, 2], [3, 1.5]], "prompt[1][1]"),
                              ([[1, 2], [3, "x"]], "prompt[1][1]"),
                              (["a", [1]], "prompt[1]"),
                              ([[1], [2, 99999999]], "prompt[1][1]"),
                              ([[1]] * 65, "64")]:
            r = requests.post(url, json={"prompt": prompt, "max_tokens": 2})
            self.assertEqual(r.status_code, 400, (prompt, r.text))
            e = r.json()["error"]
            self.assertEqual(e["param"], "prompt", e)
            self.assertIn(where, e["message"])
        r = requests.post(url, json={"prompt": ["hi", "x " * 9000], "max_tokens": 2})
        self.assertEqual(r.status_code, 400, r.text)
        self.assertIn("prompt[1]", r.json()["error"]["message"])


class echo_logprobs(unittest.TestCase):
    """echo + logprobs: the prompt tokens' logprobs come first (the first one null), as vLLM."""
    PROMPT = "The capital of France is"

    def ids(self, text):
        return requests.post(srv.url + "/tokenize", json={"prompt": text}).json()["tokens"]

    def test_prompt_tokens_come_first_with_a_null_first_logprob(self):
        n_prompt = len(self.ids(self.PROMPT))
        r = complete(prompt=self.PROMPT, max_tokens=4, temperature=0, logprobs=2, echo=True,
                     extra_body={"ignore_eos": True})
        c = r.choices[0]
        lp = c.logprobs
        self.assertEqual(len(lp.tokens), n_prompt + 4)
        self.assertEqual("".join(lp.tokens), c.text)
        self.assertEqual("".join(lp.tokens[:n_prompt]), self.PROMPT)
        self.assertIsNone(lp.token_logprobs[0])
        self.assertIsNone(lp.top_logprobs[0])
        for l, top in zip(lp.token_logprobs[1:], lp.top_logprobs[1:]):
            self.assertLessEqual(l, 0.0)
            self.assertEqual(len(top), 2)
            self.assertGreaterEqual(max(top.values()), l - 1e-6)
        self.assertEqual(lp.text_offset[0], 0)
        self.assertEqual(lp.text_offset[n_prompt], len(self.PROMPT))

    def test_prompt_logprobs_agree_with_the_generated_ones(self):
        # Teacher forcing: the greedy continuation G of P, sent back as part of the prompt, gets
        # the logprobs it had when generated and each of its tokens is the top-1 there. G's
        # first token comes from P's last position in both: bit-identical. Later ones were
        # decoded one by one, and llama.cpp sums a decode step differently from a prompt, so
        # those agree to ~0.1 (llama.cpp itself: -0.3869 decoded vs -0.3762 as prompt).
        # No ignore_eos: it changes the generated (processed) logprobs, not the raw prompt ones.
        gen = complete(prompt=self.PROMPT, max_tokens=6, temperature=0, logprobs=1).choices[0]
        n_gen = len(gen.logprobs.tokens)
        p_ids = self.ids(self.PROMPT)
        gen_ids = self.ids(self.PROMPT + gen.text)
        if gen_ids[:len(p_ids)] != p_ids or len(gen_ids) != len(p_ids) + n_gen:
            self.skipTest("the continuation does not re-tokenize to the same ids")
        r = complete(prompt=gen_ids, max_tokens=1, temperature=0, logprobs=1, echo=True)
        lp = r.choices[0].logprobs
        forced = lp.token_logprobs[len(p_ids):len(p_ids) + n_gen]
        self.assertEqual(forced[0], gen.logprobs.token_logprobs[0])
        for got, want in zip(forced, gen.logprobs.token_logprobs):
            self.assertAlmostEqual(got, want, delta=0.1)
        for tok, top in zip(lp.tokens[len(p_ids):len(p_ids) + n_gen],
                            lp.top_logprobs[len(p_ids):]):
            self.assertEqual(list(top), [tok])

    def test_repeat_stream_n2_and_batches_agree(self):
        kw = dict(max_tokens=3, temperature=0, logprobs=1, echo=True,
                  extra_body={"ignore_eos": True})
        first = complete(prompt=self.PROMPT, **kw).choices[0].logprobs
        # The second time the prompt's blocks are in the prefix cache; the answer is the same.
        again = complete(prompt=self.PROMPT, **kw).choices[0].logprobs
        self.assertEqual(again.token_logprobs, first.token_logprobs)
        self.assertEqual(again.tokens, first.tokens)
        r = complete(prompt=[self.PROMPT, "1, 2, 3,"], n=2, **kw)
        for c in r.choices:
            self.assertIsNone(c.logprobs.token_logprobs[0], c.index)
            if c.index < 2:
                self.assertEqual(c.logprobs.token_logprobs, first.token_logprobs)
        streamed = {}
        for ch in complete(prompt=self.PROMPT, n=2, stream=True, **kw):
            for c in ch.choices:
                if c.logprobs:
                    streamed.setdefault(c.index, []).extend(c.logprobs.token_logprobs)
        self.assertEqual(streamed, {0: first.token_logprobs, 1: first.token_logprobs})


class chat_completions(unittest.TestCase):
    MESSAGES = [{"role": "user", "content": "What is 2+2? Answer briefly."}]

    def test_chat_stream_equals_non_stream(self):
        full = chat(messages=self.MESSAGES, max_tokens=16, temperature=0)
        self.assertEqual(full.object, "chat.completion")
        msg = full.choices[0].message
        self.assertEqual(msg.role, "assistant")
        self.assertTrue(msg.content)
        self.assertIn(full.choices[0].finish_reason, ("stop", "length"))
        chunks = list(chat(messages=self.MESSAGES, max_tokens=16, temperature=0, stream=True))
        self.assertEqual(chunks[0].choices[0].delta.role, "assistant")
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks)
        self.assertEqual(text, msg.content)
        self.assertEqual(chunks[-1].choices[0].finish_reason, full.choices[0].finish_reason)

    def test_chat_logprobs_shape(self):
        r = chat(messages=self.MESSAGES, max_tokens=4, temperature=0, logprobs=True,
                 top_logprobs=3, extra_body={"ignore_eos": True})
        content = r.choices[0].logprobs.content
        self.assertEqual(len(content), 4)
        for e in content:
            self.assertEqual(len(e.top_logprobs), 3)
            self.assertEqual(e.top_logprobs[0].token, e.token)
            self.assertEqual(bytes(e.bytes).decode(errors="replace"), e.token)

    def test_max_completion_tokens(self):
        r = chat(messages=self.MESSAGES, max_completion_tokens=3, temperature=0,
                 extra_body={"ignore_eos": True})
        self.assertEqual(r.usage.completion_tokens, 3)
        self.assertEqual(r.choices[0].finish_reason, "length")


class tokenize(unittest.TestCase):
    def test_tokenize_detokenize_round_trip(self):
        t = requests.post(srv.url + "/tokenize", json={"prompt": "Hello world"}).json()
        self.assertEqual(t["count"], len(t["tokens"]))
        self.assertEqual(t["max_model_len"], 8192)
        d = requests.post(srv.url + "/detokenize", json={"tokens": t["tokens"]}).json()
        self.assertEqual(d["prompt"], "Hello world")


class errors(unittest.TestCase):
    def check_error(self, r, status, param=None):
        self.assertEqual(r.status_code, status, r.text)
        e = r.json()["error"]
        self.assertEqual(set(e), {"message", "type", "param", "code"})
        self.assertTrue(e["message"])
        if param is not None:
            self.assertEqual(e["param"], param)

    def test_invalid_json(self):
        r = requests.post(srv.url + "/v1/completions", data="{oops",
                          headers={"content-type": "application/json"})
        self.check_error(r, 400)

    def test_bad_parameters_are_named(self):
        for body, param in [({"prompt": "x", "temperature": 5}, "temperature"),
                            ({"prompt": "x", "max_tokens": -1}, "max_tokens"),
                            ({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
                            ({"prompt": "x", "n": 0}, "n"),
                            ({"prompt": [1, 99999999]}, "prompt"),
                            ({"prompt": "x", "logit_bias": {"99999999": 1}}, "logit_bias"),
                            ({"max_tokens": 3}, "prompt")]:
            self.check_error(requests.post(srv.url + "/v1/completions", json=body), 400, param)
        r = requests.post(srv.url + "/v1/chat/completions",
                          json={"messages": [{"role": "wizard", "content": "hi"}]})
        self.check_error(r, 400, "messages[0].role")

    def test_prompt_plus_max_tokens_beyond_context(self):
        r = requests.post(srv.url + "/v1/completions", json={"prompt": "hello", "max_tokens": 8192})
        self.check_error(r, 400, "max_tokens")
        with self.assertRaises(openai.BadRequestError):
            complete(prompt="hello", max_tokens=9000)
        r = requests.post(srv.url + "/v1/completions", json={"prompt": [1] * 8192})
        self.check_error(r, 400, "prompt")

    def test_unknown_model_and_route(self):
        self.check_error(requests.post(srv.url + "/v1/completions",
                                       json={"model": "gpt-4", "prompt": "x"}), 404, "model")
        with self.assertRaises(openai.NotFoundError):
            complete(model="gpt-4", prompt="x")
        self.check_error(requests.get(srv.url + "/v1/nothing"), 404)

    def test_wrong_method(self):
        self.check_error(requests.get(srv.url + "/v1/chat/completions"), 405)
        self.check_error(requests.delete(srv.url + "/v1/models"), 405)

    def test_body_too_large(self):
        r = requests.post(srv.url + "/v1/completions", data="x" * 200_000,
                          headers={"content-type": "application/json"})
        self.check_error(r, 413)
        # The server is still fine afterwards.
        self.assertEqual(requests.get(srv.url + "/health").status_code, 200)

    def test_http_errors_counted_on_metrics(self):
        requests.get(srv.url + "/v1/nothing")
        self.assertGreaterEqual(srv.metrics()['troupe:http_responses_total{status="404"}'], 1)


if __name__ == "__main__":
    harness.main()
