"""The tested environment: constraints.txt pins it whole, pyproject.toml's ranges start at it, environment.yml uses it."""
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version and " " not in version, f"constraints.txt: {line!r} is not an exact pin"
            pins[_name(name)] = version
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]


def _needed() -> set[str]:
    """Every distribution the course needs here: its requirements, theirs, and so on (markers evaluated)."""
    needed, todo = set(), [r for r in _requirements()]
    while todo:
        req = todo.pop()
        name = _name(req.name)
        if name in needed or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        needed.add(name)
        todo += [Requirement(r) for r in metadata.distribution(req.name).requires or []]
    return needed


def test_every_range_starts_at_the_tested_version():
    pins = _pins()
    for req in _requirements():
        name = _name(req.name)
        assert name in pins, f"{req.name} is a dependency in pyproject.toml but constraints.txt does not pin it"
        floors = [s.version for s in req.specifier if s.operator == ">="]
        assert floors, f"pyproject.toml: {req} has no lower bound"
        assert Version(floors[0]) == Version(pins[name]), (
            f"pyproject.toml says {req}, but the tested version (constraints.txt) is {pins[name]}: a range must start "
            "at a version that was tested. Test the older version, or raise the floor.")
        assert req.specifier.contains(pins[name]), f"{req} excludes the tested {pins[name]}"


def test_the_whole_environment_is_pinned_at_what_is_installed():
    pins = _pins()
    unpinned = sorted(_needed() - set(pins))
    assert not unpinned, f"needed but not pinned in constraints.txt: {unpinned}"
    differ = {n: (metadata.version(n), pins[n]) for n in _needed() if metadata.version(n) != pins[n]}
    assert not differ, f"installed vs pinned: {differ} (install with: pip install -c constraints.txt -e '.[dev]')"
    assert {"pip", "setuptools"} <= set(pins)


def test_environment_yml_installs_the_pinned_environment_on_the_tested_python():
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert "-c constraints.txt" in text and "-e .[dev]" in text
    python = re.search(r"-\s*python=(\S+)", text).group(1)
    tested = re.search(r"Python (\d+\.\d+)\.\d+", (ROOT / "constraints.txt").read_text(encoding="utf-8")).group(1)
    floor = re.search(r'requires-python = ">=(\S+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8")).group(1)
    assert python == tested == floor, (python, tested, floor)
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == tested
