"""docs/vendors.md covers every adapter we register, with field names that exist.

Each adapter of this distribution (its entry points, not those of the test plugin
packages in ``tests/plugins/``) must have a heading in the page that names it as
``(`<entry point name>`)``, and its section a line ``Fields of `<ConfigClass>`: ...``
whose backticked names are all fields of the adapter's config class, the required ones
among them.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import EntryPoint, distribution
from pathlib import Path

import pytest

from dixis_integrations.config import config_class_of
from dixis_integrations.protocols import KINDS

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "vendors.md"
GROUP = "dixis_integrations."

_HEADING = re.compile(r"^#{2,6}\s+.*\(`([a-z0-9_]+)`\)\s*$")
_FIELDS = re.compile(r"^Fields of `(\w+)`:(.*)$", re.DOTALL)
_NAME = re.compile(r"`([^`]+)`")


def _test_plugin_names() -> set[tuple[str, str]]:
    """(group, name) of the entry points the test plugin packages declare."""
    names: set[tuple[str, str]] = set()
    for pyproject in (ROOT / "tests" / "plugins").glob("*/pyproject.toml"):
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        for group, points in data.get("project", {}).get("entry-points", {}).items():
            names.update((group, name) for name in points)
    return names


def _our_adapters() -> list[EntryPoint]:
    skip = _test_plugin_names()
    points = [
        ep
        for ep in distribution("dixis-integrations").entry_points
        if ep.group.startswith(GROUP)
        and ep.group[len(GROUP) :] in KINDS
        and (ep.group, ep.name) not in skip
    ]
    return sorted(points, key=lambda ep: (ep.group, ep.name))


def _sections(text: str) -> dict[str, str]:
    """Adapter name -> the text of its section (up to the next heading)."""
    sections: dict[str, str] = {}
    current: str | None = None
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("#"):
            match = _HEADING.match(line)
            current = match.group(1) if match else None
            if current is not None:
                assert current not in sections, f"two headings for {current!r}"
                sections[current] = ""
            continue
        if current is not None:
            sections[current] += line + "\n"
    return sections


def _fields_lines(section: str) -> list[tuple[str, list[str]]]:
    """(config class, field names) of each "Fields of" paragraph of a section."""
    found: list[tuple[str, list[str]]] = []
    for paragraph in section.split("\n\n"):
        match = _FIELDS.match(paragraph.strip())
        if match:
            found.append((match.group(1), _NAME.findall(match.group(2))))
    return found


ADAPTERS = _our_adapters()
SECTIONS = _sections(PAGE.read_text(encoding="utf-8"))


def test_every_kind_has_adapters() -> None:
    kinds = {ep.group[len(GROUP) :] for ep in ADAPTERS}
    assert kinds == set(KINDS)


@pytest.mark.parametrize("ep", ADAPTERS, ids=lambda ep: f"{ep.group[len(GROUP) :]}.{ep.name}")
def test_adapter_has_a_section_with_real_fields(ep: EntryPoint) -> None:
    assert ep.name in SECTIONS, f"docs/vendors.md has no heading for {ep.name!r}"
    config_cls = config_class_of(ep.load())
    assert config_cls is not None, f"{ep.value} declares no config class"
    lines = _fields_lines(SECTIONS[ep.name])
    assert len(lines) == 1, f"{ep.name}: expected one 'Fields of `...`:' line, got {len(lines)}"
    class_name, names = lines[0]
    assert class_name == config_cls.__name__
    assert names, f"{ep.name}: the 'Fields of' line names no field"
    unknown = [n for n in names if n not in config_cls.model_fields]
    assert not unknown, f"{ep.name}: not fields of {class_name}: {unknown}"
    required = [n for n, f in config_cls.model_fields.items() if f.is_required()]
    unlisted = [n for n in required if n not in names]
    assert not unlisted, f"{ep.name}: required fields of {class_name} not listed: {unlisted}"


def test_no_section_for_an_unknown_adapter() -> None:
    assert set(SECTIONS) <= {ep.name for ep in ADAPTERS}
