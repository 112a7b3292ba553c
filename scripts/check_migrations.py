"""CI check: the migrations build a schema that matches the models, and they run both ways.

    DATABASE_URL=... python -m scripts.check_migrations

Works on a scratch database beside the one in DATABASE_URL (its name plus `_migcheck`), which
it drops and recreates with the PostGIS and pg_trgm extensions.
"""

from __future__ import annotations

import os
import sys

from flask_migrate import check, downgrade, upgrade
from sqlalchemy import make_url

from stopapp import create_app
from stopapp.dbadmin import drop_database, recreate_database
from stopapp.extensions import db


def main() -> int:
    base = make_url(os.environ["DATABASE_URL"])
    scratch = base.set(database=f"{base.database}_migcheck").render_as_string(hide_password=False)
    recreate_database(scratch)
    app = create_app({"DATABASE_URL": scratch})
    with app.app_context():
        upgrade()
        check()  # exits non-zero when the models and the migrations disagree
        downgrade(revision="base")
        upgrade()
        db.engine.dispose()
    drop_database(scratch)
    print("migrations: one head, models in step, downgrade and upgrade again OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
