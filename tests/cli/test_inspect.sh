#!/usr/bin/env bash
# troupe inspect on the default model (text and --json), and on broken files: exit status 1, the
# file's path and the fault on stderr, never a crash.
# Usage: bash test_inspect.sh <path-to-troupe> <model-path>
set -euo pipefail
troupe="$1"
model="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }

[[ -f "$model" ]] || fail "default model missing at $model: run make model"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Human-readable output names the architecture, hyperparameters, tokenizer and tensors.
"$troupe" inspect "$model" >"$tmp/out.txt" || fail "inspect exited $?"
for want in "architecture  llama" "runnable      yes (llama)" "n_layer 30" "n_head_kv 3" \
            "rope_freq_base 100000" 'pre "smollm"' "merges 48900" 'bos 1 "<|im_start|>"' \
            "chat template yes" "tensors (272," "token_embd.weight" "blk.29.ffn_down.weight"; do
  grep -qF -- "$want" "$tmp/out.txt" || fail "text output lacks '$want'"
done

# --json is one valid JSON object with the same facts.
"$troupe" inspect "$model" --json >"$tmp/out.json" || fail "inspect --json exited $?"
python3 -m json.tool "$tmp/out.json" >/dev/null || fail "--json output is not valid JSON"
python3 - "$tmp/out.json" <<'PY' || fail "--json facts differ"
import json, sys
d = json.load(open(sys.argv[1]))
h = d["hparams"]
assert d["architecture"] == "llama" and d["runnable"] is True, d["architecture"]
assert (h["n_vocab"], h["n_embd"], h["n_layer"], h["n_ff"], h["n_head"], h["n_head_kv"],
        h["head_dim"], h["n_ctx_train"]) == (49152, 576, 30, 1536, 9, 3, 64, 8192), h
assert h["rope_freq_base"] == 100000 and h["rms_eps"] == 1e-5, h
t = d["tokenizer"]
assert t["model"] == "gpt2" and t["pre"] == "smollm" and t["vocab_size"] == 49152, t
assert t["bos_token"] == "<|im_start|>" and t["eos_token"] == "<|im_end|>", t
assert t["chat_template"] is True and t["chat_template_bytes"] > 0, t
assert len(d["tensors"]) == 272, len(d["tensors"])
te = next(x for x in d["tensors"] if x["name"] == "token_embd.weight")
assert te["type"] == "Q8_0" and te["shape"] == [576, 49152] and te["bytes"] == 576 // 32 * 34 * 49152
assert sum(x["bytes"] for x in d["tensors"]) == d["tensor_bytes"] <= d["file_bytes"]
PY

# A valid GGUF that troupe cannot run (not llama, a Q4_K tensor) is still listed, with the reason.
python3 - "$tmp/other.gguf" <<'PY'
import struct, sys
def s(b): return struct.pack("<Q", len(b)) + b
kv = s(b"general.architecture") + struct.pack("<I", 8) + s(b"mamba")
info = s(b"blk.0.ffn_up.weight") + struct.pack("<IQQIQ", 2, 256, 2, 12, 0)  # Q4_K, 2 rows
head = b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + kv + info
head += b"\0" * (-len(head) % 32)
open(sys.argv[1], "wb").write(head + b"\x01" * (2 * 144))
PY
"$troupe" inspect "$tmp/other.gguf" >"$tmp/other.txt" || fail "inspect of a non-llama file exited $?"
for want in "architecture  mamba" "runnable      no:" "architecture is 'mamba'" \
            "blk.0.ffn_up.weight" "Q4_K" "288"; do
  grep -qF -- "$want" "$tmp/other.txt" || fail "non-llama output lacks '$want'"
done
"$troupe" inspect "$tmp/other.gguf" --json | python3 -m json.tool >/dev/null \
  || fail "non-llama --json is not valid JSON"

# Broken files: truncated at several points, bad magic, empty, missing. Each must exit 1 (not
# crash: a signal gives >= 128) and name the file on stderr.
expect_error() {  # <file> <expected text in stderr>
  local rc=0
  "$troupe" inspect "$1" >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
  [[ $rc -eq 1 ]] || fail "inspect $1: exit status $rc, want 1 ($(cat "$tmp/stderr"))"
  grep -qF -- "$1" "$tmp/stderr" || fail "inspect $1: stderr does not name the file"
  grep -qF -- "$2" "$tmp/stderr" || fail "inspect $1: stderr lacks '$2': $(cat "$tmp/stderr")"
}
for n in 10 24 4000 500000 2000000 98000000; do
  head -c "$n" "$model" >"$tmp/trunc_$n.gguf"
done
expect_error "$tmp/trunc_10.gguf" "too short for a GGUF header"
expect_error "$tmp/trunc_24.gguf" "kv_count is 33"
expect_error "$tmp/trunc_4000.gguf" "bytes left in the file"
expect_error "$tmp/trunc_500000.gguf" "metadata key 'tokenizer.ggml.tokens'"
expect_error "$tmp/trunc_2000000.gguf" "past the end of the file"
expect_error "$tmp/trunc_98000000.gguf" "ends past the end of the file"
printf 'GGUX\3\0\0\0' >"$tmp/magic.gguf"
head -c 100 "$model" | tail -c 92 >>"$tmp/magic.gguf"
expect_error "$tmp/magic.gguf" "bad magic"
: >"$tmp/empty.gguf"
expect_error "$tmp/empty.gguf" "empty"
expect_error "$tmp/missing.gguf" "No such file"
echo "ok: inspect"
