#!/usr/bin/env bash
# make demo: start the server on the embedded default, train the digits example three times,
# show the runs, and keep serving until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT="${SHIPYARD_PORT:-8000}"
export SHIPYARD_URL="http://127.0.0.1:${PORT}"

$PY -m shipyard server --port "$PORT" --log-level warning &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do
  $PY -c "import httpx, sys; httpx.get(sys.argv[1], timeout=1).raise_for_status()" \
    "$SHIPYARD_URL/readyz" >/dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { echo "the server did not start (is port $PORT free? set SHIPYARD_PORT)"; exit 1; }
  sleep 0.2
done

for lr in 0.03 0.003 0.0003; do
  $PY examples/digits/train.py --lr "$lr" --epochs 30
done

$PY -m shipyard runs ls --project digits --sort -summary.val/acc --filter "summary.val/acc > 0"
cat <<MSG

Shipyard is serving on $SHIPYARD_URL   (API docs: $SHIPYARD_URL/docs, metrics: $SHIPYARD_URL/metrics)
Data lives in ${SHIPYARD_HOME:-$HOME/.shipyard}. Try:
  SHIPYARD_URL=$SHIPYARD_URL .venv/bin/shipyard runs ls -p digits -f "config.lr < 0.01" -s -summary.val/acc
Press Ctrl-C to stop.
MSG
wait $SERVER
