"""The ``saltmap`` command line: a thin shell over the package's functions.

Each verb lives in its own module in this package and defines
``register(app)``; this module finds them, so adding a verb touches no other file.
Errors of saltmap are printed as one message (``--debug`` shows the traceback).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from saltmap import __version__
from saltmap.cli._print import console, err_console, error, say
from saltmap.cli._progress import RichProgress
from saltmap.errors import SaltmapError

app = typer.Typer(
    name="saltmap",
    help="Map soil salinity from field samples and Sentinel-2 or Landsat imagery.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
__all__ = ["RichProgress", "app", "console", "err_console", "main"]
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        say(f"saltmap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    _state["debug"] = debug


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main() -> None:
    """Entry point of the ``saltmap`` console script."""
    try:
        app(standalone_mode=False, prog_name="saltmap")
    except SaltmapError as err:
        if _state["debug"]:
            raise
        error(str(err))
        sys.exit(2)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except Exception as err:  # click usage errors arrive here in non-standalone mode
        import click

        # Typer >= 0.23 raises its own vendored click's exceptions, which derive from
        # TyperException and not from click.ClickException.
        if isinstance(err, click.ClickException | typer.exceptions.TyperException):
            err.show()
            sys.exit(err.exit_code)
        raise
