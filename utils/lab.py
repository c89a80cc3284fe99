"""Open the course in JupyterLab, on notebook 00, wherever it runs: ``python -m utils.lab`` (``make lab``).

Plain ``jupyter lab notebooks/00_start_here.ipynb`` failed learners in four ways, fixed here:

- **root** (containers, workshop VMs): JupyterLab refuses to start as root; we pass ``--allow-root`` only
  when the user *is* root (``os.geteuid() == 0``; Windows has no ``geteuid`` and is never "root").
- **no browser** (headless server, SSH, WSL without a display): we pass ``--no-browser`` and print which
  URL to open. "No browser" means: on Linux/BSD neither ``DISPLAY`` nor ``WAYLAND_DISPLAY`` is set (checked
  first, because there ``webbrowser`` would happily pick a text browser such as w3m and take over the
  terminal), or, on any system, ``webbrowser.get()`` finds no browser at all.
- **server root**: a positional notebook path makes its folder, ``notebooks/``, the server root, so README.md
  and utils/*.py, which the notebooks point to, could not be opened (and with ``--ServerApp.root_dir`` the path
  is still resolved against the current directory). We serve the repository root (``--ServerApp.root_dir``) and
  open on notebook 00 with ``--LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb``: the URL that
  JupyterLab prints (and the browser it opens) then leads straight to notebook 00, from any directory.
- **news pop-up** ("Would you like to receive official Jupyter news?"): the repository ships
  ``jupyter/overrides.json``, which sets the default of the ``@jupyterlab/apputils-extension:notification``
  setting ``fetchNews`` to ``"false"`` (Never). JupyterLab reads default overrides from
  ``<app settings dir>/overrides.d/*.json``; its app settings dir is ``{sys.prefix}/share/jupyter/lab/settings``.
  Before starting, this launcher copies the file there as ``overrides.d/how-chatgpt-learns.json`` when it
  differs, i.e. into the course's ``.venv`` (or conda env) and nowhere else; outside a virtual/conda
  environment it writes nothing. ``overrides.d/`` rather than ``overrides.json``: that single file may hold
  someone else's overrides, ours has a file of its own. On Binder, ``postBuild`` runs
  ``python -m utils.lab --install-settings`` (install, do not start). A learner's own setting still wins:
  overrides change defaults only.

The command is built by :func:`lab_command`, a pure function, so the tests check it without starting anything.
Arguments that the launcher does not know (``--ip=0.0.0.0``, ...) are passed on to JupyterLab.
"""
from __future__ import annotations

import argparse
import filecmp
import os
import shlex
import shutil
import subprocess
import sys
import webbrowser
from pathlib import Path
from urllib.parse import quote

from utils.paths import ROOT

START_NOTEBOOK = "notebooks/00_start_here.ipynb"
OVERRIDES = ROOT / "jupyter" / "overrides.json"
OVERRIDE_NAME = "how-chatgpt-learns.json"
DEFAULT_PORT = 8888


def is_root() -> bool:
    """True when running as root, the one user JupyterLab refuses without ``--allow-root``."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def browser_available(platform: str | None = None, environ: dict | None = None,
                      get_browser=webbrowser.get) -> bool:
    """Can JupyterLab open a graphical browser here? (See the module docstring for the rule.)"""
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    unix_like = not platform.startswith(("win", "darwin", "cygwin"))
    if unix_like and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        get_browser()
    except webbrowser.Error:
        return False
    return True


def start_url(notebook: str = START_NOTEBOOK) -> str:
    """The JupyterLab path of ``notebook`` (relative to the server root, with forward slashes)."""
    return "/lab/tree/" + quote(Path(notebook).as_posix())


def lab_command(*, is_root: bool, has_browser: bool, root_dir: Path = ROOT, notebook: str = START_NOTEBOOK,
                port: int | None = None, python: str = sys.executable, extra: list[str] | tuple = ()) -> list[str]:
    """The JupyterLab command line: serve ``root_dir``, open on ``notebook`` (relative to ``root_dir``).

    ``python -m jupyterlab`` rather than ``jupyter lab``: the JupyterLab of *this* Python, even when the venv
    is not activated and another ``jupyter-lab`` comes first on PATH.
    """
    cmd = [python, "-m", "jupyterlab", f"--ServerApp.root_dir={Path(root_dir)}",
           f"--LabApp.default_url={start_url(notebook)}"]
    if port is not None:
        cmd.append(f"--ServerApp.port={port}")
    if is_root:
        cmd.append("--allow-root")
    if not has_browser:
        cmd.append("--no-browser")
    return cmd + list(extra)


def settings_dir(prefix: str | Path = sys.prefix) -> Path:
    """JupyterLab's app settings dir for the environment at ``prefix`` (where it reads overrides)."""
    return Path(prefix) / "share" / "jupyter" / "lab" / "settings"


