"""A hooks package outside the repository, as a team keeps one: the gateway
built as a wheel and installed in a fresh environment beside the package
(examples/hooks, copied out), whose tests then run with pytest (`async def`
tests and all, no asyncio plugin) and type-check with mypy --strict.

The fresh environment borrows the development environment's site-packages
for third-party packages (Django, pytest, mypy...) so that the test needs no
network; the gateway itself comes only from its wheel (installed without the
repository on the path), and so do its entry points (the pytest plugin)."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.integration


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **(env or {})},
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the hooks package, the python of its environment), with the gateway
    installed from a wheel."""
    work = tmp_path_factory.mktemp("outside")
    assert ROOT not in work.parents
    source = work / "gateway-src"
    for name in ("gateway", "config"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = work / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", wheels, source, cwd=work)  # fmt: skip
    (wheel,) = wheels.glob("django_api_gateway-*.whl")

    package = work / "acme-hooks"
    shutil.copytree(
        ROOT / "examples" / "hooks", package, ignore=shutil.ignore_patterns("__pycache__")
    )
    environment = work / "env"
    run(sys.executable, "-m", "venv", "--without-pip", environment, cwd=work)
    python = environment / "bin" / "python"
    purelib = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=work)
        .strip()
        .splitlines()[-1]
    )
    (purelib / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    pip: list[str | Path] = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    run(*pip, wheel, cwd=work)
    run(*pip, "--no-build-isolation", "-e", package, cwd=work)
    return package, python


def test_the_gateway_installs_as_a_package(outside: tuple[Path, Path]) -> None:
    package, python = outside
    where = run(python, "-c", "import gateway, gateway.hooks; print(gateway.__file__)", cwd=package)
    assert str(ROOT) not in where and "site-packages" in where
    data = run(
        python,
        "-c",
        "import importlib.resources as r; print(r.files('gateway').joinpath('py.typed').is_file(),"
        " r.files('gateway').joinpath('templates/gateway/dashboard.html').is_file())",
        cwd=package,
    )
    assert data.strip().endswith("True True")


def test_the_hooks_tests_run_with_no_asyncio_plugin(outside: tuple[Path, Path]) -> None:
    package, python = outside
    # pytest-asyncio switched off: the gateway's plugin alone runs the async tests.
    output = run(python, "-m", "pytest", "-q", "-p", "no:asyncio", cwd=package)
    assert "9 passed" in output, output
    assert "not natively supported" not in output
    # ... and beside pytest-asyncio (strict, unconfigured), nothing changes.
    output = run(python, "-m", "pytest", "-q", "-W", "ignore::DeprecationWarning", cwd=package)
    assert "9 passed" in output, output


def test_the_hooks_package_type_checks_strictly(outside: tuple[Path, Path]) -> None:
    package, python = outside
    output = run(python, "-m", "mypy", cwd=package, env={"MYPY_CACHE_DIR": str(package / ".m")})
    assert "Success: no issues found" in output, output
