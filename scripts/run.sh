#!/usr/bin/env bash
# Serves everything on 127.0.0.1 until Ctrl-C: the API and web queue (gunicorn, port 5000), an
# RQ worker with its scheduler, the dispatcher that queues new reports' triage jobs, the
# periodic jobs (rq cron), and a mail sink (port 8025) that
# keeps mail under var/mail/. Called by `make run` after set-up, migrations and the demo seed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT=${PORT:-5000}
SMTP_PORT=${SMTP_PORT:-8025}
export SMTP_PORT
mkdir -p var/mail var/media

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
trap stop INT TERM EXIT

$BIN/python -m scripts.mailsink --port "$SMTP_PORT" --dir var/mail & pids+=($!)
# Triage jobs are small and many: workers that run them without forking keep up with a burst
# of reports (one such worker does about 15-20 a second on the 2-core development machine,
# most of it RQ's own bookkeeping); photos, e-mail and maintenance keep a forking worker (a crash
# stays in the fork).
for _ in $(seq "${TRIAGE_WORKERS:-2}"); do
  $BIN/python -m workers.worker --simple triage & pids+=($!)
done
$BIN/python -m workers.worker media forwarding maintenance & pids+=($!)
$BIN/python -m workers.dispatcher & pids+=($!)
$BIN/rq cron --url "$REDIS_URL" workers.cron & pids+=($!)
BIND="127.0.0.1:$PORT" $BIN/gunicorn wsgi:app & pids+=($!)

sleep 2
cat <<MSG

  STOP APP backend on http://127.0.0.1:$PORT
    API           http://127.0.0.1:$PORT/api/v1/   (Swagger UI: /api/v1/docs)
    readiness     http://127.0.0.1:$PORT/readyz
    mail sink     127.0.0.1:$SMTP_PORT, messages in var/mail/
  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}"
