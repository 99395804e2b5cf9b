"""feedsvc as a new user installs it: a wheel built from this checkout, installed into a fresh
virtual environment, run from a working folder that has nothing to do with the checkout. It must
check and serve the seeds it carries (an installed feedsvc once served an empty site: the seeds
were not in the wheel).

Slower than the other tests (about 10-20 s, most of it pip building the wheel in its isolated
build environment), hence the `install` marker: `pytest -m "not install"` leaves it out.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest

from tests.servers import fetch, free_port, stop, wait_until_serving

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parent.parent
# Everything a wheel is built from. The build works on a copy, so that it writes no build/ or
# egg-info into the checkout, and no stale build/ of an earlier build can leak into the wheel.
SOURCES = ("pyproject.toml", "README.md", "feedsvc", "seeds")


@dataclass(frozen=True)
class Installed:
    bin: Path  # the fresh environment's bin/, with the `feedsvc` command
    site_packages: Path
    elsewhere: Path  # an empty working folder
    env: dict[str, str]


def run(
    command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy(ROOT / name, source / name)
    dist = work / "dist"
    run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(dist)])
    (wheel,) = dist.glob("feedsvc-*.whl")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site_packages = Path(run([python, "-c", purelib]).stdout.strip())
    # The dependencies are this test run's own (a path entry to its site-packages, as
    # --system-site-packages would give a system's), so nothing is downloaded. feedsvc itself
    # can come only from the wheel: this environment has it as an editable install, whose
    # finder is started by a .pth file there, which a path entry does not run.
    paths = "\n".join(site.getsitepackages())
    (site_packages / "test-dependencies.pth").write_text(paths + "\n", encoding="utf-8")
    install = ["--python", python, "install", "--no-deps", "--no-index", "-q", str(wheel)]
    run([sys.executable, "-m", "pip", *install])
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEEDSVC_", "PYTHON"))}
    env["XDG_CACHE_HOME"] = str(work / "cache")  # the parse cache, as `auto` puts it
    yield Installed(venv / "bin", site_packages, elsewhere, env)


def test_the_installed_package_is_the_wheel(installed: Installed) -> None:
    where = "import feedsvc; print(feedsvc.__file__)"
    done = run([str(installed.bin / "python"), "-c", where], cwd=installed.elsewhere)
    assert Path(done.stdout.strip()).is_relative_to(installed.site_packages)


def test_check_reads_the_seeds_the_wheel_carries(installed: Installed) -> None:
    command = [str(installed.bin / "feedsvc"), "check"]
    done = run(command, cwd=installed.elsewhere, env=installed.env)
    seeds = installed.site_packages / "feedsvc" / "seeds"
    assert done.stdout.splitlines()[-1] == (
        f"2 files checked in {seeds}: all usable; 2 entries published, 0 warnings"
    )


def test_serve_serves_the_seeds_the_wheel_carries(installed: Installed) -> None:
    port = free_port()
    command = [str(installed.bin / "feedsvc"), "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    log = installed.elsewhere / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=installed.elsewhere, env=installed.env, stdout=sink, stderr=sink
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base + "/healthz", process)
        status, _, body = fetch(base + "/feeds/all.atom")
    finally:
        stop(process)
    assert status == 200
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == 2
    assert {entry.link.split("/")[2] for entry in parsed.entries} == {
        "eandt.theiet.org",
        "www.usnews.com",
    }
