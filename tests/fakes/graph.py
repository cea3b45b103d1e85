"""A small Microsoft Graph mail endpoint plus an Entra ID token endpoint for tests, answering in
the shapes of Microsoft's published examples: OpenID configuration and client-credentials token
(msal talks to it for real), `/users/{id}/mailFolders/...`, message lists with `value` and
`@odata.nextLink` (`$skip` paging, newest first unless `$orderby`), `$value` MIME, `move`
(201, new id), PATCH `isRead`, `sendMail` with base64 MIME (202), and the documented errors:
`/me` with an app-only token, missing permission (403 ErrorAccessDenied), `InefficientFilter`
for a `$filter` that does not start with the `$orderby` property, 429 with Retry-After.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlencode

from tests.fakes.https import Request, Response

WELL_KNOWN = ("msgfolderroot", "inbox", "sentitems", "drafts", "deleteditems")
NAMES = {"msgfolderroot": "Top of Information Store", "inbox": "Inbox",
         "sentitems": "Sent Items", "drafts": "Drafts", "deleteditems": "Deleted Items"}
_Handler = Callable[[Request], Response]


@dataclass
class GraphFolder:
    id: str
    name: str
    parent: str | None
    well_known: str | None = None


@dataclass
class GraphMessage:
    id: str
    folder: str
    mime: bytes
    received: datetime
    is_read: bool = False


def _b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _json(status: int, payload: object, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(),
                    {"Content-Type": "application/json", **(headers or {})})


def graph_error(status: int, code: str, message: str,
                headers: dict[str, str] | None = None) -> Response:
    """A Graph error body as documented: {"error": {"code", "message", "innerError"}}."""
    return _json(status, {"error": {"code": code, "message": message, "innerError": {
        "date": "2026-03-02T08:00:00", "request-id": "6d1f2c1e-0000-4000-8000-000000000001"}}},
        headers)


def throttled(seconds: int) -> Response:
    return graph_error(429, "ApplicationThrottled",
                       "Application is over its MailboxConcurrency limit.",
                       {"Retry-After": str(seconds)})


@dataclass
class FakeGraph:
    """Mailbox state, issued tokens and the request handler (`__call__`) for `FakeServer`."""

    mailbox: str
    tenant: str = "2f0c6a6e-3f3c-4c1b-9b59-1a2b3c4d5e6f"
    client_id: str = "0b5c2e1d-7a9f-4e8c-b6d3-9f8e7d6c5b4a"
    client_secret: str = "geheim~secret"
    roles: tuple[str, ...] = ("Mail.ReadWrite", "Mail.Send")
    base: str = ""  # the server's URL, set by the test once the port is known
    folders: dict[str, GraphFolder] = field(default_factory=dict)
    messages: dict[str, GraphMessage] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)  # of every message list
    sent: list[bytes] = field(default_factory=list)
    faults: dict[str, list[Response | None]] = field(default_factory=dict)
    outage: Response | None = None
    tokens: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        root = self._add("Top of Information Store", None, "msgfolderroot")
        for key in WELL_KNOWN[1:]:
            self._add(NAMES[key], root.id, key)

    # --- test helpers ---------------------------------------------------------------------

    def folder(self, key: str) -> GraphFolder:
        return next(f for f in self.folders.values() if key in (f.id, f.well_known, f.name))

    def add_folder(self, name: str, parent: str = "msgfolderroot") -> GraphFolder:
        return self._add(name, self.folder(parent).id, None)

    def deliver(self, mime: bytes, folder: str = "inbox", is_read: bool = False) -> GraphMessage:
        received = datetime(2026, 3, 2, 8, 0, tzinfo=UTC) + timedelta(seconds=len(self.messages))
        message = GraphMessage(self._new_id(), self.folder(folder).id, mime, received, is_read)
        self.messages[message.id] = message
        return message

    def in_folder(self, key: str) -> list[GraphMessage]:
        folder_id = self.folder(key).id
        return sorted((m for m in self.messages.values() if m.folder == folder_id),
                      key=lambda m: m.received)

    def fail(self, route: str, *responses: Response | None) -> None:
        """The next requests of `route` (token, list, value, move, patch, sendMail, folder)
        get these answers instead of the real one; None lets one request through."""
        self.faults.setdefault(route, []).extend(responses)

    def count(self, route: str) -> int:
        return self.calls.count(route)

    # --- HTTP -----------------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        with self._lock:
            return self._handle(request)

    def _handle(self, request: Request) -> Response:
        path = unquote(request.path)
        if path.startswith(f"/{self.tenant}/"):
            return self._login(request, path)
        if not path.startswith("/v1.0/"):
            return graph_error(404, "UnknownError", "")
        route, handler = self._route(request.method, path[len("/v1.0"):])
        self.calls.append(route)
        if self.outage is not None:
            return self.outage
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        queued = self.faults.get(route)
        fault = queued.pop(0) if queued else None
        return fault if fault is not None else handler(request)

    def _route(self, method: str, path: str) -> tuple[str, _Handler]:
        if path == "/me" or path.startswith("/me/"):
            return "me", lambda r: graph_error(
                400, "BadRequest", "/me request is only valid with delegated authentication flow.")
        prefix = f"/users/{self.mailbox}"
        if not path.lower().startswith(prefix.lower() + "/"):
            return "user", lambda r: graph_error(404, "ErrorInvalidUser",
                                                 "The requested user is invalid.")
        rest = path[len(prefix):].split("/")[1:]
        return self._mail_route(method, rest)

    def _mail_route(self, method: str, rest: list[str]) -> tuple[str, _Handler]:
        table: dict[tuple[str, int, str], tuple[str, _Handler]] = {
            ("POST", 1, "sendMail"): ("sendMail", self._send_mail),
            ("GET", 2, "mailFolders"): ("folder", lambda r: self._get_folder(rest[1])),
            ("GET", 3, "childFolders"): ("folder", lambda r: self._children(rest[1], r)),
            ("POST", 3, "childFolders"): ("folder", lambda r: self._create_folder(rest[1], r)),
            ("GET", 3, "messages"): ("list", lambda r: self._list(rest[1], r)),
            ("GET", 3, "$value"): ("value", lambda r: self._value(rest[1])),
            ("POST", 3, "move"): ("move", lambda r: self._move(rest[1], r)),
            ("PATCH", 2, "messages"): ("patch", lambda r: self._patch(rest[1], r)),
        }
        key_word = rest[-1] if len(rest) != 2 else rest[0]
        return table.get((method, len(rest), key_word),
                         ("unknown", lambda r: graph_error(400, "BadRequest", "Unsupported.")))

    # --- login.microsoftonline.com --------------------------------------------------------

    def _login(self, request: Request, path: str) -> Response:
        authority = f"{self.base}/{self.tenant}"
        if path.endswith("/v2.0/.well-known/openid-configuration"):
            self.calls.append("openid")
            return _json(200, {
                "token_endpoint": f"{authority}/oauth2/v2.0/token",
                "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
                "issuer": f"{self.base}/{self.tenant}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                          "private_key_jwt"]})
        if path.endswith("/oauth2/v2.0/token") and request.method == "POST":
            self.calls.append("token")
            queued = self.faults.get("token")
            fault = queued.pop(0) if queued else None
            return fault if fault is not None else self._token(request)
        return _json(404, {"error": "not_found"})

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "client_credentials" or \
                form.get("client_id") != self.client_id:
            return _json(400, {"error": "unauthorized_client", "error_description":
                               "AADSTS700016: Application with identifier was not found in the "
                               "directory.", "error_codes": [700016]})
        if form.get("client_secret") != self.client_secret:
            return _json(401, {"error": "invalid_client", "error_description":
                               "AADSTS7000215: Invalid client secret provided. Ensure the secret "
                               "being sent in the request is the client secret value.",
                               "error_codes": [7000215]})
        now = int(datetime.now(UTC).timestamp())
        token = ".".join([
            _b64url({"typ": "JWT", "alg": "RS256"}),
            _b64url({"aud": "https://graph.microsoft.com", "tid": self.tenant,
                     "appid": self.client_id, "roles": list(self.roles), "iat": now,
                     "exp": now + 3599, "idtyp": "app"}),
            f"sig{len(self.tokens)}"])
        self.tokens.add(token)
        return _json(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                           "access_token": token})

    # --- mail -----------------------------------------------------------------------------

    def _needs(self, role: str) -> Response | None:
        if role in self.roles:
            return None
        return graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and "
                                                     "try again.")

    def _lookup(self, key: str) -> GraphFolder | None:
        return next((f for f in self.folders.values() if key in (f.id, f.well_known)), None)

    def _folder_json(self, folder: GraphFolder) -> dict[str, object]:
        inside = [m for m in self.messages.values() if m.folder == folder.id]
        return {"id": folder.id, "displayName": folder.name, "parentFolderId": folder.parent,
                "childFolderCount": sum(f.parent == folder.id for f in self.folders.values()),
                "unreadItemCount": sum(not m.is_read for m in inside),
                "totalItemCount": len(inside)}

    def _get_folder(self, key: str) -> Response:
        denied = self._needs("Mail.ReadWrite")
        folder = self._lookup(key)
        if denied or folder is None:
            return denied or graph_error(404, "ErrorItemNotFound", "The specified object was "
                                                                    "not found in the store.")
        return _json(200, self._folder_json(folder))

    def _children(self, key: str, request: Request) -> Response:
        parent = self._lookup(key)
        if parent is None:
            return graph_error(404, "ErrorItemNotFound", "Not found.")
        wanted = request.query.get("$filter", [""])[0]
        children = [f for f in self.folders.values() if f.parent == parent.id]
        if wanted.startswith("displayName eq '"):
            name = wanted[len("displayName eq '"):-1].replace("''", "'")
            children = [f for f in children if f.name == name]
        return _json(200, {"value": [self._folder_json(f) for f in children]})

    def _create_folder(self, key: str, request: Request) -> Response:
        parent = self._lookup(key)
        if parent is None:
            return graph_error(404, "ErrorItemNotFound", "Not found.")
        name = json.loads(request.body)["displayName"]
        return _json(201, self._folder_json(self._add(name, parent.id, None)))

    def _list(self, key: str, request: Request) -> Response:
        denied = self._needs("Mail.ReadWrite")
        folder = self._lookup(key)
        if denied or folder is None:
            return denied or graph_error(404, "ErrorItemNotFound", "Not found.")
        query = {k: v[0] for k, v in request.query.items()}
        self.queries.append(query)
        flt, order = query.get("$filter", ""), query.get("$orderby", "")
        if flt and order and not flt.startswith(order.split()[0]):
            return graph_error(400, "InefficientFilter",
                               "The restriction or sort order is too complex for this operation.")
        found = [m for m in self.messages.values() if m.folder == folder.id]
        if "isRead eq false" in flt:
            found = [m for m in found if not m.is_read]
        found.sort(key=lambda m: m.received, reverse=not order.endswith("asc"))
        top, skip = int(query.get("$top", "10")), int(query.get("$skip", "0"))
        page = found[skip:skip + top]
        body: dict[str, object] = {"value": [
            {"@odata.etag": 'W/"CQAAABYAAAA"', "id": m.id,
             "receivedDateTime": f"{m.received:%Y-%m-%dT%H:%M:%SZ}"} for m in page]}
        if skip + top < len(found):
            body["@odata.nextLink"] = (f"{self.base}/v1.0/users/{self.mailbox}/mailFolders/"
                                       f"{key}/messages?" + urlencode({**query,
                                                                       "$skip": skip + top}))
        return _json(200, body)

    def _value(self, message_id: str) -> Response:
        denied = self._needs("Mail.ReadWrite")
        message = self.messages.get(message_id)
        if denied or message is None:
            return denied or graph_error(404, "ErrorItemNotFound", "Not found.")
        return Response(200, message.mime, {"Content-Type": "text/plain"})

    def _move(self, message_id: str, request: Request) -> Response:
        denied = self._needs("Mail.ReadWrite")
        message = self.messages.get(message_id)
        target = self._lookup(json.loads(request.body).get("destinationId", ""))
        if denied or message is None or target is None:
            return denied or graph_error(404, "ErrorItemNotFound", "Not found.")
        del self.messages[message_id]
        message.id, message.folder = self._new_id(), target.id  # a move gives a new id
        self.messages[message.id] = message
        return _json(201, {"id": message.id, "parentFolderId": target.id})

    def _patch(self, message_id: str, request: Request) -> Response:
        denied = self._needs("Mail.ReadWrite")
        message = self.messages.get(message_id)
        if denied or message is None:
            return denied or graph_error(404, "ErrorItemNotFound", "Not found.")
        message.is_read = bool(json.loads(request.body).get("isRead", message.is_read))
        return _json(200, {"id": message.id, "isRead": message.is_read})

    def _send_mail(self, request: Request) -> Response:
        denied = self._needs("Mail.Send")
        if denied:
            return denied
        if request.headers.get("Content-Type", "").split(";")[0] != "text/plain":
            return graph_error(415, "UnsupportedMediaType", "Unsupported content type.")
        try:
            mime = base64.b64decode(request.body, validate=True)
        except binascii.Error:
            return graph_error(400, "ErrorMimeContentInvalidBase64String",
                               "Invalid base64 string for MIME content.")
        self.sent.append(mime)
        self.deliver(mime, "sentitems", is_read=True)
        return Response(202, b"")

    # --- internals ------------------------------------------------------------------------

    def _new_id(self) -> str:
        return base64.urlsafe_b64encode(f"AAMkAGI2{next(self._ids):08d}".encode()).decode()

    def _add(self, name: str, parent: str | None, well_known: str | None) -> GraphFolder:
        folder = GraphFolder(self._new_id(), name, parent, well_known)
        self.folders[folder.id] = folder
        return folder

