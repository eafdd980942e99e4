"""Shell completion for the ``gradcheck`` command: ``--show-completion`` / ``--install-completion``.

Typer's own options find the shell only from the process tree (``shellingham``): under ``make``,
CI or a test runner there is no shell among the parents, and they printed "Shell  not
supported." and ignored a shell named after them. Here the shell is the one named
(``--show-completion bash``); else the one ``shellingham`` finds; else ``$SHELL``; else an error
that says to name it. The scripts themselves are typer's.
"""

from __future__ import annotations

import os
from typing import Any

SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")
DETECT = "detect"  # the value of a completion option given without a shell
PROG = "gradcheck"
COMPLETE_VAR = "_GRADCHECK_COMPLETE"


class ShellError(ValueError):
    """No shell named, none found, or one that completion does not support."""


def shell_name(value: str, environ: dict[str, str] | None = None) -> str:
    """The shell to complete for: ``value`` if one is named, else the one we run under.

    Args:
      value: a shell name, or ``"detect"`` when the option was given without one.
      environ: the environment to read ``$SHELL`` from (default: ``os.environ``).

    Returns:
      One of ``SHELLS``; raises ``ShellError`` naming the choices when there is none (a parent
      shell or ``$SHELL`` that completion does not support, such as ``sh``, is passed over).

    >>> shell_name("zsh")
    'zsh'
    >>> shell_name("detect", {"SHELL": "/usr/bin/fish"}) in SHELLS
    True
    """
    name = value.lower()
    if name == DETECT:
        shell_var = os.path.basename((environ if environ is not None else os.environ).get("SHELL", ""))
        found = [s for s in (_running_shell(), shell_var) if s in SHELLS]
        if not found:
            raise ShellError(f"cannot tell which shell this is; name it, e.g. "
                             f"--show-completion bash (one of {', '.join(SHELLS)}).")
        name = found[0]
    if name not in SHELLS:
        raise ShellError(f"shell {name!r} is not supported; choose one of {', '.join(SHELLS)}.")
    return name


def _running_shell() -> str | None:
    """The shell among this process's parents, if ``shellingham`` finds one."""
    try:
        import shellingham

        return str(shellingham.detect_shell()[0]).lower()
    except Exception:  # no shell among the parents (make, CI, a test runner), or no shellingham
        return None


def script(shell: str) -> str:
    """The completion script for ``shell`` (typer's), to ``source`` or ``eval``.

    >>> "_GRADCHECK_COMPLETE" in script("bash")
    True
    """
    from typer._completion_classes import completion_init
    from typer._completion_shared import get_completion_script

    completion_init()
    return get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell)


def install(shell: str) -> Any:
    """Installs the script into the shell's start-up files; returns the script's path."""
    from typer._completion_classes import completion_init
    from typer._completion_shared import install as typer_install

    completion_init()
    return typer_install(shell=shell, prog_name=PROG, complete_var=COMPLETE_VAR)[1]


def callback(ctx: Any, param: Any, value: str | None) -> None:
    """--show-completion [SHELL] prints the script; --install-completion [SHELL] installs it."""
    import typer

    if value is None or ctx.resilient_parsing:
        return
    try:
        shell = shell_name(value)
    except ShellError as error:
        raise typer.BadParameter(str(error), ctx=ctx, param=param) from None
    if param.name == "show_completion":
        typer.echo(script(shell))
    else:
        typer.echo(f"{shell} completion installed in {install(shell)}; it takes effect in a new "
                   "shell.")
    raise typer.Exit(0)
