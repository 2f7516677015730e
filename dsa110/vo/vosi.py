"""VOSI 1.1 documents: the service's capabilities and its availability.

Registries harvest ``capabilities`` to learn that a URL is a Simple Cone Search (standard
id ``ivo://ivoa.net/std/ConeSearch``), its largest radius and row limit and a test
query; monitors poll ``availability``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

XSI = "http://www.w3.org/2001/XMLSchema-instance"


@dataclass(frozen=True)
class ConeService:
    """One cone search this server answers, for the capabilities document."""

    access_url: str
    description: str
    max_sr_deg: float
    max_records: int
    test_ra_deg: float
    test_dec_deg: float
    test_sr_deg: float = 0.1


def capabilities(services: Sequence[ConeService], capabilities_url: str, availability_url: str) -> bytes:
    cones = "".join(
        f"""  <capability standardID="ivo://ivoa.net/std/ConeSearch" xsi:type="cs:ConeSearch">
    <description>{escape(s.description)}</description>
    <interface xsi:type="vs:ParamHTTP" role="std">
      <accessURL use="base">{escape(s.access_url)}</accessURL>
    </interface>
    <maxSR>{s.max_sr_deg:g}</maxSR>
    <maxRecords>{s.max_records}</maxRecords>
    <verbosity>true</verbosity>
    <testQuery><ra>{s.test_ra_deg:.6f}</ra><dec>{s.test_dec_deg:.6f}</dec><sr>{s.test_sr_deg:g}</sr></testQuery>
  </capability>
"""
        for s in services
    )
    vosi = "".join(
        f"""  <capability standardID="ivo://ivoa.net/std/VOSI#{kind}">
    <interface xsi:type="vs:ParamHTTP">
      <accessURL use="full">{escape(url)}</accessURL>
    </interface>
  </capability>
"""
        for kind, url in (("capabilities", capabilities_url), ("availability", availability_url))
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0"'
        f' xmlns:xsi="{XSI}" xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0"'
        ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
        ' xmlns:cs="http://www.ivoa.net/xml/ConeSearch/v1.0">\n'
        f"{cones}{vosi}</vosi:capabilities>\n"
    ).encode()


def availability(available: bool, note: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">\n'
        f"  <vosi:available>{'true' if available else 'false'}</vosi:available>\n"
        f"  <vosi:note>{escape(note)}</vosi:note>\n"
        "</vosi:availability>\n"
    ).encode()
