"""A PEP 517 build backend for the evd package, standard library only.

pip's build isolation would otherwise fetch setuptools, which an offline
machine cannot. The package is pure Python with no build step: a wheel is the
``evd/`` sources plus the ``.dist-info`` metadata; an editable wheel is a
``.pth`` file naming this directory; an sdist is the tree as a tarball.
"""

import base64
import hashlib
import io
import os
import tarfile
import zipfile

NAME = "evd"
VERSION = "0.1.0"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = "py3-none-any"
SDIST_FILES = ["pyproject.toml", "README.md", "meson.build"]
SDIST_DIRS = ["evd", "_build", "tests"]


def _metadata() -> str:
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
            "Summary: Pure-Python client for evd, the fd-readiness daemon\n"
            "License: MIT\nRequires-Python: >=3.11\n"
            "Description-Content-Type: text/markdown\n\n" + readme)


def _wheel_file() -> str:
    return (f"Wheel-Version: 1.0\nGenerator: {NAME}-in-tree-backend\n"
            f"Root-Is-Purelib: true\nTag: {TAG}\n")


def _sources():
    for root, dirs, files in os.walk(os.path.join(HERE, NAME)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                yield path, os.path.relpath(path, HERE)


def _write_wheel(directory: str, files: list) -> str:
    """*files*: (archive name, bytes). Adds the dist-info and RECORD."""
    dist_info = f"{NAME}-{VERSION}.dist-info"
    files = files + [(f"{dist_info}/METADATA", _metadata().encode()),
                     (f"{dist_info}/WHEEL", _wheel_file().encode())]
    record = []
    filename = f"{NAME}-{VERSION}-{TAG}.whl"
    with zipfile.ZipFile(os.path.join(directory, filename), "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files:
            z.writestr(arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{arcname},sha256={digest.decode()},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        z.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return filename


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = []
    for path, arcname in _sources():
        with open(path, "rb") as f:
            files.append((arcname.replace(os.sep, "/"), f.read()))
    return _write_wheel(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, [(f"__editable__.{NAME}.pth", (HERE + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    base = f"{NAME}-{VERSION}"
    filename = f"{base}.tar.gz"

    def clean(info):
        return None if "__pycache__" in info.name else info

    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as tar:
        for name in SDIST_FILES:
            tar.add(os.path.join(HERE, name), f"{base}/{name}")
        for name in SDIST_DIRS:
            tar.add(os.path.join(HERE, name), f"{base}/{name}", filter=clean)
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        data = _metadata().encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return filename
