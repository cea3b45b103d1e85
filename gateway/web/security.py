"""Security of the web surface: response headers on every answer (a CSP without inline script
or style, no referrer, no framing, no sniffing, no caching of pages that hold a key), and the
CSRF check of the status page's forms: a form token signed over the page's token and the time
it was issued, plus Origin and Sec-Fetch-Site (when a browser sends them) against
`web.public_url`."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
FORM_TOKEN_SECONDS = 4 * 3600  # a form left open longer asks for a reload


class SecurityHeaders:
    """ASGI middleware: HEADERS on every response; `Cache-Control: no-store` on all but the
    static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name == "Content-Security-Policy" and name in headers:
                        continue  # a page with its own (the report's style hashes) keeps it
                    headers[name] = value
                headers["Cache-Control"] = "public, max-age=3600" if static else "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def form_token(key: bytes, page_token: str, now: float | None = None) -> str:
    """A token for the forms of one status page: `<issued>.<mac>`."""
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_mac(key, page_token, issued)}"


def form_token_valid(key: bytes, page_token: str, value: str, now: float | None = None) -> bool:
    issued_text, _, mac = value.partition(".")
    if not issued_text.isdigit() or not mac:
        return False
    issued = int(issued_text)
    age = (time.time() if now is None else now) - issued
    if not 0 <= age <= FORM_TOKEN_SECONDS:
        return False
    return hmac.compare_digest(mac, _mac(key, page_token, issued))


def _mac(key: bytes, page_token: str, issued: int) -> str:
    message = f"status-form\x00{page_token}\x00{issued}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def origin_allowed(origin: str | None, fetch_site: str | None, public_url: str) -> bool:
    """Refuse a form sent from another site: an Origin other than the public URL's, or a
    browser's `Sec-Fetch-Site` saying cross-site or same-site. Under `Referrer-Policy:
    no-referrer` browsers send `Origin: null` even for the page's own forms, and old browsers
    or scripts send neither header: those are left to the form token, which only a holder of
    the page's token can have."""
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    if origin is None or origin == "null":
        return True
    want = urlsplit(public_url)
    return origin.rstrip("/") == f"{want.scheme}://{want.netloc}"
