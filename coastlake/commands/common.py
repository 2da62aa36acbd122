"""What every `lake` command shares: the consoles, logging set-up, the registry, failing."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console
from rich.logging import RichHandler

from lake.errors import LakeError
from lake.registry import Registry, load_registry
from lake.settings import get_settings

#: Messages and progress go to stderr, so piped results stay clean.
console = Console(stderr=True)
#: Results. Piped output (files, logs, tests) gets wide tables instead of 80-column truncation.
out = Console(width=None if sys.stdout.isatty() else 200)


def setup_logging(verbose: bool = False) -> None:
    """Log lines a data manager reads: time, level, what happened; detail with --verbose."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        datefmt="%H:%M:%S",
        handlers=[RichHandler(console=console, show_path=False, markup=False)],
        force=True,
    )
    for noisy in ("numexpr", "httpx", "botocore", "urllib3", "distributed", "asyncio", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def open_registry(path: str | None = None) -> Registry:
    """The registry from LAKE_REGISTRY (or `path`); exits with the reason if it is invalid."""
    try:
        return load_registry(path or get_settings().registry)
    except LakeError as exc:
        console.print(f"[red]registry error:[/red] {exc}")
        raise typer.Exit(2) from None


def fail(exc: Exception) -> typer.Exit:
    """Print the error for the user; the caller raises the returned exit (status 1)."""
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)
