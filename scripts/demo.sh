#!/usr/bin/env bash
# make demo: start the server on the embedded default, train the digits example three times
# (each registers a version of digits-mlp), show the runs, alias the best version champion, deploy
# it as the endpoint "digits" with two alert rules, call it with every protocol under a short load,
# show its drift and alerts, and keep serving until Ctrl-C (the UI at / shows the runs, the model,
# the endpoint's live charts and drift, and the project's alerts).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
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
  $PY examples/digits/train.py --lr "$lr" --epochs "${SHIPYARD_DEMO_EPOCHS:-30}" --register digits-mlp
done

$PY -m shipyard runs ls --project digits --sort -summary.val/acc --filter "summary.val/acc > 0"

# The best of the three versions (by its run's best validation accuracy) becomes the champion,
# served by the endpoint "digits"; then every protocol is called and the endpoint kept busy.
BEST=$($PY - <<'PY'
import shipyard
versions = shipyard.Client().model("digits", "digits-mlp")["versions"]
print(max(versions, key=lambda v: v["lineage"]["run"]["metrics"]["best/val_acc"])["version"])
PY
)
$PY -m shipyard models alias digits-mlp champion "$BEST" --project digits
$PY -m shipyard models show digits-mlp --project digits
$PY -m shipyard deploy digits-mlp@champion --endpoint digits --project digits \
  --max-batch-size 32 --max-delay-ms 2
# Two alert rules on it (recreated when the demo runs again on the same SHIPYARD_HOME).
for rule in errors drift; do $PY -m shipyard alerts rm "$rule" --project digits >/dev/null 2>&1 || true; done
$PY -m shipyard alerts create errors --endpoint digits --when "error_ratio > 0.05" --window 1m --project digits
$PY -m shipyard alerts create drift --endpoint digits --when "drifted_features > 0" --project digits
$PY examples/digits/predict.py --endpoint digits --seconds "${SHIPYARD_DEMO_LOAD_S:-10}"
$PY -m shipyard endpoints show digits
$PY -m shipyard endpoints drift digits --top 5
$PY -m shipyard alerts ls --project digits
# The browser signs in with a one-time link (the server printed one at start; this is a new one).
LOGIN=$($PY -m shipyard ui)
HOME_DIR="${SHIPYARD_HOME:-$HOME/.shipyard}"
cat <<MSG

Shipyard is serving on $SHIPYARD_URL   (API docs: $SHIPYARD_URL/docs, metrics: $SHIPYARD_URL/metrics)
Web UI: $LOGIN
  (a one-time login link; then the endpoint is at $SHIPYARD_URL/endpoints/digits)
Data lives in $HOME_DIR; the SDK and CLI here use the token in $HOME_DIR/token. Try:
  SHIPYARD_URL=$SHIPYARD_URL .venv/bin/shipyard runs ls -p digits -f "config.lr < 0.01" -s -summary.val/acc
  curl -s -H "authorization: Bearer \$(cat $HOME_DIR/token)" -H 'content-type: application/json' -d '{"instances": [[0.0, 0.0, 0.3, 0.8, 0.8, 0.2, 0.0, 0.0, 0.0, 0.1, 0.9, 0.6, 0.5, 0.9, 0.1, 0.0, 0.0, 0.2, 0.9, 0.1, 0.0, 0.7, 0.4, 0.0, 0.0, 0.3, 0.6, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.3, 0.5, 0.0, 0.0, 0.6, 0.5, 0.0, 0.0, 0.2, 0.7, 0.0, 0.1, 0.8, 0.3, 0.0, 0.0, 0.0, 0.9, 0.4, 0.7, 0.6, 0.0, 0.0, 0.0, 0.0, 0.3, 0.8, 0.6, 0.1, 0.0, 0.0]]}' $SHIPYARD_URL/v1/models/digits:predict
Press Ctrl-C to stop.
MSG
if [ "${SHIPYARD_DEMO_WAIT:-1}" = 1 ]; then wait $SERVER; fi
