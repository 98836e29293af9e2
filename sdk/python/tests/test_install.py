"""The SDK installs offline into a fresh venv, with no build dependency beyond what the venv has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SDK = Path(__file__).resolve().parent.parent


def test_pip_install_no_build_isolation_in_a_fresh_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--no-build-isolation", "--quiet", str(SDK)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    check = subprocess.run(
        [
            str(python),
            "-c",
            "import datashop_sse, pathlib; from datashop_sse import SSEPublisher, SSEPublishError;"
            "print(datashop_sse.__version__, (pathlib.Path(datashop_sse.__file__).parent / 'py.typed').exists())",
        ],
        cwd=tmp_path,  # not the source tree: the installed copy must import
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.split() == ["0.1.0", "True"]
    listed = subprocess.run([str(python), "-m", "pip", "show", "datashop-sse"], capture_output=True, text=True)
    assert "Name: datashop-sse" in listed.stdout and "Version: 0.1.0" in listed.stdout
