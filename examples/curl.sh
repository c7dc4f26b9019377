#!/usr/bin/env bash
# Shows the OpenAI-compatible HTTP API of `make serve` with plain curl: list the model, a chat
# completion, a streamed completion (Server-Sent Events ending in `data: [DONE]`) and an error.
# Usage: examples/curl.sh [BASE_URL]   (default http://127.0.0.1:8000)
set -euo pipefail
BASE=${1:-${TROUPE_URL:-http://127.0.0.1:8000}}

echo "== GET /v1/models"
curl -sS "$BASE/v1/models"
echo

echo "== POST /v1/chat/completions"
curl -sS "$BASE/v1/chat/completions" -H 'Content-Type: application/json' -d '{
  "messages": [{"role": "user", "content": "Name three colors."}],
  "max_tokens": 24, "temperature": 0
}'
echo

echo "== POST /v1/completions, streamed"
curl -sS -N "$BASE/v1/completions" -H 'Content-Type: application/json' -d '{
  "prompt": "The three primary colors are", "max_tokens": 12, "temperature": 0, "stream": true
}'

echo "== a bad parameter: 400 naming it"
curl -sS "$BASE/v1/completions" -H 'Content-Type: application/json' \
  -d '{"prompt": "hi", "temperature": 7}'
echo
