"""Results belong to the browser that made them (issue 13: result ids are not bearer tokens).

`ClientCookie` gives every client a random id in an `HttpOnly; SameSite=Strict` cookie
(`medsr_client`, 256 random bits) the first time it calls, and puts the id in the ASGI scope.
Jobs and results record the id of the client that started them; another client asking for
one gets the 404 of an unknown id, so a leaked result URL (a log, a screenshot, a shared
link) shows nothing to anyone else. Page scripts cannot read the cookie (HttpOnly) and
other sites' pages do not send it (SameSite=Strict). A client without cookies (curl without
`-c`/`-b`) still gets its answer, but cannot fetch a result again by id.
"""

from __future__ import annotations

import hmac
import re
import secrets
from http.cookies import CookieError, SimpleCookie

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "medsr_client"
SCOPE_KEY = "medsr.client"
_VALID = re.compile(r"[A-Za-z0-9_-]{43}")


def new_client_id() -> str:
    return secrets.token_urlsafe(32)  # 43 characters


def _cookie_value(header: bytes) -> str | None:
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(header.decode("latin-1"))
    except CookieError:
        return None
    morsel = cookies.get(COOKIE)
    value = morsel.value if morsel is not None else None
    return value if value is not None and _VALID.fullmatch(value) else None


class ClientCookie:
    """ASGI middleware: read or issue the client cookie (module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        client = _cookie_value(headers.get(b"cookie", b""))
        issued = client is None
        client = client or new_client_id()
        scope[SCOPE_KEY] = client

        async def with_cookie(message: Message) -> None:
            if issued and message["type"] == "http.response.start":
                cookie = f"{COOKIE}={client}; Path=/; HttpOnly; SameSite=Strict"
                headers = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_cookie)


def client_of(connection: HTTPConnection) -> str:
    """The client id `ClientCookie` put in the scope of this request."""
    return str(connection.scope[SCOPE_KEY])


def same_client(owner: str, client: str) -> bool:
    """True when `client` is `owner` (compared in constant time)."""
    return hmac.compare_digest(owner.encode(), client.encode())
