"""Open Builder's SkillPayload → typed values. Bad payloads raise ``BadPayload`` (HTTP 400).

What we read (Kakao i Open Builder, "스킬 > SkillPayload"; see ``tests/fakes/kakao.py`` for the
sources): ``userRequest.user.id`` (the botUserKey: one per person and bot) and its
``properties.plusfriendUserKey`` / ``isFriend``, ``userRequest.utterance``,
``userRequest.callbackUrl`` (only on blocks with callbacks enabled), ``bot.id``,
``action.clientExtra`` (a quick reply or button with ``action: "block"`` carries its
``extra`` here) and ``action.params`` (plugins: the secure image plugin's ``secureimage``,
a location given as ``{"latitude": …, "longitude": …}``, a deep link's ``start``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from conversations.incoming import Command, Inbound, Incoming, Location, Picked, Text, Unsupported

__all__ = [
    "CHANNEL",
    "TEXT_MAX",
    "BadPayload",
    "PhotoUrls",
    "Skill",
    "parse_skill",
]

CHANNEL = "kakao"
TEXT_MAX = 5000
USER_ID_MAX = 128
_CHOICE_RE = re.compile(r"^[\x21-\x7e]{1,48}$")
_START_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_COMMAND_RE = re.compile(r"^/([A-Za-z_]{1,32})(?:\s+(\S.*))?$", re.DOTALL)
_URL_RE = re.compile(r"https?://[^\s,()\"']+")
_COORDS_RE = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*$")
_ID_RE = re.compile(r"^[\x21-\x7e]{1,128}$")
MAX_PHOTOS = 1  # one photo per proposal: the first of the plugin's list


class BadPayload(ValueError):
    """Not a SkillPayload we can take."""


@dataclass(frozen=True, slots=True)
class PhotoUrls:
    """Pictures sent through the secure image plugin: URLs to fetch (with limits) first."""

    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Skill:
    """One skill request: who, what, and how to answer."""

    inbound: Inbound
    photo: PhotoUrls | None
    bot_id: str | None
    callback_url: str | None
    plusfriend_user_key: str | None
    is_friend: bool | None
    too_long: bool = False


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable()).strip()


def _json_param(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _photo(params: dict[str, Any]) -> PhotoUrls | None:
    """The secure image plugin's value: ``{"secureUrls": "List(https://…, …)", …}`` as a JSON
    string (or already an object); a plain URL list is taken too."""
    raw = params.get("secureimage", params.get("image"))
    if raw is None:
        return None
    value = _json_param(raw)
    if isinstance(value, dict):
        value = value.get("secureUrls") or value.get("privateUrls") or ""
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    urls = tuple(_URL_RE.findall(str(value)))[:MAX_PHOTOS]
    return PhotoUrls(urls) if urls else None


def _location(params: dict[str, Any], utterance: str) -> Location | None:
    value = _json_param(params.get("location"))
    lat = lon = None
    if isinstance(value, dict):
        lat, lon = value.get("latitude", value.get("lat")), value.get("longitude", value.get("lng"))
    elif (found := _COORDS_RE.match(utterance)) is not None:
        lat, lon = float(found.group(1)), float(found.group(2))
    if lat is None or lon is None:
        return None
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return Location(lat, lon)


def _payload(action: dict[str, Any], utterance: str) -> tuple[Incoming, bool]:
    extra = _dict(action.get("clientExtra"))
    params = _dict(action.get("params"))
    choice = extra.get("c")
    if isinstance(choice, str) and _CHOICE_RE.match(choice):
        return Picked(choice), False
    start = extra.get("start", params.get("start"))
    if isinstance(start, str) and (start == "" or _START_RE.match(start)):
        return Command("start", start), False
    location = _location(params, utterance)
    if location is not None:
        return location, False
    if len(utterance) > TEXT_MAX:
        return Text(utterance[:TEXT_MAX]), True
    text = clean_text(utterance)
    if not text:
        return Unsupported("empty"), False
    command = _COMMAND_RE.match(text)
    if command:
        return Command(command.group(1).lower(), (command.group(2) or "").strip()), False
    return Text(text), False


def parse_skill(data: Any) -> Skill:
    """A SkillPayload (decoded JSON) → ``Skill``; raises ``BadPayload``."""
    if not isinstance(data, dict):
        raise BadPayload("not an object")
    request = _dict(data.get("userRequest"))
    user = _dict(request.get("user"))
    user_id = user.get("id")
    if not isinstance(user_id, str) or not _ID_RE.match(user_id) or len(user_id) > USER_ID_MAX:
        raise BadPayload("no user id")
    utterance = request.get("utterance", "")
    if not isinstance(utterance, str):
        raise BadPayload("utterance is not text")
    action = _dict(data.get("action"))
    payload, too_long = _payload(action, utterance)
    photo = _photo(_dict(action.get("params")))
    properties = _dict(user.get("properties"))
    plusfriend = properties.get("plusfriendUserKey")
    is_friend = properties.get("isFriend")
    callback = request.get("callbackUrl")
    bot_id = _dict(data.get("bot")).get("id")
    lang = request.get("lang")
    return Skill(
        inbound=Inbound(
            channel=CHANNEL,
            user_id=user_id,
            address=user_id,
            payload=payload,
            locale=lang if isinstance(lang, str) and len(lang) <= 16 else None,
        ),
        photo=photo,
        bot_id=bot_id if isinstance(bot_id, str) else None,
        callback_url=callback if isinstance(callback, str) and _URL_RE.match(callback) else None,
        plusfriend_user_key=plusfriend if isinstance(plusfriend, str) else None,
        is_friend=is_friend if isinstance(is_friend, bool) else None,
        too_long=too_long,
    )
