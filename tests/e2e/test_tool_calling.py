"""Tool calling from outside (issue 11 point 4): the official openai client's two-turn tool loop,
named and required choices (valid calls every time: the grammar makes them), streamed tool-call
deltas that accumulate into the non-streamed call, parallel calls, `auto` output parsed into
content and calls, LangChain's bind_tools and with_structured_output(method="function_calling"),
and a 400 naming the parameter for every refused tool-related value.

The default model (SmolLM2-135M) is weak: with `auto` it rarely calls a tool on its own, so the
auto tests force its words with a grammar (guided_grammar) and check how they are parsed.

Usage: test_tool_calling.py <troupe> <model.gguf>"""
import json
import unittest

import openai
import pydantic
import requests

import harness
from harness import troupe_server

ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two integers.",
    "parameters": {"type": "object", "properties": {
        "a": {"type": "integer", "minimum": -1000, "maximum": 1000},
        "b": {"type": "integer", "minimum": -1000, "maximum": 1000}},
        "required": ["a", "b"], "additionalProperties": False}}}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city now.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 24},
        "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"]}}}
TOOLS = [ADD, WEATHER]
ASK = [{"role": "user", "content": "What is 2 plus 3? Use the add tool."}]


def check_call(test, name, arguments):
    """A call the schema of its tool accepts: the arguments are a JSON object of the right
    keys, types, bounds and enum values."""
    args = json.loads(arguments)
    if name == "add":
        test.assertEqual(set(args), {"a", "b"})
        for k in ("a", "b"):
            test.assertIsInstance(args[k], int)
            test.assertTrue(-1000 <= args[k] <= 1000)
    else:
        test.assertEqual(name, "get_weather")
        test.assertIsInstance(args["city"], str)
        test.assertLessEqual(len(args["city"]), 24)
        test.assertIn(args["unit"], ("celsius", "fahrenheit"))
        test.assertTrue(set(args) <= {"city", "unit"})
    return args


