"""Pictures on Kakao: photos fetched from the secure image plugin's URLs (host allow-list,
size and time limits, no redirects) and our charts served from our own URL for
``simpleImage``. Files only, under the data directory: no database."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from bots.kakao.settings import KakaoSettings
from core.messages import Image
from core.webchat import sniff_image

__all__ = ["MEDIA_PATH", "Media", "PhotoRejected"]

MEDIA_PATH = "/kakao/media/{name}"
_NAME_RE = re.compile(r"^[0-9a-f]{32}\.png$")


class PhotoRejected(Exception):
    """``code``: ``host`` | ``too_large`` | ``bad_type`` | ``unavailable``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Media:
    def __init__(self, *, settings: KakaoSettings, data_dir: Path, public_url: str | None):
        self.settings = settings
        self.photos = data_dir / "uploads" / "kakao"
        self.charts = data_dir / "kakao-media"
        self.public_url = public_url.rstrip("/") if public_url else None
        self._session: aiohttp.ClientSession | None = None

    # --- photos from the plugin --------------------------------------------------------
    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.settings.image_timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def fetch_photo(self, url: str) -> str:
        """Download one picture and keep it; returns its reference ``kakao:<id>``."""
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname or not (
            self.settings.image_host_allowed(parts.hostname)
        ):
            raise PhotoRejected("host")
        limit = self.settings.image_max_bytes
        try:
            async with self._http().get(url, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise PhotoRejected("unavailable")
                if resp.content_length is not None and resp.content_length > limit:
                    raise PhotoRejected("too_large")
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise PhotoRejected("too_large")
                    chunks.append(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PhotoRejected("unavailable") from exc
        data = b"".join(chunks)
        kind = sniff_image(data)
        if kind is None:
            raise PhotoRejected("bad_type")
        name = f"{secrets.token_hex(16)}.{kind[1]}"
        await asyncio.to_thread(_write, self.photos / name, data)
        return f"kakao:{name.split('.')[0]}"

    # --- charts and other pictures we made ------------------------------------------
    async def url_for(self, image: Image) -> str | None:
        """A URL Kakao can fetch for ``image``: its own when it has one, ours for PNG bytes
        (only with ``GONGNON_PUBLIC_URL``: Kakao must reach it)."""
        if image.ref and image.ref.startswith("https://"):
            return image.ref
        if image.png is None or self.public_url is None:
            return None
        name = f"{hashlib.sha256(image.png).hexdigest()[:32]}.png"
        path = self.charts / name
        if not path.exists():
            await asyncio.to_thread(_write, path, image.png)
        return self.public_url + MEDIA_PATH.format(name=name)

    def chart_path(self, name: str) -> Path | None:
        if not _NAME_RE.match(name):
            return None
        path = self.charts / name
        return path if path.is_file() else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
