"""Run strict mypy over the installed layout of the ``gridhub`` package.

The repository keeps ``connectors/``, ``streams/``, ``schemas/`` and
``simulators/`` at the top and setup.py installs them as ``gridhub.*``; the
editable install's import hook is invisible to mypy, which would then treat
every ``gridhub.*`` import as ``Any``. So this script lays the package out as
installed, with symbolic links in a temporary folder, and checks that.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = ("connectors", "streams", "schemas", "simulators")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="gridhub-mypy-") as tmp:
        package = Path(tmp) / "gridhub"
        package.mkdir()
        for entry in (ROOT / "gridhub").iterdir():
            if entry.name != "__pycache__":
                (package / entry.name).symlink_to(entry)
        for name in SUBPACKAGES:
            (package / name).symlink_to(ROOT / name)
        command = [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "-p",
            "gridhub",
        ]
        result = subprocess.run(command, cwd=tmp, env={"MYPYPATH": tmp, "PATH": ""}, check=False)
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
