"""In-tree PEP 517 backend: setuptools' own, except that the wheel archive of this pure-Python package is
written here with the standard library when setuptools cannot build wheels (setuptools < 70.1 without the
`wheel` package: Debian 12's venv has setuptools 66 and no `wheel`, Python 3.8's setuptools 56)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import zipfile
from typing import Any, Dict, List, Optional

from setuptools import build_meta as _setuptools
from setuptools.build_meta import build_sdist, get_requires_for_build_sdist  # noqa: F401 (re-exported hooks)

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setuptools_builds_wheels() -> bool:
    try:
        import setuptools.command.bdist_wheel  # noqa: F401 (setuptools >= 70.1)
    except ImportError:
        try:
            import wheel.bdist_wheel  # noqa: F401
        except ImportError:
            return False
    return True


def get_requires_for_build_wheel(config_settings: Optional[Dict[str, object]] = None) -> List[str]:
    if _setuptools_builds_wheels():
        return _setuptools.get_requires_for_build_wheel(config_settings)
    return []


def _project() -> Dict[str, Any]:
    with open(os.path.join(_ROOT, "pyproject.toml"), encoding="utf-8") as source:
        text = source.read()
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        return _project_table(text)
    return tomllib.loads(text)["project"]


def _project_table(text: str) -> Dict[str, Any]:
    """The ``[project]`` table of this package's own pyproject.toml, for Pythons before 3.11 (whose venvs may
    have a setuptools too old to read pyproject.toml): strings, ``{ text = "..." }`` and lists of strings."""
    section = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    table: Dict[str, Any] = {}
    for key, value in re.findall(r"^([\w-]+)\s*=\s*(\[.*?\]|\{.*?\}|\"[^\"]*\")", section.group(1) if section else "", re.M | re.S):
        strings = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
        if value.startswith("["):
            table[key] = strings
        elif value.startswith("{"):
            table[key] = dict(zip(re.findall(r"([\w-]+)\s*=", value), strings))
        else:
            table[key] = strings[0]
    return table


def _metadata() -> str:
    project = _project()
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project['description']}",
        f"Requires-Python: {project['requires-python']}",
        f"License: {project['license']['text']}",
    ]
    lines += [f"Classifier: {c}" for c in project.get("classifiers", [])]
    lines.append("Description-Content-Type: text/markdown")
    with open(os.path.join(_ROOT, str(project["readme"])), encoding="utf-8") as readme:
        return "\n".join(lines) + "\n\n" + readme.read()


def _dist_info_name() -> str:
    project = _project()
    return f"{str(project['name']).replace('-', '_')}-{project['version']}"


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: Optional[Dict[str, object]] = None
) -> str:
    if _setuptools_builds_wheels():
        return _setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings)
    dist_info = f"{_dist_info_name()}.dist-info"
    os.makedirs(os.path.join(metadata_directory, dist_info), exist_ok=True)
    for name, text in _dist_info_files().items():
        with open(os.path.join(metadata_directory, dist_info, name), "w", encoding="utf-8") as out:
            out.write(text)
    return dist_info


def _dist_info_files() -> Dict[str, str]:
    return {
        "METADATA": _metadata(),
        "WHEEL": "Wheel-Version: 1.0\nGenerator: datashop_sse_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        "top_level.txt": "datashop_sse\n",
    }


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(
    wheel_directory: str,
    config_settings: Optional[Dict[str, object]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    if _setuptools_builds_wheels():
        return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
    base = _dist_info_name()
    wheel_name = f"{base}-py3-none-any.whl"
    package_root = os.path.join(_ROOT, "src")
    files: Dict[str, bytes] = {}
    for directory, _dirs, names in os.walk(os.path.join(package_root, "datashop_sse")):
        for name in sorted(names):
            if name.endswith(".py") or name == "py.typed":
                full = os.path.join(directory, name)
                with open(full, "rb") as source:
                    files[os.path.relpath(full, package_root).replace(os.sep, "/")] = source.read()
    for name, text in _dist_info_files().items():
        files[f"{base}.dist-info/{name}"] = text.encode("utf-8")
    record = [_record_line(path, data) for path, data in sorted(files.items())]
    record.append(f"{base}.dist-info/RECORD,,")
    files[f"{base}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode("utf-8")
    os.makedirs(wheel_directory, exist_ok=True)
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel_name
