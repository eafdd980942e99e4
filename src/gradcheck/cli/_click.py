"""The click layer under typer, as ``main`` uses it: help in click's plain style with argument
names (TARGET) and no types, a shell that may be omitted after the completion options, and usage
errors as one line that names the option the user typed."""

from __future__ import annotations

from typing import Any

import typer


def click_command(app: Any) -> Any:
    """The click command behind ``app``, with the help in click's plain style: arguments show
    their name (TARGET), not a type (``<str>``)."""
    command = typer.main.get_command(app)
    for sub in [command, *getattr(command, "commands", {}).values()]:
        for param in sub.params:
            if isinstance(param, typer.core.TyperArgument):
                param.display_type_rich = lambda ctx: None  # no "<str>" after TARGET
                param._usage_display_name = lambda p=param: p.display_name_raw  # not {TARGET}
    return command


def shell_omitted(argv: list[str]) -> list[str]:
    """``--show-completion`` / ``--install-completion`` without a shell: ``detect`` it (the
    parser has no options with an optional value).

    >>> shell_omitted(["--show-completion"]), shell_omitted(["--show-completion", "zsh"])
    (['--show-completion', 'detect'], ['--show-completion', 'zsh'])
    """
    out: list[str] = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg in ("--show-completion", "--install-completion") and (
                i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append("detect")
    return out


def usage_text(error: Any) -> str:
    """One line for a usage error, naming the option as the user typed it."""
    import difflib

    name = getattr(error, "option_name", None)
    if type(error).__name__ == "NoSuchOption" and name:
        close = difflib.get_close_matches(name, getattr(error, "possibilities", None) or [], n=1)
        return f"No such option {name}" + (f"; did you mean {close[0]}?" if close else ".")
    return " ".join(str(getattr(error, "format_message", error.__str__)()).split())
