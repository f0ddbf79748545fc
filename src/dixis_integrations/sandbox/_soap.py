"""Shared helpers of the carrier emulators (private): SOAP envelopes, faults, labels.

Written against the wire formats only, never against adapter code: requests are read by
local element name, answers are built as the vendors' ASMX services shape them, and
labels are small but valid PDF documents and ZPL text.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

import httpx

from dixis_integrations.sandbox.kit import xml_response

__all__ = [
    "minimal_pdf",
    "read_soap",
    "soap_fault",
    "soap_response",
    "zpl_label",
]

_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _to_python(element: ET.Element) -> Any:
    if len(element) == 0:
        return (element.text or "").strip()
    out: dict[str, Any] = {}
    for child in element:
        name = _local(child.tag)
        value = _to_python(child)
        if name in out:
            if not isinstance(out[name], list):
                out[name] = [out[name]]
            out[name].append(value)
        else:
            out[name] = value
    return out


def read_soap(request: httpx.Request) -> tuple[str, dict[str, Any]] | None:
    """``(operation, parameters)`` of a SOAP 1.1 call; ``None`` if it is not one.

    Repeated elements become lists; leaves become stripped strings.
    """
    try:
        root = ET.fromstring(request.content)  # noqa: S314 - our own test clients
    except ET.ParseError:
        return None
    body = next((e for e in root.iter() if _local(e.tag) == "Body"), None)
    if body is None or len(body) == 0:
        return None
    call = body[0]
    params = _to_python(call)
    return _local(call.tag), params if isinstance(params, dict) else {}


def _xml(name: str, value: Any) -> str:
    if isinstance(value, Mapping):
        inner = "".join(_xml(k, v) for k, v in value.items())
        return f"<{name}>{inner}</{name}>"
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return "".join(_xml(name, item) for item in value)
    if value is None:
        return f"<{name} />"
    return f"<{name}>{escape(str(value))}</{name}>"


def soap_response(operation: str, result: Mapping[str, Any], namespace: str) -> httpx.Response:
    """An ASMX-style answer: ``<{op}Response><{op}Result>...</{op}Result></{op}Response>``."""
    inner = "".join(_xml(k, v) for k, v in result.items())
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{_ENV}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soap:Body>'
        f'<{operation}Response xmlns="{namespace}"><{operation}Result>{inner}'
        f"</{operation}Result></{operation}Response></soap:Body></soap:Envelope>"
    )
    return xml_response(200, body)


def soap_fault(code: str, text: str, status: int = 500) -> httpx.Response:
    """A SOAP 1.1 Fault (``soap:Client`` or ``soap:Server``), as ASMX sends it."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{_ENV}"><soap:Body><soap:Fault>'
        f"<faultcode>soap:{escape(code)}</faultcode><faultstring>{escape(text)}</faultstring>"
        "<detail /></soap:Fault></soap:Body></soap:Envelope>"
    )
    return xml_response(status, body)


def minimal_pdf(text: str) -> bytes:
    """A valid one-page PDF 1.4 showing ``text`` (ASCII) in Helvetica, with a real xref."""
    safe = text.encode("ascii", "replace").decode().replace("\\", "\\\\")
    safe = safe.replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 14 Tf 36 260 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 288 432] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def zpl_label(tracking_number: str, lines: Sequence[str] = ()) -> str:
    """A 10x15 cm ZPL label with the tracking number as text and a Code 128 barcode."""
    body = "".join(f"^FO40,{60 + 40 * i}^A0N,30,30^FD{line}^FS" for i, line in enumerate(lines))
    return f"^XA^PW812^LL1218{body}^FO40,700^BY3^BCN,200,Y,N,N^FD{tracking_number}^FS^XZ"
