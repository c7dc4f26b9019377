"""Issue 11, points 2 and 5, with the real `openai` client: strict parameters (every documented
parameter implemented, a no-op, or refused naming it; unknown ones OpenAI's 400 unless the
operator ignores them), GET /v1/models/{id}, cached_tokens, system_fingerprint, CORS."""
import typing
import unittest
import uuid

import openai
import requests
from openai.types import completion_create_params
from openai.types.chat import completion_create_params as chat_create_params

import harness
from harness import troupe_server

MSG = [{"role": "user", "content": "Say hi."}]

# Refused because honouring them would change the answer, or (tool_choice "required" without
# tools) because they contradict the request: every "refused" row of docs/PARAMETERS.md.
# (response_format, structured_outputs, guided_json/regex/choice/grammar, grammar and tool
# calling are implemented: tests/e2e/test_structured_outputs.py,
# tests/e2e/test_client_libraries.py, tests/e2e/test_tool_calling.py.)
REFUSED = {
    "response_format": {"type": "sound"},
    "tool_choice": "required",
    "functions": [{"name": "f"}],
    "function_call": "auto",
    "audio": {"voice": "alloy", "format": "wav"},
    "prediction": {"type": "content", "content": "x"},
    "web_search_options": {},
    "reasoning_effort": "low",
    "verbosity": "low",
    "moderation": {"model": "m"},
    "modalities": ["text", "audio"],
    "guided_whitespace_pattern": " *",
    "continue_final_message": True,
}
# The same for /v1/completions' own refused parameters.
REFUSED_COMPLETIONS = {"suffix": "tail", "best_of": 2}
NO_OPS = {"user": "u1", "metadata": {"k": "v"}, "store": False, "service_tier": "auto",
          "safety_identifier": "s", "prompt_cache_key": "k", "parallel_tool_calls": False,
          "modalities": ["text"], "response_format": {"type": "text"}, "tool_choice": "none"}


def optional_params(typed_dict):
    """The parameters the openai package documents, less the required ones."""
    keys = set()
    for base in typed_dict.__mro__:
        keys |= set(getattr(base, "__annotations__", {}))
    return sorted(keys - set(typed_dict.__required_keys__))


