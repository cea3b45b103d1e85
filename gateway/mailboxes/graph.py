"""A small Microsoft Graph client for one Exchange Online mailbox (where EWS is switched off, see
docs/exchange.md): app-only token by client credentials (msal), list new messages, fetch their
raw MIME (`$value`), move them or mark them read, send MIME (`sendMail` with a base64 body:
Graph's JSON form cannot set In-Reply-To/References), and check the setup.

Protocol facts this is built around: app-only tokens cannot use `/me`, so every path is
`/users/{mailbox}`; message ids change on move; moving while following `$skip` pages shifts
the pages, so callers re-query from the start instead of paging; `$filter` with `$orderby`
needs the ordered property first in the filter (else `InefficientFilter`); 429 and 503 carry
Retry-After. Every failure leaves as a `gateway.mailboxes.common` error with a one-line diagnosis.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import msal
import requests

from gateway import logs
from gateway.config import GraphSettings
from gateway.errors import MailboxAuthError, MailboxError, MailboxRequestError, MailboxUnavailable
from gateway.mailboxes.common import CheckResult, ItemRef, MailboxSender

WELL_KNOWN = {"inbox", "msgfolderroot", "sentitems", "drafts", "deleteditems", "junkemail",
              "archive"}
READ_PERMISSION = "Mail.ReadWrite"
SEND_PERMISSION = "Mail.Send"
# receivedDateTime must come first in $filter because it is the $orderby property.
UNREAD_FILTER = "receivedDateTime ge 1900-01-01T00:00:00Z and isRead eq false"

_TOKEN_ERRORS = {
    "AADSTS7000215": "client secret is wrong (AADSTS7000215): check graph.client_secret_env",
    "AADSTS7000222": "client secret has expired (AADSTS7000222): create a new one",
    "AADSTS700016": "application not found in the tenant (AADSTS700016): check graph.client_id",
    "AADSTS90002": "tenant not found (AADSTS90002): check graph.tenant_id",
    "AADSTS700027": "certificate not accepted (AADSTS700027): upload it to the app registration",
}


def _quiet_libraries() -> None:
    """httpx logs every URL at INFO and msal its token traffic; neither belongs in our log."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("msal").setLevel(logging.WARNING)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def token_roles(token: str) -> set[str] | None:
    """The application permissions (`roles`) inside an app-only JWT, or None if unreadable."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return {str(r) for r in roles} if isinstance(roles, list) else set()


def _graph_code(response: httpx.Response) -> str:
    """Graph's error code (e.g. ErrorAccessDenied): a fixed identifier, safe to log."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return ""
    code = error.get("code", "") if isinstance(error, dict) else ""
    return code if isinstance(code, str) and code.isascii() and len(code) < 80 else ""


