"""CLI command groups, one module each; `lake.cli` registers every module listed here.

Each module defines `register(app: typer.Typer) -> None`.
"""

COMMAND_MODULES: tuple[str, ...] = (
    "lake.commands.harvest",
    "lake.commands.qc",
    "lake.commands.grids",
    "lake.commands.catalog",
    "lake.commands.serve",
)
