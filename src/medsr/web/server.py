"""`medsr serve`'s HTTP server: uvicorn with the connection limits of `Settings`.

uvicorn closes idle keep-alive connections and can cap connections (503 beyond
`max_connections`), but waits forever for the headers of a request: a client sending one
byte a minute (slowloris) would hold a connection, and enough of them every slot.
`HeaderTimeoutProtocol` closes a connection whose request headers are not complete
`header_timeout_s` after it opened or after its previous answer. A body that stalls is
answered 408 by the app (`app.Guard`, `body_timeout_s`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from medsr.web.limits import Settings

MAX_HEADER_BYTES = 64 * 1024


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers take longer than
    `header_timeout_s` (a class attribute: `protocol_with_timeout` sets it)."""

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.logger.info(
                "closing a connection: request headers took over %gs", self.header_timeout_s
            )
            self.transport.close()

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._waiting_for_headers():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._waiting_for_headers():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol_with_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    """`HeaderTimeoutProtocol` with its header timeout set to `seconds`."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": seconds})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options that enforce `settings`' connection limits."""
    return {
        "http": protocol_with_timeout(settings.header_timeout_s),
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }
