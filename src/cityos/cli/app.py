"""The ``cityos`` command group: every command, registered in the order ``--help`` lists them."""

from __future__ import annotations

import click

from cityos.cli.batch_cmds import batch_cmd
from cityos.cli.bundle_cmds import import_cmd, info_cmd
from cityos.cli.health_cmds import access_cmd, checkup_cmd, compare_cmd, report_cmd
from cityos.cli.lifeline_cmds import alerts_group
from cityos.cli.ops_cmds import db_group, hotline_group, keys_group, serve_cmd
from cityos.cli.register_cmds import register_group, stock_cmd, template_cmd
from cityos.cli.renewal_cmds import renew_cmd, site_cmd
from cityos.cli.simulate_cmds import simulate_cmd
from cityos.version import __version__

__all__ = ["cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="cityos")
def cli() -> None:
    """cityos — city digital foundation: city bundles, walking accessibility, health check,
    urban renewal."""


for _command in (
    import_cmd,
    info_cmd,
    template_cmd,
    register_group,
    stock_cmd,
    access_cmd,
    checkup_cmd,
    compare_cmd,
    report_cmd,
    renew_cmd,
    site_cmd,
    batch_cmd,
    serve_cmd,
    db_group,
    keys_group,
    hotline_group,
    alerts_group,
    simulate_cmd,
):
    cli.add_command(_command)
