"""The ``jisik`` command line: thin commands over :class:`~jisik.kb.KnowledgeBase`.

A package over the library, with imports running one way: :mod:`jisik.cli.app` holds what every
command shares (the Typer app, consoles, error handling, opening a knowledge base, progress);
:mod:`jisik.cli.commands` holds the commands, one module per area, each importing only
:mod:`jisik.cli.app`, :mod:`jisik.cli.render` and the library; this module registers them on the
app in the order ``--help`` lists them. Nothing in the library imports the CLI.
"""

from __future__ import annotations

from typer.core import TyperCommand

from jisik.cli.app import Command, app
from jisik.cli.commands import agent, answer, guard, manage, mcp, search, serve
from jisik.cli.commands.eval import register as register_eval
from jisik.cli.commands.tune import tune_app
from jisik.cli.commands.tune_classify import classify as tune_classify
from jisik.cli.commands.tune_classify import report as tune_report
from jisik.cli.commands.tune_embed import embed as tune_embed
from jisik.cli.commands.tune_merge import merge as tune_merge

__all__ = ["app", "main"]

for _command in (manage.init, manage.ingest, search.search, search.status, manage.delete, search.docs,
                 manage.reindex, manage.migrate, answer.ask, answer.chat, agent.agent, answer.logs):
    app.command()(_command)
register_eval(app)
app.command()(serve.serve)
app.command()(mcp.mcp)
app.add_typer(serve.keys_app, name="keys")
app.add_typer(guard.guard_app, name="guard")
tune_app.command("merge")(tune_merge)
tune_app.command("classify")(tune_classify)
tune_app.command("embed")(tune_embed)
tune_app.command("report")(tune_report)
app.add_typer(tune_app, name="tune")
_sub_commands = [*serve.keys_app.registered_commands, *guard.guard_app.registered_commands,
                 *tune_app.registered_commands]
for _info in [*app.registered_commands, *_sub_commands]:  # one-placeholder help everywhere
    if _info.cls in (None, TyperCommand):
        _info.cls = Command


def main() -> None:
    app(prog_name="jisik")