class Strict(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = troupe_server()
        cls.srv.__enter__()
        cls.url = cls.srv.url
        cls.client = openai.OpenAI(base_url=cls.url + "/v1", api_key="none", max_retries=0)
        cls.model = cls.client.models.list().data[0].id

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def chat(self, **kw):
        return self.client.chat.completions.create(model=self.model, messages=MSG, max_tokens=1,
                                                   temperature=0, **kw)

    def test_models_retrieve(self):
        m = self.client.models.retrieve(self.model)
        self.assertEqual(m.id, self.model)
        self.assertEqual(m.object, "model")
        with self.assertRaises(openai.NotFoundError) as e:
            self.client.models.retrieve("no-such-model")
        self.assertEqual(e.exception.body["code"], "model_not_found")
        r = requests.get(self.url + "/v1/models/no-such-model", timeout=10)
        self.assertRegex(r.headers.get("x-request-id", ""), r"^[0-9a-f]{32}$")

    def test_unknown_field_is_openais_400(self):
        with self.assertRaises(openai.BadRequestError) as e:
            self.chat(extra_body={"foo": 1})
        self.assertEqual(e.exception.body["message"], "Unrecognized request argument supplied: foo")
        self.assertEqual(e.exception.body["type"], "invalid_request_error")
        self.assertIsNone(e.exception.body["param"])

    def test_every_refused_parameter_is_a_400_naming_it(self):
        for name, value in REFUSED.items():
            with self.subTest(name=name):
                with self.assertRaises(openai.BadRequestError) as e:
                    self.chat(extra_body={name: value})
                self.assertEqual(e.exception.body["param"], name)
                self.assertIn(name, e.exception.body["message"])
        for name, value in REFUSED_COMPLETIONS.items():
            with self.subTest(name=name):
                with self.assertRaises(openai.BadRequestError) as e:
                    self.client.completions.create(model=self.model, prompt="a", max_tokens=1,
                                                   extra_body={name: value})
                self.assertEqual(e.exception.body["param"], name)

    def test_unknown_keys_inside_messages_are_400s_naming_them(self):
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.chat.completions.create(
                model=self.model, max_tokens=1,
                messages=[{"role": "user", "content": "hi", "foo": 1}])
        self.assertEqual(e.exception.body["param"], "messages[0].foo")
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.chat.completions.create(
                model=self.model, max_tokens=1,
                messages=[{"role": "user", "content": [{"type": "text", "text": "hi", "x": 2}]}])
        self.assertEqual(e.exception.body["param"], "messages[0].content[0].x")
        # The keys OpenAI documents for the role pass.
        r = self.client.chat.completions.create(
            model=self.model, max_tokens=1, temperature=0,
            messages=[{"role": "system", "content": "Be brief.", "name": "rules"},
                      {"role": "user", "content": "hi", "name": "alice"}])
        self.assertEqual(len(r.choices), 1)

    def test_documented_no_ops_are_accepted(self):
        r = self.chat(**{k: v for k, v in NO_OPS.items() if k not in ("modalities", "metadata",
                                                                       "store")},
                      metadata=NO_OPS["metadata"], store=False, modalities=["text"])
        self.assertEqual(len(r.choices), 1)

    def test_every_documented_parameter_is_known(self):
        # null is every optional parameter's "not given": none may be called unrecognized.
        for params, path, base in (
                (chat_create_params.CompletionCreateParamsBase, "/v1/chat/completions",
                 {"messages": MSG}),
                (completion_create_params.CompletionCreateParamsBase, "/v1/completions",
                 {"prompt": "a"})):
            for name in optional_params(params):
                with self.subTest(path=path, name=name):
                    # Bound the answer even when max_tokens itself is the null one: a null
                    # max_tokens on chat means "fill the context", at temperature 1 thousands of
                    # tokens -- over a minute on a loaded machine.
                    bound = ("max_completion_tokens" if name == "max_tokens" and "chat" in path
                             else "max_tokens")
                    body = dict(base, **{bound: 1})
                    body[name] = None
                    r = requests.post(self.url + path, json=body, timeout=60)
                    self.assertNotIn("Unrecognized", r.text)
                    self.assertIn(r.status_code, (200, 400), r.text)

    def test_cached_tokens_and_fingerprint(self):
        # A prompt no other request shares a block with (chat would share the template's
        # default system turn), long enough for several 16-token KV blocks.
        prompt = f"Note {uuid.uuid4().hex}: " + "the river runs past the old stone mill. " * 12

        def complete(**kw):
            return self.client.completions.create(model=self.model, prompt=prompt, max_tokens=1,
                                                  temperature=0, **kw)
        first, second = complete(), complete()
        self.assertEqual(first.usage.prompt_tokens_details.cached_tokens, 0)
        cached = second.usage.prompt_tokens_details.cached_tokens
        # Every full block but the one holding the last prompt token (it is recomputed).
        self.assertGreaterEqual(cached, first.usage.prompt_tokens - 16)
        self.assertLess(cached, first.usage.prompt_tokens)
        usage = [c.usage for c in complete(stream=True, stream_options={"include_usage": True})
                 if c.usage]
        self.assertEqual(usage[-1].prompt_tokens_details.cached_tokens, cached)
        self.assertRegex(first.system_fingerprint or "", r"^fp_[0-9a-f]{16}$")
        self.assertEqual(first.system_fingerprint, second.system_fingerprint)
        self.assertEqual(self.chat().system_fingerprint, first.system_fingerprint)

    def test_cors_is_off_by_default(self):
        r = requests.options(self.url + "/v1/chat/completions", timeout=10, headers={
            "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status_code, 405)
        self.assertNotIn("access-control-allow-origin", r.headers)
        g = requests.get(self.url + "/v1/models", headers={"Origin": "https://app.example.com"},
                         timeout=10)
        self.assertNotIn("access-control-allow-origin", g.headers)


class Switches(unittest.TestCase):
    """server.ignore_unknown_fields = true and server.cors_origins, on one server."""

    def test_unknown_fields_ignored_and_cors_answered(self):
        cfg = harness.DEFAULT_CONFIG.replace(
            "[server]\n", '[server]\nignore_unknown_fields = true\n'
                          'cors_origins = ["https://app.example.com"]\n')
        with troupe_server(cfg) as srv:
            client = openai.OpenAI(base_url=srv.url + "/v1", api_key="none", max_retries=0)
            model = client.models.list().data[0].id
            r = client.chat.completions.create(model=model, messages=MSG, max_tokens=1,
                                               extra_body={"foo": 1, "bar": [2]})
            self.assertEqual(len(r.choices), 1)
            r = client.chat.completions.create(model=model, max_tokens=1, messages=[
                {"role": "user", "content": "hi", "foo": 1}])
            self.assertEqual(len(r.choices), 1)
            # Refused parameters stay refused: the switch is about unknown ones only.
            with self.assertRaises(openai.BadRequestError):
                client.chat.completions.create(model=model, messages=MSG, max_tokens=1,
                                               tool_choice="required")
            pre = requests.options(srv.url + "/v1/chat/completions", timeout=10, headers={
                "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type"})
            self.assertEqual(pre.status_code, 204)
            self.assertEqual(pre.headers["access-control-allow-origin"], "https://app.example.com")
            self.assertIn("POST", pre.headers["access-control-allow-methods"])
            self.assertIn("authorization", pre.headers["access-control-allow-headers"])
            g = requests.get(srv.url + "/v1/models", timeout=10,
                             headers={"Origin": "https://app.example.com"})
            self.assertEqual(g.headers["access-control-allow-origin"], "https://app.example.com")
            other = requests.options(srv.url + "/v1/chat/completions", timeout=10, headers={
                "Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
            self.assertNotIn("access-control-allow-origin", other.headers)


if __name__ == "__main__":
    harness.main()