def _json(response: httpx.Response, *keys: str) -> dict[str, Any]:
    """The JSON object of a Graph answer, which must hold `keys`; anything else (a proxy's
    HTML page, a truncated body) is a server fault to retry, not a crash."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or any(key not in body for key in keys):
        raise MailboxUnavailable(f"unexpected answer from Microsoft Graph (HTTP "
                                 f"{response.status_code}, not the expected JSON)")
    return body


def _verify(settings: GraphSettings) -> bool | str:
    if not settings.verify_tls:
        return False
    return str(settings.ca_bundle) if settings.ca_bundle else True


def _transport_error(exc: Exception, what: str) -> MailboxUnavailable:
    text = repr(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(exc, ssl.SSLError | requests.exceptions
                                                         .SSLError):
        return MailboxUnavailable(f"certificate error talking to {what}: the TLS certificate "
                                  "is not trusted (set graph.ca_bundle)")
    if isinstance(exc, httpx.TimeoutException | requests.exceptions.Timeout):
        return MailboxUnavailable(f"no answer from {what} in time (timeout)")
    return MailboxUnavailable(f"cannot reach {what} ({type(exc).__name__})")


class _TokenSession(requests.Session):
    """msal's HTTP client, passing our TLS choice with every request: a `verify` set only on
    the session loses to a REQUESTS_CA_BUNDLE in the environment (a requests quirk)."""

    def __init__(self, verify: bool | str, timeout: float) -> None:
        super().__init__()
        self._verify, self._timeout = verify, timeout

    def request(self, method: str, url: str, *args: Any,  # type: ignore[override]
                **kwargs: Any) -> requests.Response:
        kwargs.setdefault("verify", self._verify)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().request(method, url, *args, **kwargs)


class _Tokens:
    """Client-credentials tokens from msal (cached by msal until shortly before expiry). The
    secret is read from the environment at once, so a missing variable fails at start-up."""

    def __init__(self, settings: GraphSettings) -> None:
        self.settings = settings
        self._credential: Any = settings.client_secret()
        if settings.certificate_path is not None:
            self._credential = {"private_key_pfx_path": str(settings.certificate_path),
                                "passphrase": settings.certificate_password()}
        self._app: msal.ConfidentialClientApplication | None = None

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            s = self.settings
            self._app = msal.ConfidentialClientApplication(
                s.client_id, client_credential=self._credential,
                authority=f"{s.authority.rstrip('/')}/{s.tenant_id}",
                instance_discovery=False,  # the authority is trusted configuration
                http_client=_TokenSession(_verify(s), s.timeout_seconds))
        return self._app

    def scope(self) -> str:
        if self.settings.scope:
            return self.settings.scope
        parts = urlsplit(self.settings.base_url)
        return f"{parts.scheme}://{parts.netloc}/.default"

    def __call__(self) -> str:
        try:
            result = self._application().acquire_token_for_client(scopes=[self.scope()])
        except requests.RequestException as exc:
            raise _transport_error(exc, "the token endpoint") from None
        except ValueError:  # msal: the authority's OpenID configuration could not be read
            raise MailboxAuthError("the authority refused the tenant: check graph.tenant_id "
                                   "and graph.authority") from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if token:
            return str(token)
        raise MailboxAuthError(_token_diagnosis(result if isinstance(result, dict) else {}))


def _token_diagnosis(result: dict[str, Any]) -> str:
    description = str(result.get("error_description", ""))
    for code, text in _TOKEN_ERRORS.items():
        if code in description:
            return text
    error = str(result.get("error", "unknown_error"))
    return f"token request refused ({error[:40]}): check tenant_id, client_id and the secret"


class GraphClient:
    """One mailbox over Microsoft Graph with an app-only token."""

    source = "graph"

    def __init__(self, settings: GraphSettings, *, token: Callable[[], str] | None = None,
                 http: httpx.Client | None = None) -> None:
        _quiet_libraries()
        self.settings = settings
        self.mailbox = settings.mailbox
        self._token = token or _Tokens(settings)
        verify = _verify(settings)
        context: bool | ssl.SSLContext = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify)
        self._http = http or httpx.Client(timeout=settings.timeout_seconds, verify=context)
        self._base = f"{settings.base_url.rstrip('/')}/users/{quote(settings.mailbox, safe='@')}"
        self._folders: dict[str, str] = {}

    # --- HTTP -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, permission: str = READ_PERMISSION,
                 **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token()}", **kwargs.pop("headers", {})}
        try:
            response = self._http.request(method, self._base + path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, "Microsoft Graph") from None
        if response.is_success:
            return response
        raise self._diagnose(response, permission)

    @staticmethod
    def _diagnose(response: httpx.Response, permission: str) -> MailboxError:
        status, code = response.status_code, _graph_code(response)
        label = f"HTTP {status}{' ' + code if code else ''}"
        if status == 401:
            return MailboxAuthError(f"Graph refused the token ({label}): check tenant_id and "
                                    "client_id")
        if status == 403:
            return MailboxAuthError(
                f"access denied ({label}): the app registration needs the application "
                f"permission {permission} with admin consent, and an application access policy "
                "or RBAC for Applications must include this mailbox")
        if status == 429 or status >= 500:
            return MailboxUnavailable(f"Microsoft Graph is throttling or unavailable ({label})",
                                      retry_after(response))
        if status == 404:
            return MailboxRequestError(f"not found ({label}): check graph.mailbox and the folders")
        return MailboxRequestError(f"Graph refused the request ({label})")

    # --- folders ------------------------------------------------------------------------------

    def folder_id(self, path: str, *, create: bool = False) -> str:
        """The id of the folder at `path` (display names below the mailbox root, or below a
        well-known folder named first); with `create`, missing folders are created."""
        if path not in self._folders:
            self._folders[path] = self._resolve(path, create)
        return self._folders[path]

    def _resolve(self, path: str, create: bool) -> str:
        segments = [s for s in path.split("/") if s]
        if not segments:
            raise MailboxRequestError("empty folder path in the configuration")
        first = segments[0].lower()
        start, rest = (first, segments[1:]) if first in WELL_KNOWN else ("msgfolderroot", segments)
        folder = str(_json(self._request("GET", f"/mailFolders/{start}",
                                         params={"$select": "id"}), "id")["id"])
        for name in rest:
            folder = self._child(folder, name, path, create)
        return folder

    def _child(self, parent: str, name: str, path: str, create: bool) -> str:
        literal = name.replace("'", "''")
        found = _json(self._request(
            "GET", f"/mailFolders/{quote(parent, safe='')}/childFolders",
            params={"$filter": f"displayName eq '{literal}'", "$select": "id,displayName"}),
            "value")["value"]
        if found and isinstance(found[0], dict) and "id" in found[0]:
            return str(found[0]["id"])
        if not create:
            raise MailboxRequestError(f"folder {path!r} does not exist in the mailbox (postdesk "
                                      "graph check --create-folder creates it)")
        created = _json(self._request("POST", f"/mailFolders/{quote(parent, safe='')}/childFolders",
                                      json={"displayName": name}), "id")
        logs.event("graph.folder_created", folder=path)
        return str(created["id"])

    # --- MailboxClient ----------------------------------------------------------------------

    def find_new(self, limit: int) -> list[ItemRef]:
        """The first page of items still to take in, oldest first. Deliberately no nextLink:
        the caller moves items and asks again from the start."""
        folder = quote(self.folder_id(self.settings.folder), safe="")
        params = {"$select": "id,receivedDateTime", "$top": str(limit),
                  "$orderby": "receivedDateTime asc"}
        if not self.settings.processed_folder:
            params["$filter"] = UNREAD_FILTER
        page = _json(self._request("GET", f"/mailFolders/{folder}/messages", params=params),
                     "value")
        return [ItemRef(str(m["id"])) for m in page["value"] if isinstance(m, dict) and "id" in m]

    def fetch_mime(self, ref: ItemRef) -> bytes:
        return self._request("GET", f"/messages/{quote(ref.id, safe='')}/$value").content

    def finish(self, ref: ItemRef) -> None:
        path = f"/messages/{quote(ref.id, safe='')}"
        processed = self.settings.processed_folder
        if processed:
            target = self.folder_id(processed)
            try:
                self._request("POST", f"{path}/move", json={"destinationId": target})
            except MailboxRequestError:
                self._folders.pop(processed, None)  # the folder may be gone: look it up again
                raise
        else:
            self._request("PATCH", path, json={"isRead": True})

    # --- sending --------------------------------------------------------------------------------

    def send_mime(self, raw: bytes) -> None:
        """sendMail with the MIME as a base64 text body; Graph saves it to Sent Items."""
        self._request("POST", "/sendMail", permission=SEND_PERMISSION,
                      content=base64.b64encode(raw), headers={"Content-Type": "text/plain"})

    # --- check ----------------------------------------------------------------------------------

    def check(self, *, create_folder: bool = False, sending: bool = True) -> CheckResult:
        """Get a token, count the watched folder, verify (or create) the processed folder, and
        note permissions the token does not show (Mail.Send only when `sending`). A missing
        role is a note, not a failure: RBAC for Applications grants inside Exchange Online,
        where the token's `roles` claim does not show it; a real refusal is a 403 above."""
        try:
            folder = quote(self.folder_id(self.settings.folder), safe="")
            info = _json(self._request("GET", f"/mailFolders/{folder}", params={
                "$select": "totalItemCount,unreadItemCount"}))
            done = ""
            if self.settings.processed_folder:
                self.folder_id(self.settings.processed_folder, create=create_folder)
                done = f", processed folder {self.settings.processed_folder!r} found"
            missing = self._unlisted_permissions(sending)
        except MailboxError as exc:
            return CheckResult(False, f"graph: {exc}")
        note = (f"; note: the token lists no {', '.join(missing)} role (fine if granted through "
                "RBAC for Applications)") if missing else ""
        return CheckResult(True, f"graph: ok — folder {self.settings.folder!r} holds "
                                 f"{info.get('totalItemCount', '?')} item(s), "
                                 f"{info.get('unreadItemCount', '?')} unread{done}{note}")

    def _unlisted_permissions(self, sending: bool) -> list[str]:
        roles = token_roles(self._token())
        if roles is None:  # not a readable JWT: nothing to say
            return []
        needed = (READ_PERMISSION, SEND_PERMISSION) if sending else (READ_PERMISSION,)
        return [p for p in needed if p not in roles]

    def close(self) -> None:
        self._http.close()


class GraphSender(MailboxSender):
    """Sends outgoing mail through the mailbox (`outgoing.transport: graph`)."""

    @classmethod
    def from_settings(cls, settings: GraphSettings) -> GraphSender:
        return cls(GraphClient(settings), "Graph")
