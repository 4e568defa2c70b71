"""Command ``app``: start the dashboard, from the checkout or from an installed package.

    cnn-explorer app                       # http://localhost:8501
    cnn-explorer app --port 8502 -- --server.maxUploadSize 100

runs ``streamlit run <app.py>`` with the settings of the app's ``.streamlit/config.toml`` as
command-line options, so they hold whatever folder it is started from. In the checkout
``app.py`` sits next to ``viz_core/``; an installed package keeps ``app.py``, ``pages/``, ``ui/``
and ``.streamlit/`` in ``site-packages/cnn_explorer/`` (see ``pyproject.toml``).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from viz_core.errors import VizError
from viz_core.runtime.limits import Bound
from viz_core.cli.common import bounded

PORT = Bound("the port", 1, 65535)
#: The environment the dashboard is served with where the user's sets no value (the class
#: server's configuration; ``bench class_day`` serves with it too).
SERVER_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    # Two malloc arenas instead of glibc's 8 per core: a class server's memory levels off about
    # 250 MB lower (bench class_day: 1.1-1.2 GB against 1.4-1.5 GB).
    "MALLOC_ARENA_MAX": "2",
}


def register(commands) -> None:
    p = commands.add_parser(
        "app", help="start the dashboard (streamlit run on the installed app)",
        description="Start the dashboard with Streamlit (stop it with Ctrl+C). Options after "
        "'--' go to 'streamlit run' unchanged.")
    p.add_argument("--port", type=bounded(PORT), default=None,
                   help="port to serve on (default: Streamlit's, 8501)")
    p.add_argument("--address", default=None,
                   help="address to listen on, e.g. 0.0.0.0 in a container (default: all)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the streamlit command instead of running it")
    p.add_argument("streamlit_args", nargs=argparse.REMAINDER, metavar="-- STREAMLIT_OPTIONS",
                   help="more options for streamlit run")
    p.set_defaults(handler=cmd_app, needs_tensorflow=False)


def app_folder() -> Path:
    """The folder holding ``app.py``, ``pages/`` and ``ui/``: the installed package's
    ``cnn_explorer/`` or, in a checkout, the folder above ``viz_core/``."""
    above = Path(__file__).resolve().parents[2]
    for folder in (above / "cnn_explorer", above):
        if (folder / "app.py").is_file() and (folder / "pages").is_dir() and \
                (folder / "ui").is_dir():
            return folder
    raise VizError(f"The dashboard's files (app.py, pages/, ui/) are not next to viz_core in "
                   f"{str(above)!r}; reinstall the package with 'pip install .'.")


def streamlit_command(folder: Path, *, port=None, address=None, extra=()) -> list[str]:
    """``python -m streamlit run <folder>/app.py`` with the app's config file as options."""
    import tomllib

    command = [sys.executable, "-m", "streamlit", "run", str(folder / "app.py")]
    config = folder / ".streamlit" / "config.toml"
    if config.is_file():
        for section, values in tomllib.loads(config.read_text(encoding="utf-8")).items():
            for key, value in values.items():
                text = str(value).lower() if isinstance(value, bool) else str(value)
                command.append(f"--{section}.{key}={text}")
    if port is not None:
        command.append(f"--server.port={port}")
    if address is not None:
        command.append(f"--server.address={address}")
    extra = list(extra)
    return command + (extra[1:] if extra[:1] == ["--"] else extra)


def cmd_app(args, bench=None) -> int:
    folder = app_folder()
    command = streamlit_command(folder, port=args.port, address=args.address,
                                extra=args.streamlit_args)
    if args.dry_run:
        print(shlex.join(command))
        return 0
    env = {**SERVER_ENV, **os.environ}  # a user's own value is kept
    # Become the server (exec) rather than start it as a child: a stop signal sent to
    # cnn-explorer (a terminal, a test, Docker) then reaches Streamlit itself, and no server is
    # left running after its parent was terminated.
    os.execve(command[0], command, env)
    return 0  # not reached
