"""README.md's examples run as written, and the package installs offline."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import TIMEOUT

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_blocks():
    with open(os.path.join(PYTHON_DIR, "README.md"), encoding="utf-8") as f:
        return re.findall(r"^```python\n(.*?)^```", f.read(), re.S | re.M)


def test_readme_has_both_examples():
    blocks = readme_blocks()
    assert len(blocks) == 2
    assert "evd.Client(" in blocks[0] and "AsyncClient" in blocks[1]


@pytest.mark.parametrize("index", [0, 1], ids=["sync", "asyncio"])
def test_readme_example_runs(daemon, index, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(readme_blocks()[index])
    env = dict(os.environ, EVD_SOCKET=daemon.socket, PYTHONPATH=PYTHON_DIR)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=TIMEOUT * 3, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    if index == 0:
        assert "readable: pipe b'hello'" in out.stdout
        assert "error -32001 No such watch" in out.stdout
        assert "watches held for us: 1" in out.stdout
    else:
        assert "readable:" in out.stdout and "b'ping'" in out.stdout
        assert "timer expired 1 time(s)" in out.stdout
        assert "child exited: 0" in out.stdout


def test_pip_install_offline_into_a_venv(daemon):
    venv = tempfile.mkdtemp(prefix="evd-venv-")
    try:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=TIMEOUT * 6)
        pip = os.path.join(venv, "bin", "pip")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
                   PYTHONDONTWRITEBYTECODE="1")
        # A copy: pip must not write into the source tree.
        src = os.path.join(venv, "src")
        shutil.copytree(PYTHON_DIR, src, ignore=shutil.ignore_patterns("__pycache__"))
        out = subprocess.run([pip, "install", "--no-index", src], capture_output=True,
                             text=True, env=env, timeout=TIMEOUT * 6)
        assert out.returncode == 0, out.stdout + out.stderr
        code = ("import evd, sys; c = evd.Client(sys.argv[1]); "
                "print(evd.__file__); print(c.ping())")
        out = subprocess.run([os.path.join(venv, "bin", "python"), "-c", code, daemon.socket],
                             capture_output=True, text=True, env=env, cwd=venv,
                             timeout=TIMEOUT * 3)
        assert out.returncode == 0, out.stderr
        path, pong = out.stdout.split("\n")[:2]
        assert path.startswith(os.path.join(venv, "lib")) and pong == "{}"
    finally:
        shutil.rmtree(venv, ignore_errors=True)
