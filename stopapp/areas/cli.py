"""`flask areas import FILE --code-property P --name-property P [--repair]`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from stopapp.areas import services as areas
from stopapp.db import unit_of_work
from stopapp.errors import ProblemError

areas_cli = AppGroup("areas", help="Areas that reports are tagged with (boroughs, forces...).")


@areas_cli.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--code-property", required=True, help="Feature property holding the area code.")
@click.option("--name-property", required=True, help="Feature property holding the area name.")
@click.option("--repair", is_flag=True,
              help="Repair invalid polygons with ST_MakeValid instead of refusing the file.")
def import_command(file, code_property: str, name_property: str, repair: bool) -> None:
    """Import areas from a GeoJSON file, all or nothing; a code imported again is replaced."""

    def progress(done: int, total: int) -> None:
        click.echo(f"read {done}/{total} features", err=True)

    try:
        with unit_of_work():
            result = areas.import_areas(
                None, file, code_property=code_property, name_property=name_property,
                repair=repair, progress=progress,
            )
    except ProblemError as exc:
        click.echo(f"error: {exc.detail}", err=True)
        for problem in (exc.errors or {}).get("features", []):
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1) from None
    for code in result.repaired:
        click.echo(f"repaired {code} with ST_MakeValid", err=True)
    click.echo(f"imported {len(result.created) + len(result.replaced)} area(s): "
               f"{len(result.created)} new, {len(result.replaced)} replaced "
               f"(from EPSG:{result.source_srid})")
