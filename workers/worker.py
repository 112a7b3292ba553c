"""The worker entry point: `python -m workers.worker [--burst] [--simple] [queues...]`.

It builds the app once, then forks a work horse per job (the default) or runs jobs in its own
process (`--simple`, faster for tiny jobs). It always runs the scheduler, without which delayed
retries would never run.
"""

from __future__ import annotations

import argparse
import logging

from rq import SimpleWorker, Worker

from stopapp.extensions import redis_client
from stopapp.tasks import QUEUES
from workers.context import worker_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("queues", nargs="*", default=list(QUEUES))
    parser.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    parser.add_argument("--simple", action="store_true", help="run jobs without forking")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = worker_app()
    with app.app_context():
        connection = redis_client()
    worker_class = SimpleWorker if args.simple else Worker
    worker = worker_class(args.queues, connection=connection)
    worker.work(with_scheduler=True, burst=args.burst)


if __name__ == "__main__":
    main()
