#!/usr/bin/env bash
# Starts stree-server on 127.0.0.1 and checks it with curl: completions (plain and streamed) give
# the CLI's tokens, 8 concurrent clients, text prompts, 4xx answers for malformed JSON, oversize
# bodies and bad parameters (the server keeps serving), and a clean exit on SIGTERM.
# usage: server_test.sh STREE_SERVER STREE_CLI SOURCE_DIR
set -uo pipefail
server_bin=$1 cli=$2 src=$3
tmp=$(mktemp -d /tmp/stree-server-test-XXXXXX)
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
failures=0 checks=0
check() { checks=$((checks + 1)); }

port=$((20000 + RANDOM % 20000))
cat > "$tmp/engine.json" <<JSON
{"target": "$src/tests/fixtures/nemotron_h", "draft": "$src/tests/fixtures/llama", "drafter": "model",
 "tree": {"type": "static", "branching": [2, 1]}, "n_ctx": 2048,
 "server": {"host": "127.0.0.1", "port": $port, "pool": 4, "max_body_bytes": 4096, "max_tokens": 64,
            "tokenizer": "$src/tests/fixtures/server/tokenizer.json"}}
JSON
"$server_bin" --config "$tmp/engine.json" 2> "$tmp/server.log" &
pid=$!
url=http://127.0.0.1:$port
for i in $(seq 1 100); do
  curl -s "$url/health" > /dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$url/health" | grep -q '"status":"ok"' || { cat "$tmp/server.log"; echo "FAIL: server did not start"; exit 1; }

prompt=145,70,89,0,130,162,136,160
ids_json="[${prompt}]"
# the CLI's greedy tokens for the same prompt
expected=$("$cli" generate --backend cpu --model "$src/tests/fixtures/nemotron_h" --tokens $prompt --max-new 16 --greedy --ids 2>/dev/null | tr ' ' ',')

post() { curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$1" "$url/v1/completions"; }
token_ids() { python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["choices"][0]["token_ids"])))' "$1"; }

check; code=$(post "{\"prompt\": $ids_json, \"max_tokens\": 16}")
[ "$code" = 200 ] || fail "plain completion: HTTP $code $(cat "$tmp/body")"
got=$(token_ids "$tmp/body")
[ "$got" = "$expected" ] || fail "plain completion tokens $got != CLI $expected"

check; curl -sN -H 'Content-Type: application/json' --data-binary "{\"prompt\": $ids_json, \"max_tokens\": 16, \"stream\": true}" \
  "$url/v1/completions" > "$tmp/sse"
streamed=$(python3 - "$tmp/sse" <<'PY'
import json, sys
ids, done = [], False
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("data: "): continue
    data = line[6:]
    if data == "[DONE]": done = True; continue
    ids += json.loads(data)["choices"][0]["token_ids"]
print(",".join(map(str, ids)) + ("" if done else " (no [DONE])"))
PY
)
[ "$streamed" = "$expected" ] || fail "streamed tokens $streamed != CLI $expected"

check; code=$(post '{"prompt": "hello world", "max_tokens": 8, "temperature": 0.8, "seed": 3}')
[ "$code" = 200 ] || fail "text prompt: HTTP $code $(cat "$tmp/body")"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); assert b["usage"]["prompt_tokens"] == 11, b' "$tmp/body" \
  || fail "text prompt usage"

check; code=$(post "{\"prompt\": $ids_json, \"max_tokens\": 16, \"stop\": [\"zzzz-never\"]}")
[ "$code" = 200 ] || fail "stop list: HTTP $code"

# 8 concurrent clients: all answer 200 with the greedy tokens
check
for i in $(seq 1 8); do
  curl -s -o "$tmp/c$i" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "{\"prompt\": $ids_json, \"max_tokens\": 16}" "$url/v1/completions" > "$tmp/code$i" &
done
wait $(jobs -p | grep -v "^$pid\$") 2>/dev/null
for i in $(seq 1 8); do
  [ "$(cat "$tmp/code$i")" = 200 ] || fail "concurrent client $i: HTTP $(cat "$tmp/code$i")"
  [ "$(token_ids "$tmp/c$i" 2>/dev/null)" = "$expected" ] || fail "concurrent client $i: tokens differ"
done

# malformed requests: 4xx with a message, and the server keeps serving
expect_code() { # code body needle
  check
  local code
  code=$(post "$2")
  [ "$code" = "$1" ] || fail "expected HTTP $1 for $2, got $code: $(cat "$tmp/body")"
  grep -q "$3" "$tmp/body" || fail "message for $2 lacks '$3': $(cat "$tmp/body")"
}
expect_code 400 '{"prompt": [1, 2,' 'not valid JSON'
expect_code 400 '[1, 2, 3]' 'must be a JSON object'
expect_code 400 '{"max_tokens": 4}' "'prompt' is required"
expect_code 400 "{\"prompt\": $ids_json, \"max_tokens\": 0}" 'max_tokens'
expect_code 400 "{\"prompt\": $ids_json, \"max_tokens\": 5000}" 'max_tokens'
expect_code 400 "{\"prompt\": $ids_json, \"temperature\": -1}" 'temperature'
expect_code 400 "{\"prompt\": $ids_json, \"frobnicate\": 1}" "unknown parameter 'frobnicate'"
expect_code 400 '{"prompt": [1, 99999]}' 'not a token id'
expect_code 400 "{\"prompt\": $ids_json, \"stream\": \"yes\"}" 'stream'
big=$(python3 -c 'print("{\"prompt\": \"" + "a" * 5000 + "\"}")')
expect_code 413 "$big" 'exceeds the limit'
check; code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$url/v1/completions")
[ "$code" = 405 ] || fail "GET /v1/completions: HTTP $code"
check; code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$url/nowhere")
[ "$code" = 404 ] || fail "unknown path: HTTP $code"
check; code=$(post "{\"prompt\": $ids_json, \"max_tokens\": 16}")
[ "$code" = 200 ] && [ "$(token_ids "$tmp/body")" = "$expected" ] || fail "serving after errors"

# clean shutdown
check; kill -TERM $pid
for i in $(seq 1 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then fail "no exit 5 s after SIGTERM"; else wait $pid; rc=$?; [ $rc = 0 ] || fail "exit status $rc after SIGTERM"; fi
grep -q "shutting down" "$tmp/server.log" || fail "no shutdown message"

echo "$((checks - failures)) passed, $failures failed"
[ $failures = 0 ]
