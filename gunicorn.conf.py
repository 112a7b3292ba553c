"""gunicorn settings, read by `gunicorn wsgi:app` from the working directory.

Override any of them on the command line or with GUNICORN_CMD_ARGS.
"""

import os

bind = os.environ.get("BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
# gunicorn 27 opens a control socket under ~/.gunicorn by default; nothing here uses it.
control_socket_disable = True
# The access log names neither the client address nor the query string: a reporter's address
# next to a report id is exactly the link this service must never keep.
accesslog = "-"
access_log_format = '%(m)s %(U)s %(s)s %(b)s %(M)sms'
