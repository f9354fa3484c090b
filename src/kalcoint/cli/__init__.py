"""The ``kalcoint`` command line: a thin shell over the library.

Each command module (``cli/<name>.py``) registers its commands on the shared Typer app.
A module is imported only when one of its commands runs: ``kalcoint --help`` lists the
commands from the modules' source (the ``@app.command`` decorators and the functions'
docstrings, read with :mod:`ast`), so it imports no command module, and no numpy,
pandas, numba or statsmodels.
"""

from __future__ import annotations

import ast
import functools
import importlib
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from ..errors import KalcointError
from ._common import app, cli_message, err_console

_HERE = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def command_modules() -> dict[str, tuple[str, str]]:
    """``{command: (module, help)}`` for every ``@app.command`` of ``cli/*.py`` (and every
    ``app.add_typer(..., name=...)``), in file then source order, without importing them."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(_HERE.glob("[!_]*.py"), key=lambda p: (p.stem != "core", p.stem)):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                for deco in node.decorator_list:
                    name = _command_name(deco, node.name)
                    if name is not None:
                        found[name] = (path.stem, " ".join((ast.get_docstring(node) or "").split("\n\n")[0].split()))
            elif isinstance(node, ast.Call) and _is_app_attr(node.func, "add_typer"):
                for kw in node.keywords:
                    if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                        found[str(kw.value.value)] = (path.stem, _keyword(node, "help"))
    return found


def _is_app_attr(node: ast.AST, attr: str) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == attr
        and isinstance(node.value, ast.Name)
        and node.value.id == "app"
    )


def _keyword(call: ast.Call, key: str) -> str:
    for kw in call.keywords:
        if kw.arg == key and isinstance(kw.value, ast.Constant):
            return str(kw.value.value)
    return ""


def _command_name(deco: ast.expr, function: str) -> str | None:
    """The command name of an ``@app.command`` / ``@app.command("name")`` decorator, else None."""
    call = deco if isinstance(deco, ast.Call) else None
    target = call.func if call is not None else deco
    if not _is_app_attr(target, "command"):
        return None
    if call is not None:
        if call.args and isinstance(call.args[0], ast.Constant):
            return str(call.args[0].value)
        named = _keyword(call, "name")
        if named:
            return named
    return function.lower().replace("_", "-")


class LazyGroup(TyperGroup):
    """The root command group: lists every command, imports a command's module when it runs."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(dict.fromkeys([*command_modules(), *self.commands]))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = command_modules().get(cmd_name)
        if entry is None:
            return None
        # a stand-in for listings (help, completion); resolve_command loads the real one
        return TyperCommand(name=cmd_name, help=entry[1], rich_markup_mode=app.rich_markup_mode)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[Any, Any, list[str]]:
        if args and args[0] not in self.commands and args[0] in command_modules():
            self.load(args[0])
        return super().resolve_command(ctx, args)

    def load(self, cmd_name: str) -> None:
        """Import the module of ``cmd_name`` and add the commands it registered on ``app``."""
        importlib.import_module(f"{__name__}.{command_modules()[cmd_name][0]}")
        built = typer.main.get_group(app)
        for name, command in built.commands.items():
            self.commands.setdefault(name, command)


app.info.cls = LazyGroup


_Classes = tuple[type[BaseException], ...]


def _click_classes() -> tuple[_Classes, _Classes, _Classes]:
    """(usage errors, no-args-is-help errors, aborts) of click and of the click that typer vendors."""
    usage: list[type[BaseException]] = []
    no_args: list[type[BaseException]] = []
    aborts: list[type[BaseException]] = [KeyboardInterrupt]
    for module in ("click.exceptions", "typer._click.exceptions", "typer.exceptions"):
        try:
            mod = __import__(module, fromlist=["_"])
        except ImportError:
            continue
        for name, bucket in (("ClickException", usage), ("NoArgsIsHelpError", no_args), ("Abort", aborts)):
            cls = getattr(mod, name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in bucket:
                bucket.append(cls)
    return tuple(usage), tuple(no_args), tuple(aborts)


def _usage_line(exc: Any) -> str:
    """A click usage error as one line: the problem and where to read more."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "kalcoint"
    return f"{message} (see: {command} --help)"


def _warning_printer() -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints each warning as one line on stderr, literally and
    once per run: a figure's missing glyphs as a note, anything else as ``warning: ...``
    (no file name, no source line)."""
    from ..errors import MissingGlyphWarning

    shown: set[str] = set()

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        text = " ".join(str(message).split())
        if text in shown:
            return
        shown.add(text)
        if issubclass(category, MissingGlyphWarning):
            err_console.print(f"note: {text}", style="dim", highlight=False)
        else:
            err_console.print(f"warning: {text} ({category.__name__})", style="yellow", highlight=False)

    return show


def main() -> None:
    """Entry point: run the app. A :class:`KalcointError` or a usage error (bad option value,
    unknown option) becomes one line on stderr and exit 2."""
    if len(sys.argv) > 1 and sys.argv[1] in (
        "tune",
        "filter",
        "compare",
        "demo",
        "backtest",
        "screen",
        "update",
        "report",
        "study",
        "retune",
    ):
        from ..warmup import cache_is_cold

        if cache_is_cold():
            err_console.print("first run: compiling kalcoint's kernels (20-30 s, once; cached afterwards)", style="dim")
    usage, no_args, aborts = _click_classes()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer()
            code = app(standalone_mode=False)
    except KalcointError as exc:
        err_console.print(f"kalcoint: error: {cli_message(exc)}", style="red", highlight=False, soft_wrap=True)
        sys.exit(2)
    except no_args as exc:
        ctx = getattr(exc, "ctx", None)
        print(ctx.get_help() if ctx is not None else str(exc))
        sys.exit(0)
    except usage as exc:
        err_console.print(f"kalcoint: error: {_usage_line(exc)}", style="red", highlight=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 2) or 2)
    except aborts:
        err_console.print("kalcoint: interrupted", style="red")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
