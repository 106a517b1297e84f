"""Hostile files built by hand inside the tests: .xlsx parts with a DOCTYPE, forged ZIPs."""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_RNS = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}.sharedStrings+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    f'.org/package/2006/relationships"><Relationship Id="rId1" Type="{_REL}/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    f'.org/package/2006/relationships"><Relationship Id="rId1" Type="{_REL}/worksheet" '
    f'Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{_REL}/sharedStrings" '
    'Target="sharedStrings.xml"/></Relationships>'
)
XXE = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
#: Ten levels of ten: `&lol9;` would expand to 10**9 "lol"s (3 GB).
LAUGHS = (
    '<!DOCTYPE x [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol;" if i == 1 else f"&lol{i - 1};") * 10}">' for i in range(1, 10)
    )
    + "]>"
)


def workbook_xml(doctype: str = "", entity: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<workbook {NS} {_RNS}><sheets>'
        f'<sheet name="Juli{entity}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )


def sheet_xml(rows: str = "", doctype: str = "", entity: str = "") -> str:
    body = rows or (
        '<row r="1"><c r="A1" t="s"><v>0</v></c>'
        f'<c r="B1" t="inlineStr"><is><t>teks{entity}</t></is></c></row>'
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<worksheet {NS}><sheetData>{body}'
        "</sheetData></worksheet>"
    )


def shared_strings_xml(doctype: str = "", entity: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<sst {NS} count="1" uniqueCount="1">'
        f"<si><t>nama{entity}</t></si></sst>"
    )


def handmade_xlsx(path: Path, **parts: str) -> Path:
    """A minimal .xlsx written part by part; `workbook`, `sheet`, `strings` override."""
    members = {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": ROOT_RELS,
        "xl/_rels/workbook.xml.rels": WORKBOOK_RELS,
        "xl/workbook.xml": parts.get("workbook", workbook_xml()),
        "xl/worksheets/sheet1.xml": parts.get("sheet", sheet_xml()),
        "xl/sharedStrings.xml": parts.get("strings", shared_strings_xml()),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def forged_zip(
    path: Path, members: Mapping[str, Iterable[bytes]], declared: Mapping[str, int]
) -> Path:
    """A ZIP written byte by byte whose local and central headers state `declared[name]`
    as the uncompressed size of `name` (the true size for the others)."""
    central = []
    with path.open("wb") as out:
        for name, pieces in members.items():
            packer = zlib.compressobj(9, zlib.DEFLATED, -15)
            crc, size, data = 0, 0, bytearray()
            for piece in pieces:
                crc = zlib.crc32(piece, crc)
                size += len(piece)
                data += packer.compress(piece)
            data += packer.flush()
            stated = declared.get(name, size)
            encoded = name.encode()
            offset = out.tell()
            out.write(
                struct.pack(
                    "<IHHHHHIIIHH",
                    0x04034B50,
                    20,
                    0,
                    8,
                    0,
                    0,
                    crc,
                    len(data),
                    stated,
                    len(encoded),
                    0,
                )  # fmt: skip
                + encoded
            )
            out.write(data)
            central.append((encoded, crc, len(data), stated, offset))
        start = out.tell()
        for encoded, crc, compressed, stated, offset in central:
            out.write(
                struct.pack(
                    "<IHHHHHHIIIHHHHHII",
                    0x02014B50,
                    20,
                    20,
                    0,
                    8,
                    0,
                    0,
                    crc,
                    compressed,
                    stated,
                    len(encoded),
                    0,
                    0,
                    0,
                    0,
                    0,
                    offset,
                )  # fmt: skip
                + encoded
            )
        size = out.tell() - start
        out.write(
            struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), size, start, 0)
        )
    return path


def standard_parts() -> dict[str, list[bytes]]:
    """The parts of `handmade_xlsx` as byte pieces for `forged_zip`."""
    return {
        "[Content_Types].xml": [CONTENT_TYPES.encode()],
        "_rels/.rels": [ROOT_RELS.encode()],
        "xl/_rels/workbook.xml.rels": [WORKBOOK_RELS.encode()],
        "xl/workbook.xml": [workbook_xml().encode()],
        "xl/sharedStrings.xml": [shared_strings_xml().encode()],
    }
