"""The Dukcapil verify-by-element wire format, shared by the client and the sandbox.

One place knows the response codes, the verdict strings (`"Sesuai (100)"`) and the page
object around them, so the client and the simulator cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from adapters.base import FieldVerdict

#: Path of the verify call below the base URL; `{id_lembaga}` is the institution id.
VERIFY_PATH: Final = "/dukcapil/get_json/{id_lembaga}/CALL_VERIFY_BY_ELEMEN"

#: Body keys that carry the credentials and the threshold, never an element.
CREDENTIAL_KEYS: Final = ("USER_ID", "PASSWORD", "IP_USER")
THRESHOLD_KEY: Final = "TRESHOLD"  # sic: the service spells it this way
RESERVED_KEYS: Final = frozenset({*CREDENTIAL_KEYS, THRESHOLD_KEY})

#: Every `RESPONSE_CODE` of the service, with the usual `RESPON` text (which varies in spelling:
#: match on codes only).
RESPONSE_TEXT: Final[Mapping[str, str]] = {
    "03": "Login gagal",
    "04": "IP client tidak terdaftar",
    "05": "Kuota akses hari ini telah habis",
    "06": "Akses di luar jam yang diizinkan",
    "07": "Parameter tidak lengkap",
    "08": "NIK tidak dapat diproses",
    "09": "User ID, password atau IP kosong",
    "10": "IP client tidak terdaftar",
    "11": "Data Ditemukan, Meninggal Dunia",
    "12": "Data Ganda",
    "13": "Data Tidak Ditemukan",
    "14": "NIK tidak aktif",
    "15": "NIK tidak sesuai format Dukcapil",
    "16": "Lembaga tidak aktif",
    "17": "User tidak aktif",
}

#: Codes that judge the record itself: returned as a `VerifyAnswer`, never raised.
RECORD_CODES: Final = frozenset({"08", "11", "12", "13", "14", "15"})
QUOTA_CODE: Final = "05"
HOURS_CODE: Final = "06"
INCOMPLETE_CODE: Final = "07"
#: Login, IP, institution and user failures: the connector must stop.
FATAL_CODES: Final = frozenset({"03", "04", "09", "10", "16", "17"})

_VERDICT = re.compile(r"^\s*(tidak\s*sesuai|sesuai)\s*(?:\(\s*(\d{1,3})\s*\))?\s*$", re.I)


def parse_verdict(value: object) -> FieldVerdict | None:
    """`"Sesuai (100)"` -> match with score 100; None when `value` is not a verdict at all."""
    if not isinstance(value, str):
        return None
    found = _VERDICT.match(value)
    if found is None:
        return None
    match = not found.group(1).lower().startswith("tidak")
    score = int(found.group(2)) if found.group(2) is not None else None
    if score is not None and score > 100:
        return None
    return FieldVerdict(match=match, score=score)


def format_verdict(match: bool, score: int | None = None) -> str:
    """The service's spelling of a verdict: `"Sesuai"`, `"Tidak Sesuai (59)"`."""
    text = "Sesuai" if match else "Tidak Sesuai"
    return text if score is None else f"{text} ({score})"


def normalise_code(value: object) -> str | None:
    """`13`, `"13"`, `" 5 "` -> two-digit text; None for anything that is not a code."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 2:
        return None
    return text.zfill(2)


@dataclass(frozen=True, slots=True)
class Page:
    """The page object every answer comes in; only `content` is required."""

    content: list[Mapping[str, Any]]
    quota_left: int | None = None
    last_page: bool | None = None
    number_of_elements: int | None = None
    total_elements: int | None = None
    number: int | None = None
    size: int | None = None


def _optional_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_page(data: object) -> Page:
    """Check the shape of a decoded answer; `ValueError` says (without any value) what is wrong.

    `content` must be a non-empty list whose first item is an object. The counters are read
    leniently: a missing or malformed one is None.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"answer is a JSON {type(data).__name__}, not an object")
    content = data.get("content")
    if not isinstance(content, list):
        raise ValueError("answer has no 'content' list")
    if not content:
        raise ValueError("'content' is empty")
    if not all(isinstance(item, Mapping) for item in content):
        raise ValueError("'content' holds something other than objects")
    last_page = data.get("lastPage")
    return Page(
        content=content,
        quota_left=_optional_int(data.get("quotaLimiter")),
        last_page=last_page if isinstance(last_page, bool) else None,
        number_of_elements=_optional_int(data.get("numberOfElements")),
        total_elements=_optional_int(data.get("totalElements")),
        number=_optional_int(data.get("number")),
        size=_optional_int(data.get("size")),
    )


def make_page(item: Mapping[str, Any], quota_left: int | None) -> dict[str, Any]:
    """The page object around one `content` item, as the service sends it."""
    return {
        "content": [dict(item)],
        "lastPage": True,
        "numberOfElements": 1,
        "totalElements": 1,
        "number": 0,
        "size": 1,
        "quotaLimiter": quota_left,
    }


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """HTTP `Retry-After` as seconds from `now` (aware): delay-seconds or an HTTP-date.

    A date in the past gives 0; anything unreadable gives None.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())
