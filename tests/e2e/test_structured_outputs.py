"""Structured outputs from outside (issue 11 point 3): response_format json_schema / json_object
and vLLM's guided_* through the openai package, parse() with a pydantic model, and the 400s that
name response_format. The outputs must parse and validate every time, sampled or greedy."""
import json
import unittest

import openai
import pydantic
import requests

import harness
from harness import troupe_server


class Person(pydantic.BaseModel):
    name: str
    age: int


PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "pets": {"type": "array", "items": {"enum": ["cat", "dog", "fish"]}, "maxItems": 3},
    },
    "required": ["name", "age", "pets"],
    "additionalProperties": False,
}


class StructuredOutputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = troupe_server()
        cls.srv.__enter__()
        cls.client = openai.OpenAI(base_url=cls.srv.url + "/v1", api_key="none")
        cls.model = cls.client.models.list().data[0].id

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def chat(self, **kw):
        return self.client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": "Describe a person as JSON."}], **kw)

    def test_json_schema_outputs_validate_sampled_and_greedy(self):
        for temperature, n, seed in [(0, 1, 0), (1.0, 4, 11), (1.3, 4, 12)]:
            r = self.chat(max_tokens=120, temperature=temperature, n=n, seed=seed,
                          response_format={"type": "json_schema", "json_schema": {
                              "name": "person", "schema": PERSON_SCHEMA, "strict": True}})
            for c in r.choices:
                self.assertEqual(c.finish_reason, "stop", c.message.content)
                v = json.loads(c.message.content)
                self.assertEqual(list(v), ["name", "age", "pets"])  # strict: order as given
                self.assertIsInstance(v["name"], str)
                self.assertLessEqual(len(v["name"]), 20)
                self.assertTrue(isinstance(v["age"], int) and 0 <= v["age"] <= 120, v)
                self.assertLessEqual(len(v["pets"]), 3)
                self.assertTrue(set(v["pets"]) <= {"cat", "dog", "fish"}, v)

    def test_parse_with_a_pydantic_model(self):
        r = self.client.beta.chat.completions.parse(
            model=self.model, messages=[{"role": "user", "content": "A person named Ann, aged 31."}],
            response_format=Person, max_tokens=60, temperature=0)
        self.assertIsInstance(r.choices[0].message.parsed, Person)

    def test_json_object_is_an_object(self):
        r = self.client.chat.completions.create(
            model=self.model, max_tokens=300, temperature=0, response_format={"type": "json_object"},
            messages=[{"role": "user", "content": "Reply with a JSON object with the key ok set to true."}])
        c = r.choices[0]
        self.assertEqual(c.finish_reason, "stop", c.message.content)
        self.assertIsInstance(json.loads(c.message.content), dict)

    def test_guided_choice_and_grammar(self):
        r = requests.post(self.srv.url + "/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "Is the sky blue?"}], "max_tokens": 5,
            "temperature": 1.0, "n": 4, "guided_choice": ["yes", "no"]}, timeout=60)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertTrue(all(c["message"]["content"] in ("yes", "no") for c in r.json()["choices"]))
        r = requests.post(self.srv.url + "/v1/completions", json={
            "prompt": "Numbers:", "max_tokens": 30, "temperature": 1.0, "seed": 5,
            "guided_grammar": 'root ::= [0-9]{1,3} ("," [0-9]{1,3}){2}'}, timeout=60)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertRegex(r.json()["choices"][0]["text"], r"^\d{1,3},\d{1,3},\d{1,3}$")

    def test_invalid_formats_get_400_naming_response_format(self):
        cases = [
            ({"response_format": {"type": "sound"}}, "response_format", "sound"),
            ({"response_format": {"type": "json_schema", "json_schema": {
                "name": "x", "schema": {"type": "string", "pattern": "(a)\\1"}}}},
             "response_format", "/pattern: regex: at offset 3: backreferences are not supported"),
            ({"guided_grammar": "root ::= (\"a\""}, "guided_grammar", "expected ')'"),
            ({"guided_regex": "a(?=b)"}, "guided_regex", "lookaround is not supported"),
            ({"response_format": {"type": "json_object"}, "guided_choice": ["a"]},
             "guided_choice", "only one of"),
            ({"guided_choice": ["a"], "ignore_eos": True}, "ignore_eos", "cannot be combined"),
        ]
        for extra, param, text in cases:
            body = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 5, **extra}
            r = requests.post(self.srv.url + "/v1/chat/completions", json=body, timeout=30)
            self.assertEqual(r.status_code, 400, (extra, r.text))
            err = r.json()["error"]
            self.assertEqual(err["param"], param, err)
            self.assertIn(text, err["message"])


if __name__ == "__main__":
    harness.main()
