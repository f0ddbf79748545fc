"""Finding the vendors' specifications for the contract tests (private test helper).

``DIXIS_SPECS_DIR`` wins; else ``shared/specs`` beside the repository. When absent the
tests skip with the reason, except under ``CI=true`` where absence is a failure.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
XS = "{http://www.w3.org/2001/XMLSchema}"


def specs_dir() -> Path:
    """The specs folder, or skip (fail under CI) when it is absent."""
    configured = os.environ.get("DIXIS_SPECS_DIR")
    path = Path(configured) if configured else (REPO / ".." / "shared" / "specs").resolve()
    if not path.is_dir():
        reason = f"vendor specs not found at {path} (set DIXIS_SPECS_DIR)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@cache
def xero_spec() -> dict[str, Any]:
    """``xero_accounting.yaml`` parsed (once per session)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with (specs_dir() / "xero" / "xero_accounting.yaml").open(encoding="utf-8") as fh:
        spec: dict[str, Any] = yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader
    return spec


@dataclass
class XsdType:
    """Child element names (with their types) and attribute names of one complexType."""

    base: str | None = None
    elements: dict[str, str] = field(default_factory=dict)
    attributes: set[str] = field(default_factory=set)
    refs: set[str] = field(default_factory=set)
    simple_content: bool = False


def _local(name: str | None) -> str:
    return (name or "").split(":")[-1]


@cache
def qbo_types() -> tuple[dict[str, XsdType], dict[str, str], dict[str, list[str]]]:
    """(complex types, top-level element -> type, substitution group -> member elements)."""
    types: dict[str, XsdType] = {}
    top: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for path in sorted((specs_dir() / "quickbooks").glob("*.xsd")):
        root = ET.parse(path).getroot()  # noqa: S314 - local vendor files
        for element in root.findall(f"{XS}element"):
            name = element.get("name") or ""
            top[name] = _local(element.get("type"))
            group = element.get("substitutionGroup")
            if group:
                groups.setdefault(_local(group), []).append(name)
        for ctype in root.iter(f"{XS}complexType"):
            name = ctype.get("name")
            if not name:
                continue
            info = XsdType()
            for ext in ctype.iter(f"{XS}extension"):
                info.base = _local(ext.get("base"))
            info.simple_content = ctype.find(f"{XS}simpleContent") is not None
            for child in ctype.iter(f"{XS}element"):
                if child.get("name"):
                    info.elements[child.get("name") or ""] = _local(child.get("type"))
                elif child.get("ref"):
                    info.refs.add(_local(child.get("ref")))
            for attr in ctype.iter(f"{XS}attribute"):
                if attr.get("name"):
                    info.attributes.add(attr.get("name") or "")
            types[name] = info
    return types, top, groups


def qbo_unknown_names(type_name: str, value: Any, path: str = "") -> list[str]:
    """Every key of ``value`` that the XSD does not define for ``type_name`` (recursive)."""
    types, top, groups = qbo_types()
    if isinstance(value, list):
        out: list[str] = []
        for index, item in enumerate(value):
            out += qbo_unknown_names(type_name, item, f"{path}[{index}]")
        return out
    if not isinstance(value, dict):
        return []
    elements: dict[str, str] = {}
    attributes: set[str] = set()
    simple = False
    current: str | None = type_name
    while current and current in types:
        info = types[current]
        elements = {**info.elements, **elements}
        attributes |= info.attributes
        simple = simple or info.simple_content
        for ref in info.refs:
            for member in groups.get(ref, [ref]):
                elements.setdefault(member, top.get(member, member))
        current = info.base
    unknown = []
    for key, child in value.items():
        where = f"{path}.{key}" if path else key
        if key in elements:
            unknown += qbo_unknown_names(elements[key], child, where)
        elif key in attributes or (simple and key == "value"):
            continue
        else:
            unknown.append(where)
    return unknown
