"""A local SMTP sink for development: every message it receives is kept under var/mail/.

    python -m scripts.mailsink [--host 127.0.0.1] [--port 8025] [--dir var/mail]

Nothing is relayed anywhere. Each message is written whole (headers, body, attachments) as
one .eml file, named by arrival time, readable with any mail client.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
import uuid

from aiosmtpd.controller import Controller


class MaildirHandler:
    """aiosmtpd handler that writes each message to a file."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, mode=0o700, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        path = os.path.join(self.directory, name)
        with open(path, "wb") as handle:
            handle.write(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SMTP_PORT", 8025)))
    parser.add_argument("--dir", default="var/mail")
    args = parser.parse_args(argv)
    controller = Controller(MaildirHandler(args.dir), hostname=args.host, port=args.port)
    controller.start()
    print(f"mail sink on {args.host}:{args.port}, keeping mail in {args.dir}/", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
