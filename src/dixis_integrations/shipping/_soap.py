"""SOAP 1.1 envelopes built and read with ``xml.etree.ElementTree`` (private).

We do not use zeep: it needs each carrier's WSDL at run time, and carriers hand those
out on request (ELTA over FTP) or serve them only from production hosts. The operations
we call are few and flat, so a small builder over the standard library is enough, and
it keeps the exact bytes we send visible in tests.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TypeAlias

import httpx

from dixis_integrations.errors import ProviderError, TransientError

__all__ = [
    "SOAP_ENV",
    "Value",
    "child_text",
    "children",
    "envelope",
    "fault_error",
    "find",
    "parse_body",
    "to_dict",
]

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
Value: TypeAlias = (
    "str | int | Decimal | bool | date | datetime | Mapping[str, Value] | Sequence[Value] | None"
)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _fill(parent: ET.Element, name: str, value: Value, ns: str) -> None:
    if isinstance(value, Sequence) and not isinstance(value, str):
        for item in value:
            _fill(parent, name, item, ns)
        return
    element = ET.SubElement(parent, f"{{{ns}}}{name}")
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _fill(element, key, inner, ns)
    elif value is not None:
        element.text = _text(value)


def envelope(operation: str, params: Mapping[str, Value], namespace: str) -> bytes:
    """A SOAP 1.1 envelope calling ``operation`` with ``params`` in ``namespace``.

    Mappings become nested elements and sequences repeat the element; ``None`` becomes
    an empty element. Keys keep their order, so the bytes are deterministic.
    """
    root = ET.Element(f"{{{SOAP_ENV}}}Envelope")
    body = ET.SubElement(root, f"{{{SOAP_ENV}}}Body")
    call = ET.SubElement(body, f"{{{namespace}}}{operation}")
    for key, value in params.items():
        _fill(call, key, value, namespace)
    ET.register_namespace("soap", SOAP_ENV)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def find(element: ET.Element, name: str) -> ET.Element | None:
    """The first descendant (or the element itself) with local name ``name``."""
    for item in element.iter():
        if _local(item.tag) == name:
            return item
    return None


def children(element: ET.Element | None, name: str) -> list[ET.Element]:
    """Every descendant with local name ``name``, in document order."""
    if element is None:
        return []
    return [item for item in element.iter() if _local(item.tag) == name and item is not element]


def child_text(element: ET.Element | None, name: str, default: str = "") -> str:
    """The stripped text of the first descendant named ``name`` (``default`` if none)."""
    if element is None:
        return default
    found = find(element, name)
    if found is None or found.text is None:
        return default
    return found.text.strip()


def to_dict(element: ET.Element) -> dict[str, str]:
    """The direct children of ``element`` as ``{local name: text}`` (leaves only)."""
    return {_local(c.tag): (c.text or "").strip() for c in element if len(c) == 0}


def parse_body(response: httpx.Response, vendor: str) -> ET.Element:
    """The first element inside the SOAP Body.

    Raises:
        TransientError: the answer is not a SOAP envelope (a proxy page, a cut body).
        ProviderError: the answer is a SOAP Fault; ``vendor_code`` is its faultcode.
    """
    try:
        root = ET.fromstring(response.content)  # noqa: S314 - carrier answers, no DTDs
    except ET.ParseError:
        raise TransientError(
            "the answer is not well-formed XML", vendor=vendor, status_code=response.status_code
        ) from None
    body = find(root, "Body")
    if body is None or len(body) == 0:
        raise TransientError("the answer has no SOAP Body", vendor=vendor)
    first = body[0]
    if _local(first.tag) == "Fault":
        raise fault_error(first, vendor, response.status_code)
    return first


def fault_error(fault: ET.Element, vendor: str, status: int | None) -> ProviderError:
    """The typed error of a SOAP Fault: server faults are transient, client faults not."""
    code = child_text(fault, "faultcode")
    text = child_text(fault, "faultstring") or "SOAP fault"
    if code.endswith("Server"):
        return TransientError(text, vendor=vendor, status_code=status, vendor_code=code)
    return ProviderError(text, vendor=vendor, status_code=status, vendor_code=code)