def override_path(prefix: str | Path = sys.prefix) -> Path:
    """Where the course's override goes: a file of its own in JupyterLab's ``overrides.d``."""
    return settings_dir(prefix) / "overrides.d" / OVERRIDE_NAME


def install_override(prefix: str | Path = sys.prefix, source: Path = OVERRIDES) -> bool:
    """Copy the course's settings override into ``prefix``'s JupyterLab; True if the file was (re)written."""
    target = override_path(prefix)
    if target.is_file() and filecmp.cmp(source, target, shallow=False):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return True


def in_environment(prefix: str | Path = sys.prefix) -> bool:
    """Is ``prefix`` a virtual or conda environment (somewhere we may write), not the system Python?"""
    return str(prefix) != sys.base_prefix or (Path(prefix) / "conda-meta").is_dir()


def apply_settings(prefix: str | Path = sys.prefix) -> str | None:
    """Install the override where it is safe to; say what happened (None: already up to date).

    Never raises: a failure only costs the news pop-up, not the course.
    """
    target = override_path(prefix)
    fallback = "if JupyterLab asks about Jupyter news, answer 'No'"
    if not in_environment(prefix):
        return f"Note: {prefix} is not a virtual or conda environment, so {target} is not written; {fallback}."
    try:
        written = install_override(prefix)
    except OSError as exc:
        return f"Note: could not write {target} ({exc}); {fallback}."
    return f"Installed the JupyterLab settings override: {target}" if written else None


def headless_hint(port: int | None) -> str:
    """What a learner without a browser must do: JupyterLab's own URL (with its token) is easy to miss."""
    shown = port or DEFAULT_PORT
    return (f"No browser found: open the http://127.0.0.1:{shown}{start_url()}?token=... URL printed below "
            "(copy it whole, with its token) in a browser on this machine"
            + ("" if port else f"; the port may differ from {DEFAULT_PORT} if that one is busy")
            + f". From another machine: ssh -L {shown}:127.0.0.1:{shown} <this server>, then open that URL.")


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The launcher's own options; everything else goes on to JupyterLab."""
    parser = argparse.ArgumentParser(prog="python -m utils.lab", description=__doc__.splitlines()[0],
                                     allow_abbrev=False)
    parser.add_argument("--port", type=int, help=f"port to serve on (default: {DEFAULT_PORT} or the next free one)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser, print the URL")
    parser.add_argument("--install-settings", action="store_true",
                        help="only install the settings override into this environment (Binder's postBuild)")
    parser.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Install the override, then replace this process by JupyterLab (Ctrl+C then stops JupyterLab directly)."""
    args, extra = parse_args(argv)
    if args.install_settings:
        print(apply_settings() or f"Up to date: {override_path()}")
        return 0
    has_browser = not args.no_browser and browser_available()
    cmd = lab_command(is_root=is_root(), has_browser=has_browser, port=args.port, extra=extra)
    if args.dry_run:
        print(subprocess.list2cmdline(cmd) if os.name == "nt" else shlex.join(cmd))
        return 0
    for line in (apply_settings(), None if has_browser else headless_hint(args.port)):
        if line:
            print(line)
    sys.stdout.flush()  # exec replaces the process: unflushed output would be lost
    if os.name == "posix":
        os.execv(cmd[0], cmd)
    return run_until_exit(cmd)


def run_until_exit(cmd: list[str]) -> int:
    """Windows, where exec detaches the console: wait for JupyterLab, which handles Ctrl+C itself."""
    proc = subprocess.Popen(cmd)
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            continue


if __name__ == "__main__":
    sys.exit(main())
