#!/usr/bin/env bash
# troupe generate: only generated text on stdout (streamed), timing on stderr; greedy by default
# and therefore repeatable; --chat applies SmolLM2's template; a seed makes
# sampling repeatable; bad input is an error on stderr with exit status 1. The default arithmetic
# (fast) answers "Paris"; --arithmetic llama.cpp-exact gives llama.cpp's tokens exactly.
# Usage: bash test_generate.sh <path-to-troupe> <model-path>
set -euo pipefail
troupe="$1"
model="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }

[[ -f "$model" ]] || fail "default model missing at $model: run make model"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gen() { "$troupe" generate --model "$model" --threads 2 "$@"; }

# The default (fast) arithmetic keeps 16-bit activations, close enough to fp32 that the model
# gives its real answer; llama.cpp's 8-bit activations turn the same weights into "L'Étoile, ..."
# (below).
gen --chat --prompt "What is the capital of France?" --max-tokens 32 >"$tmp/fast.out" 2>"$tmp/fast.err" \
  || fail "chat generate exited $?: $(cat "$tmp/fast.err")"
grep -qx "The capital of France is Paris." "$tmp/fast.out" \
  || fail "fast arithmetic's chat answer: $(cat "$tmp/fast.out")"
gen --arithmetic fp32-reference --chat --prompt "What is the capital of France?" --max-tokens 32 \
  >"$tmp/ref.out" 2>/dev/null || fail "fp32-reference generate exited $?"
cmp -s "$tmp/fast.out" "$tmp/ref.out" || fail "fast and fp32-reference answers differ: $(cat "$tmp/ref.out")"
gen --arithmetic bogus --prompt hi >/dev/null 2>"$tmp/bad.err" && fail "bad --arithmetic accepted"
grep -q "fast, llama.cpp-exact, fp32-reference" "$tmp/bad.err" || fail "bad --arithmetic message: $(cat "$tmp/bad.err")"

# llama.cpp-exact: SmolLM2-135M at Q4_1 answers this question greedily with "L'Étoile, la Cité,
# ..." in llama.cpp. This mode computes llama.cpp's arithmetic bit for bit
# (kernels/cpu/ggml_arithmetic.hpp), so the 32 tokens must be exactly llama.cpp's recorded greedy
# continuation (tools/gen-logits-oracle, prompt chat_france), up to the end-of-turn token if
# llama.cpp stopped there.
gen --arithmetic llama.cpp-exact --chat --prompt "What is the capital of France?" --max-tokens 32 \
  >"$tmp/chat.out" 2>"$tmp/chat.err" || fail "chat generate exited $?: $(cat "$tmp/chat.err")"
[[ -s "$tmp/chat.out" ]] || fail "empty chat answer"
"$troupe" tokenize --model "$model" --no-special --text "$(cat "$tmp/chat.out")" >"$tmp/chat.ids" \
  || fail "could not tokenize the chat answer"
oracle="$(dirname "$0")/../data/engine/logits_oracle.json"
python3 - "$oracle" "$tmp/chat.ids" <<'PY' || fail "chat answer is not llama.cpp's: $(cat "$tmp/chat.out")"
import json, sys
prompt = next(p for p in json.load(open(sys.argv[1]))["prompts"] if p["name"] == "chat_france")
ours = json.load(open(sys.argv[2]))
want = prompt["continuation"][:32]
if 2 in want:  # <|im_end|>: generate stops before it
    want = want[:want.index(2)]
if ours != want:
    sys.exit(f"ours {ours}, llama.cpp {want}")
PY
grep -q "<|im_" "$tmp/chat.out" && fail "special tokens leaked to stdout: $(cat "$tmp/chat.out")"
grep -qE "prompt: [0-9]+ tokens .* tok/s.*decode: [0-9]+ tokens .* tok/s" "$tmp/chat.err" \
  || fail "no timing line on stderr: $(cat "$tmp/chat.err")"
grep -q "tok/s" "$tmp/chat.out" && fail "timing leaked to stdout"

# Greedy (the default) is deterministic, and --max-tokens bounds the output.
gen --prompt "The capital of France is" --max-tokens 12 >"$tmp/a.out" 2>"$tmp/a.err" || fail "exit $?"
gen --prompt "The capital of France is" --max-tokens 12 >"$tmp/b.out" 2>/dev/null || fail "exit $?"
cmp -s "$tmp/a.out" "$tmp/b.out" || fail "greedy runs differ"
grep -q "Paris" "$tmp/a.out" || fail "completion lacks 'Paris': $(cat "$tmp/a.out")"
grep -q "generated 12 tokens, finish: length" "$tmp/a.err" || fail "max-tokens not honoured: $(cat "$tmp/a.err")"

# Sampling with a seed repeats; different seeds (almost surely) differ over 40 tokens.
s() { gen --prompt "Once upon a time" --max-tokens 40 --temperature 1.0 --top-p 0.95 --seed "$1" 2>/dev/null; }
[[ "$(s 7)" == "$(s 7)" ]] || fail "same seed, different text"
[[ "$(s 7)" != "$(s 8)" ]] || fail "seeds 7 and 8 gave the same 40 tokens"

# Errors: unknown template family, bad parameter, missing file -> stderr, exit 1, nothing on stdout.
for args in "--model $model --chat --chat-template vicuna --prompt hi" \
            "--model $model --prompt hi --top-p 0" "--prompt hi --model /nonexistent.gguf"; do
  set +e
  # shellcheck disable=SC2086
  "$troupe" generate $args >"$tmp/e.out" 2>"$tmp/e.err"
  rc=$?
  set -e
  [[ $rc -eq 1 ]] || fail "'$args' exited $rc, expected 1"
  [[ -s "$tmp/e.out" ]] && fail "'$args' wrote to stdout"
  [[ -s "$tmp/e.err" ]] || fail "'$args' gave no error message"
done
echo "test_generate: ok"
