"""Structured outputs through the client libraries people use (issue 11 point 7): LangChain's
ChatOpenAI.with_structured_output (json_schema with a pydantic model, json_mode), litellm's
JSON mode and json_schema, and vLLM's guided_regex / structured_outputs through the openai
package's extra_body. Every output is parsed and validated by the client's own machinery (and
checked again here), so a server that ignored the constraint would fail, not pass by luck.

Arguments: <troupe binary> <model.gguf>, as the other e2e files."""
import json
import os
import re
import unittest
import warnings

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no internet: the bundled map
# litellm's TypedDicts make pydantic warn about ReadOnly items, once per type: noise here.
warnings.filterwarnings("ignore", message=".*ReadOnly.*", category=UserWarning)

import litellm
import openai
import pydantic
from langchain_openai import ChatOpenAI

import harness
from harness import troupe_server


class City(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=24)
    population: int = pydantic.Field(ge=0, le=50_000_000)
    coastal: bool


CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "population": {"type": "integer", "minimum": 0, "maximum": 50000000},
        "coastal": {"type": "boolean"},
    },
    "required": ["name", "population", "coastal"],
    "additionalProperties": False,
}

PROMPT = "Describe one city as JSON."
PHONE = r"\(\d{3}\) \d{3}-\d{4}"


class ClientLibraries(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = troupe_server()
        cls.srv.__enter__()
        cls.client = openai.OpenAI(base_url=cls.srv.url + "/v1", api_key="x", max_retries=0)
        cls.model = cls.client.models.list().data[0].id

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def langchain(self, **kw):
        return ChatOpenAI(base_url=self.srv.url + "/v1", api_key="x", model=self.model,
                          max_retries=0, timeout=120, max_tokens=80, **kw)

    def test_langchain_json_schema_returns_a_validated_model(self):
        for temperature, seed in [(0, 0), (1.0, 7)]:
            llm = self.langchain(temperature=temperature, seed=seed)
            city = llm.with_structured_output(City, method="json_schema").invoke(PROMPT)
            self.assertIsInstance(city, City)  # LangChain parsed and validated it
            self.assertLessEqual(len(city.name), 24)
            self.assertTrue(0 <= city.population <= 50_000_000)

    def test_langchain_json_mode_returns_an_object(self):
        llm = self.langchain(temperature=1.0, seed=3)
        out = llm.with_structured_output(CITY_SCHEMA, method="json_mode").invoke(
            PROMPT + " Keys: name, population, coastal.")
        self.assertIsInstance(out, dict)  # the JSON parser took the whole answer

    def test_litellm_json_mode_and_json_schema(self):
        common = dict(model=f"openai/{self.model}", api_base=self.srv.url + "/v1", api_key="x",
                      messages=[{"role": "user", "content": PROMPT}], max_tokens=80,
                      temperature=1.0, seed=5, timeout=120)
        r = litellm.completion(response_format={"type": "json_object"}, **common)
        self.assertEqual(r.choices[0].finish_reason, "stop")
        self.assertIsInstance(json.loads(r.choices[0].message.content), dict)
        r = litellm.completion(response_format={"type": "json_schema", "json_schema": {
            "name": "city", "schema": CITY_SCHEMA, "strict": True}}, **common)
        self.assertEqual(r.choices[0].finish_reason, "stop")
        City.model_validate_json(r.choices[0].message.content)

    def test_guided_regex_and_structured_outputs_through_extra_body(self):
        def chat(extra, n=1, max_tokens=40):
            r = self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": "Give a phone number."}],
                max_tokens=max_tokens, temperature=1.0, seed=9, n=n, extra_body=extra)
            for c in r.choices:
                self.assertEqual(c.finish_reason, "stop", c.message.content)
            return [c.message.content for c in r.choices]

        for text in chat({"guided_regex": PHONE}, n=3):
            self.assertRegex(text, "^" + PHONE + "$")
        for text in chat({"structured_outputs": {"regex": PHONE}}, n=2):
            self.assertTrue(re.fullmatch(PHONE, text), text)
        for text in chat({"structured_outputs": {"choice": ["red", "green", "blue"]}}, n=3):
            self.assertIn(text, ("red", "green", "blue"))
        [text] = chat({"structured_outputs": {"json": CITY_SCHEMA}}, max_tokens=120)
        City.model_validate_json(text)
        # A JSON Schema string pattern constrains the decoded value.
        [text] = chat({"guided_json": {"type": "object", "properties": {
            "phone": {"type": "string", "pattern": PHONE}}, "required": ["phone"]}}, max_tokens=80)
        self.assertTrue(re.fullmatch(PHONE, json.loads(text)["phone"]), text)
        with self.assertRaises(openai.BadRequestError) as e:
            chat({"structured_outputs": {"regex": "(a)\\1"}})
        self.assertEqual(e.exception.body["param"], "structured_outputs.regex")
        self.assertIn("backreferences", e.exception.body["message"])


if __name__ == "__main__":
    harness.main()