class ToolCalling(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = troupe_server()
        cls.srv.__enter__()
        cls.client = openai.OpenAI(base_url=cls.srv.url + "/v1", api_key="none", max_retries=0)
        cls.model = cls.client.models.list().data[0].id

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def chat(self, **kw):
        kw.setdefault("max_tokens", 60)
        return self.client.chat.completions.create(model=self.model, **kw)

    def test_two_turn_tool_loop(self):
        r = self.chat(messages=ASK, tools=TOOLS, tool_choice="required", parallel_tool_calls=False)
        choice = r.choices[0]
        self.assertEqual(choice.finish_reason, "tool_calls")
        self.assertIsNone(choice.message.content)
        self.assertEqual(len(choice.message.tool_calls), 1)
        call = choice.message.tool_calls[0]
        self.assertTrue(call.id.startswith("call_"))
        self.assertEqual(call.type, "function")
        args = check_call(self, call.function.name, call.function.arguments)
        result = str(sum(args.values())) if call.function.name == "add" else "21 degrees"

        # The client sends the call and its result back, as the openai docs' loop does.
        history = ASK + [choice.message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": result}]
        r2 = self.chat(messages=history, tools=TOOLS, max_tokens=24)
        final = r2.choices[0]
        self.assertIn(final.finish_reason, ("stop", "length", "tool_calls"))
        self.assertNotIn("<tool_call>", final.message.content or "")
        for c in final.message.tool_calls or []:
            check_call(self, c.function.name, c.function.arguments)
        self.assertGreater(r2.usage.prompt_tokens, r.usage.prompt_tokens)

        # The model read the call and the result where its convention puts them.
        ids = requests.post(self.srv.url + "/tokenize", json={"messages": history},
                            timeout=30).json()["tokens"]
        prompt = requests.post(self.srv.url + "/detokenize", json={"tokens": ids},
                               timeout=30).json()["prompt"]
        self.assertIn(f'<tool_call>\n{{"name": "{call.function.name}", "arguments": ', prompt)
        self.assertIn(f"<|im_start|>user\n<tool_response>\n{result}\n</tool_response><|im_end|>",
                      prompt)

    def test_named_choice_is_a_valid_call_every_time(self):
        for seed in range(6):
            with self.subTest(seed=seed):
                r = self.chat(messages=[{"role": "user", "content": "Weather in Oslo?"}],
                              tools=TOOLS, temperature=1.0, seed=seed,
                              tool_choice={"type": "function", "function": {"name": "get_weather"}})
                c = r.choices[0]
                self.assertEqual(c.finish_reason, "tool_calls")
                self.assertEqual([t.function.name for t in c.message.tool_calls], ["get_weather"])
                check_call(self, "get_weather", c.message.tool_calls[0].function.arguments)

    def test_streamed_deltas_accumulate_into_the_same_call(self):
        kw = dict(messages=ASK, tools=TOOLS, tool_choice="required", parallel_tool_calls=False,
                  temperature=0, seed=3)
        whole = self.chat(**kw).choices[0].message.tool_calls[0]
        names, args, ids, finish, pieces = {}, {}, {}, None, 0
        for chunk in self.chat(stream=True, **kw):
            for ch in chunk.choices:
                self.assertFalse(ch.delta.content)  # nothing but the call: no markup leaks
                for d in ch.delta.tool_calls or []:
                    if d.id:
                        ids[d.index] = d.id
                        names[d.index] = d.function.name
                    args[d.index] = args.get(d.index, "") + (d.function.arguments or "")
                    pieces += bool(d.function.arguments)
                finish = ch.finish_reason or finish
        self.assertEqual(finish, "tool_calls")
        self.assertEqual(list(names.values()), [whole.function.name])
        self.assertEqual(json.loads(args[0]), json.loads(whole.function.arguments))
        self.assertTrue(ids[0].startswith("call_"))
        self.assertGreater(pieces, 1)  # the arguments stream as they are written
        # The openai package's own stream helper accumulates them the same way.
        with self.client.chat.completions.stream(model=self.model, max_tokens=60, **kw) as s:
            final = s.get_final_completion().choices[0]
        self.assertEqual(final.finish_reason, "tool_calls")
        self.assertEqual(final.message.tool_calls[0].function.name, whole.function.name)
        self.assertEqual(json.loads(final.message.tool_calls[0].function.arguments),
                         json.loads(whole.function.arguments))

    def test_parallel_tool_calls(self):
        ask = [{"role": "user", "content": "Add 1 and 2, and tell me the weather in Rome."}]
        r = self.chat(messages=ask, tools=TOOLS, tool_choice="required", max_tokens=320,
                      parallel_tool_calls=True, temperature=0.7, seed=5)
        c = r.choices[0]
        self.assertEqual(c.finish_reason, "tool_calls")
        self.assertTrue(1 <= len(c.message.tool_calls) <= 8)
        for t in c.message.tool_calls:
            check_call(self, t.function.name, t.function.arguments)
        self.assertEqual(len({t.id for t in c.message.tool_calls}), len(c.message.tool_calls))

    def test_auto_parses_what_the_model_writes(self):
        # The model's words forced by a grammar: text, then a call in the chatml convention.
        words = 'Let me add.\n<tool_call>\n{"name": "add", "arguments": {"a": 4, "b": 5}}\n</tool_call>'
        grammar = "root ::= " + json.dumps(words)
        r = self.chat(messages=ASK, tools=TOOLS, extra_body={"guided_grammar": grammar})
        c = r.choices[0]
        self.assertEqual(c.finish_reason, "tool_calls")
        self.assertEqual(c.message.content, "Let me add.")
        self.assertEqual(c.message.tool_calls[0].function.name, "add")
        self.assertEqual(json.loads(c.message.tool_calls[0].function.arguments), {"a": 4, "b": 5})
        chunks = list(self.chat(messages=ASK, tools=TOOLS, stream=True,
                                extra_body={"guided_grammar": grammar}))
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        self.assertEqual(text, "Let me add.")
        self.assertEqual(chunks[-1].choices[0].finish_reason, "tool_calls")
        # A call to a function that is not among the tools is no call: it stays the model's text.
        other = words.replace('"add"', '"rm"')
        r = self.chat(messages=ASK, tools=TOOLS,
                      extra_body={"guided_grammar": "root ::= " + json.dumps(other)})
        self.assertEqual(r.choices[0].finish_reason, "stop")
        self.assertIsNone(r.choices[0].message.tool_calls)
        self.assertEqual(r.choices[0].message.content, other)
        # A plain answer is plain content, whatever the tools.
        r = self.chat(messages=ASK, tools=TOOLS, extra_body={"guided_choice": ["Five."]})
        self.assertEqual((r.choices[0].message.content, r.choices[0].finish_reason), ("Five.", "stop"))

    def test_langchain_bind_tools_and_structured_output(self):
        from langchain_core.tools import tool
        from langchain_openai import ChatOpenAI

        @tool
        def multiply(a: int, b: int) -> int:
            """Multiply two integers."""
            return a * b

        llm = ChatOpenAI(base_url=self.srv.url + "/v1", api_key="x", model=self.model,
                         max_tokens=60, max_retries=0)
        for choice in ("multiply", "any"):
            with self.subTest(tool_choice=choice):
                ai = llm.bind_tools([multiply], tool_choice=choice,
                                    parallel_tool_calls=False).invoke("What is 6 times 7?")
                self.assertEqual(len(ai.tool_calls), 1)
                call = ai.tool_calls[0]
                self.assertEqual(call["name"], "multiply")
                self.assertEqual(set(call["args"]), {"a", "b"})
                self.assertTrue(all(isinstance(v, int) for v in call["args"].values()))
                self.assertEqual(multiply.invoke(call["args"]), call["args"]["a"] * call["args"]["b"])
        # LangChain's own loop: the AIMessage and a ToolMessage go back; the answer is a message.
        from langchain_core.messages import HumanMessage, ToolMessage
        history = [HumanMessage("What is 6 times 7?"), ai,
                   ToolMessage(str(multiply.invoke(call["args"])), tool_call_id=call["id"])]
        answer = llm.bind_tools([multiply]).bind(max_tokens=16).invoke(history)
        self.assertIsInstance(answer.content, str)
        self.assertNotIn("<tool_call>", answer.content)

        class Person(pydantic.BaseModel):
            """A person mentioned in the text."""
            name: str = pydantic.Field(max_length=20)
            age: int = pydantic.Field(ge=0, le=120)

        for seed in range(3):
            p = llm.with_structured_output(Person, method="function_calling").bind(
                seed=seed).invoke("Alice is 30 years old.")
            self.assertIsInstance(p, Person)

    def test_refused_tool_parameters_are_400s_naming_them(self):
        bad_schema = {"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"x": {"type": "array", "uniqueItems": True}}}}}
        tool_msg = [{"role": "user", "content": "x"},
                    {"role": "tool", "content": "3"}]
        bad_args = [{"role": "user", "content": "x"},
                    {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "c1", "type": "function",
                         "function": {"name": "add", "arguments": "{not json"}}]}]
        cases = [
            (dict(tools=[{"type": "function", "function": {"name": "no spaces"}}]),
             "tools[0].function.name"),
            (dict(tools=[{"type": "code", "function": {"name": "f"}}]), "tools[0].type"),
            (dict(tools=[bad_schema]), "tools[0].function.parameters"),
            (dict(tools=[ADD, ADD]), "tools[1].function.name"),
            (dict(tool_choice="required"), "tool_choice"),
            (dict(tools=TOOLS, tool_choice="sometimes"), "tool_choice"),
            (dict(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "rm"}}),
             "tool_choice"),
            (dict(tools=TOOLS, tool_choice="required", response_format={"type": "json_object"}),
             "tool_choice"),
            (dict(tools=TOOLS, extra_body={"parallel_tool_calls": "yes"}), "parallel_tool_calls"),
            (dict(extra_body={"functions": [{"name": "f"}]}), "functions"),
            (dict(extra_body={"function_call": "auto"}), "function_call"),
            (dict(messages=tool_msg), "messages[1].tool_call_id"),
            (dict(messages=bad_args), "messages[1].tool_calls[0].function.arguments"),
        ]
        for kw, param in cases:
            with self.subTest(param=param, kw=kw):
                kw.setdefault("messages", ASK)
                with self.assertRaises(openai.BadRequestError) as e:
                    self.chat(max_tokens=1, **kw)
                self.assertEqual(e.exception.body["param"], param)


class WithoutToolConvention(unittest.TestCase):
    def test_a_family_without_tools_refuses_them_naming_tools(self):
        cfg = harness.DEFAULT_CONFIG + '\n[model]\nchat_template = "llama-3"\n'
        with troupe_server(cfg) as srv:
            client = openai.OpenAI(base_url=srv.url + "/v1", api_key="none", max_retries=0)
            model = client.models.list().data[0].id
            with self.assertRaises(openai.BadRequestError) as e:
                client.chat.completions.create(model=model, messages=ASK, tools=TOOLS,
                                               max_tokens=1)
            self.assertEqual(e.exception.body["param"], "tools")
            self.assertIn("llama-3", e.exception.body["message"])
            ok = client.chat.completions.create(model=model, messages=ASK, max_tokens=1)
            self.assertEqual(len(ok.choices), 1)


if __name__ == "__main__":
    harness.main()
