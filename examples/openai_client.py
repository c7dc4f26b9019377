"""Shows the official `openai` Python package talking to `make serve`: a chat completion, the same
question streamed token by token, and a completion with a stop string.

Usage: python examples/openai_client.py [BASE_URL]   (default http://127.0.0.1:8000)
Needs `pip install openai` (the e2e tests' venv .venv-test/ has it).
"""
import os
import sys

from openai import OpenAI

base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TROUPE_URL", "http://127.0.0.1:8000")
client = OpenAI(base_url=base + "/v1", api_key="unused")
model = client.models.list().data[0].id
question = [{"role": "user", "content": "What is the capital of France?"}]

reply = client.chat.completions.create(model=model, messages=question, max_tokens=32, temperature=0)
print("chat:", reply.choices[0].message.content)
print("usage:", reply.usage.prompt_tokens, "prompt +", reply.usage.completion_tokens, "completion tokens")

print("streamed: ", end="", flush=True)
for chunk in client.chat.completions.create(model=model, messages=question, max_tokens=32,
                                            temperature=0, stream=True):
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
print()

done = client.completions.create(model=model, prompt="1, 2, 3, 4,", max_tokens=20, temperature=0,
                                 stop=[" 7"])
print("completion with stop=[' 7']:", repr(done.choices[0].text))
print("finish_reason:", done.choices[0].finish_reason)
