"""A python-telegram-bot ``BaseRequest`` on one aiohttp ``ClientSession`` (faster than httpx)."""

from __future__ import annotations

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

__all__ = ["AiohttpRequest"]

_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class AiohttpRequest(BaseRequest):
    """Sends PTB's requests through aiohttp: form-encoded bodies, multipart when files are attached.

    Args:
        connection_limit: most open connections to the Bot API at once.
        read_timeout: default seconds to wait for an answer (PTB adds the long-poll ``timeout``).
        connect_timeout: default seconds to open a connection.
        pool_timeout: default seconds to wait for a free connection from the pool.
        media_write_timeout: default seconds for uploads (aiohttp has no write timeout of its
            own, so uploads get it as their socket read allowance instead).
    """

    __slots__ = (
        "_connect_timeout",
        "_connection_limit",
        "_media_write_timeout",
        "_pool_timeout",
        "_read_timeout",
        "_session",
    )

    def __init__(
        self,
        *,
        connection_limit: int = 256,
        read_timeout: float | None = 10.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 5.0,
        media_write_timeout: float | None = 30.0,
    ) -> None:
        self._connection_limit = connection_limit
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._connection_limit, ttl_dns_cache=300, keepalive_timeout=60
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.USER_AGENT},
                skip_auto_headers=("Accept-Encoding",),
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _timeout(
        self,
        read: ODVInput[float],
        connect: ODVInput[float],
        pool: ODVInput[float],
        uploading: bool,
    ) -> aiohttp.ClientTimeout:
        read_s = self._read_timeout if isinstance(read, DefaultValue) else read
        if uploading and isinstance(read, DefaultValue) and self._media_write_timeout:
            read_s = max(read_s or 0.0, self._media_write_timeout)
        connect_s = self._connect_timeout if isinstance(connect, DefaultValue) else connect
        pool_s = self._pool_timeout if isinstance(pool, DefaultValue) else pool
        waiting = None if connect_s is None or pool_s is None else connect_s + pool_s
        return aiohttp.ClientTimeout(
            total=None, connect=waiting, sock_connect=connect_s, sock_read=read_s
        )

    @staticmethod
    def _body(request_data: RequestData | None) -> tuple[object, dict[str, str] | None]:
        if request_data is None:
            return None, None
        if not request_data.contains_files:
            return request_data.url_encoded_parameters().encode(), _FORM
        form = aiohttp.FormData(quote_fields=False)
        for name, value in request_data.json_parameters.items():
            form.add_field(name, value)
        for name, (filename, content, mimetype) in request_data.multipart_data.items():
            form.add_field(name, content, filename=filename, content_type=mimetype)
        return form, None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        body, headers = self._body(request_data)
        uploading = bool(request_data and request_data.contains_files)
        timeout = self._timeout(read_timeout, connect_timeout, pool_timeout, uploading)
        try:
            async with session.request(
                method, url, data=body, headers=headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TimedOut(f"aiohttp: {type(exc).__name__}") from exc
        except aiohttp.ClientError as exc:
            # Not ``str(exc)``: aiohttp may quote the URL, and the URL carries the bot token.
            raise NetworkError(f"aiohttp.{type(exc).__name__}") from exc
