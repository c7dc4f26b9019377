#!/usr/bin/env bash
# troupe tokenize: the exact output form ("[id,id,...]" + newline) for strings of the committed
# llama.cpp oracle (tests/data/tokenizer/oracle.json), --no-special, and errors naming the file.
# Usage: bash test_tokenize.sh <path-to-troupe> <model-path>
set -euo pipefail
troupe="$1"
model="$2"
here="$(cd "$(dirname "$0")" && pwd)"
oracle="$here/../data/tokenizer/oracle.json"
fail() { echo "FAIL: $*" >&2; exit 1; }

[[ -f "$model" ]] || fail "default model missing at $model: run make model"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expected NAME FIELD: the oracle's ids for corpus case NAME, in troupe's output form.
expected() {
  python3 - "$oracle" "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
c = next(c for c in d["cases"] if c["name"] == sys.argv[2])
print("[" + ",".join(str(i) for i in c[sys.argv[3]]) + "]")
PY
}
# text NAME: the case's text (valid UTF-8 cases only).
text() {
  python3 - "$oracle" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
sys.stdout.write(next(c for c in d["cases"] if c["name"] == sys.argv[2])["text"])
PY
}

for name in prose_2 prose_0 specials_0 scripts_0 emoji_2 whitespace_30 contractions_1; do
  t="$(text "$name"; echo x)"; t="${t%x}"   # keep trailing newlines
  got="$("$troupe" tokenize --model "$model" --text "$t")" || fail "$name: exit $?"
  want="$(expected "$name" ids_special)"
  [[ "$got" == "$want" ]] || fail "$name: got $got, llama.cpp gives $want"
  got="$("$troupe" tokenize --model "$model" --text "$t" --no-special)" || fail "$name: exit $?"
  want="$(expected "$name" ids_plain)"
  [[ "$got" == "$want" ]] || fail "$name --no-special: got $got, llama.cpp gives $want"
done

# The exact bytes: one line, no spaces, newline at the end.
"$troupe" tokenize --model "$model" --text "The capital of France is" >"$tmp/out"
printf '[504,3575,282,4649,314]\n' | cmp -s - "$tmp/out" || fail "output form: $(od -c "$tmp/out" | head -3)"
"$troupe" tokenize --model "$model" --text "" >"$tmp/out"
printf '[]\n' | cmp -s - "$tmp/out" || fail "empty text should print []"

# Errors: exit 1, the file named on stderr, nothing on stdout.
set +e
"$troupe" tokenize --model "$tmp/missing.gguf" --text hi >"$tmp/out" 2>"$tmp/err"; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "missing file: exit $rc, want 1"
grep -qF "$tmp/missing.gguf" "$tmp/err" || fail "missing file: stderr does not name it: $(cat "$tmp/err")"
[[ ! -s "$tmp/out" ]] || fail "missing file: stdout not empty"
printf 'GGUF\x03\x00\x00\x00garbage' >"$tmp/bad.gguf"
set +e
"$troupe" tokenize --model "$tmp/bad.gguf" --text hi >"$tmp/out" 2>"$tmp/err"; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "bad GGUF: exit $rc, want 1"
grep -qF "$tmp/bad.gguf" "$tmp/err" || fail "bad GGUF: stderr does not name it: $(cat "$tmp/err")"
echo "test_tokenize: ok"
