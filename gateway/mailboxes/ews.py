"""A thin wrapper around exchangelib for one Exchange mailbox (Exchange Server on premises, where
EWS stays; Exchange Online turns EWS off, see docs/exchange.md): connect, find new items, fetch
their MIME, move them or mark them read, send MIME, and check the setup. Every exchangelib failure
leaves this module as a `gateway.mailboxes.common` error whose text is a one-line diagnosis for an
admin; exchangelib's own messages may quote server replies and never pass through.

exchangelib takes TLS and timeout settings only from its HTTP adapter class
(`BaseProtocol.HTTP_ADAPTER_CLS`, the documented hook for internal CAs); `_TransportAdapter`
applies each configured endpoint's CA bundle, verification switch and timeout. Retries are
left to the caller (exchangelib runs with FailFast), so a poll never sleeps inside the library.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests.adapters
from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    NTLM,
    Account,
    Configuration,
    Credentials,
    FailFast,
    Message,
)
from exchangelib import errors as ews_errors
from exchangelib.folders import BaseFolder, Folder
from exchangelib.protocol import BaseProtocol

from gateway import logs
from gateway.config import ExchangeSettings
from gateway.errors import MailboxAuthError, MailboxError, MailboxRequestError, MailboxUnavailable
from gateway.mailboxes.common import CheckResult, ItemRef, MailboxSender

# Account attribute of each well-known folder a folder path may start with.
WELL_KNOWN = {
    "inbox": "inbox",
    "msgfolderroot": "msg_folder_root",
    "sentitems": "sent",
    "drafts": "drafts",
    "deleteditems": "trash",
    "junkemail": "junk",
}

_AUTH = {
    ews_errors.ErrorAccessDenied: "access denied: the service account needs FullAccess on the "
    "mailbox (or ApplicationImpersonation with access_type: impersonation)",
    ews_errors.ErrorImpersonateUserDenied: "impersonation refused: grant the service account "
    "ApplicationImpersonation, or use access_type: delegate with FullAccess",
    ews_errors.ErrorImpersonationDenied: "impersonation refused: grant the service account "
    "ApplicationImpersonation, or use access_type: delegate with FullAccess",
    ews_errors.ErrorImpersonationFailed: "impersonation failed: check exchange.mailbox and the "
    "ApplicationImpersonation role",
    ews_errors.ErrorNonExistentMailbox: "mailbox not found on this server: check exchange.mailbox",
    ews_errors.ErrorAccountDisabled: "the service account is disabled",
    ews_errors.ErrorSendAsDenied: "sending refused: the account may not send as the From "
    "address (grant SendAs, or send from the mailbox address)",
}
_TRANSIENT = (
    ews_errors.ErrorServerBusy,
    ews_errors.ErrorTimeoutExpired,
    ews_errors.ErrorInternalServerTransientError,
    ews_errors.ErrorInternalServerError,
    ews_errors.ErrorMailboxStoreUnavailable,
    ews_errors.ErrorMailboxMoveInProgress,
    ews_errors.ErrorConnectionFailed,
    ews_errors.ErrorConnectionFailedTransientError,
    ews_errors.ErrorADUnavailable,
    ews_errors.ErrorQuotaExceeded,
    ews_errors.CASError,
    ews_errors.RateLimitError,
)
_HTTP_CODE = re.compile(r"\bCode: (\d{3})\b|\bHTTP (\d{3}) response\b")


@dataclass(frozen=True, slots=True)
class _Transport:
    verify: bool | str
    timeout: float


class _TransportAdapter(requests.adapters.HTTPAdapter):
    """Applies the CA bundle, TLS verification and timeout configured for an endpoint's host.

    Hosts not configured (autodiscover may visit several) get the most recent configuration."""

    rules: ClassVar[dict[str, _Transport]] = {}
    default: ClassVar[_Transport | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def configure(cls, url: str | None, transport: _Transport) -> None:
        with cls._lock:
            if url:
                cls.rules[urlsplit(url).netloc.lower()] = transport
            cls.default = transport

    def send(self, request: Any, stream: bool = False, timeout: Any = None,
             verify: bool | str = True, cert: Any = None, proxies: Any = None) -> Any:
        rule = self.rules.get(urlsplit(request.url).netloc.lower(), self.default)
        if rule is not None:
            timeout, verify = rule.timeout, rule.verify
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert,
                            proxies=proxies)


def _install_adapter(settings: ExchangeSettings) -> None:
    verify: bool | str = str(settings.ca_bundle) if settings.ca_bundle else settings.verify_tls
    if not settings.verify_tls:
        verify = False
    endpoint = settings.service_endpoint or (
        f"https://{settings.server}/EWS/Exchange.asmx" if settings.server else None)
    _TransportAdapter.configure(endpoint, _Transport(verify, settings.timeout_seconds))
    BaseProtocol.HTTP_ADAPTER_CLS = _TransportAdapter


def diagnose(exc: BaseException) -> MailboxError:
    """The `gateway.mailboxes.common` error for an exchangelib (or requests) failure."""
    text = str(exc)
    return _by_class(exc) or _by_network(exc, text) or _by_response(exc, text)


def _by_class(exc: BaseException) -> MailboxError | None:
    for cls, diagnosis in _AUTH.items():
        if isinstance(exc, cls):
            return MailboxAuthError(diagnosis)
    if isinstance(exc, ews_errors.UnauthorizedError):
        return MailboxAuthError("login refused (HTTP 401): wrong user name or password, or the "
                                "account is locked")
    if isinstance(exc, ews_errors.AutoDiscoverError):
        return MailboxUnavailable("autodiscover failed for the mailbox's domain: set "
                                  "exchange.service_endpoint instead")
    if isinstance(exc, ews_errors.RedirectError):
        return MailboxRequestError("the EWS endpoint redirects elsewhere: check "
                                   "exchange.service_endpoint")
    return None


def _by_network(exc: BaseException, text: str) -> MailboxError | None:
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in text:
        return MailboxUnavailable("certificate error: the server's TLS certificate is not "
                                  "trusted (set exchange.ca_bundle to the internal CA's PEM file)")
    if "Timeout" in text or "timed out" in text:
        return MailboxUnavailable("no answer from the EWS server in time (timeout)")
    if isinstance(exc, ews_errors.ErrorTimeoutExpired):  # exchangelib's name for network errors
        return MailboxUnavailable(f"cannot reach the EWS server ({_cause(text)})")
    return None


def _by_response(exc: BaseException, text: str) -> MailboxError:
    if isinstance(exc, _TRANSIENT):
        return MailboxUnavailable(f"Exchange is busy or unavailable ({type(exc).__name__})",
                                  getattr(exc, "back_off", None))
    if isinstance(exc, ews_errors.ResponseMessageError) and not _HTTP_CODE.search(text):
        return MailboxRequestError(f"Exchange refused the request ({type(exc).__name__})")
    return _diagnose_http(exc, text)


def _diagnose_http(exc: BaseException, text: str) -> MailboxError:
    match = _HTTP_CODE.search(text)
    code = int(match.group(1) or match.group(2)) if match else None
    if code in (401, 403):
        return MailboxAuthError(f"access denied (HTTP {code}): check the user name, password "
                                "and the account's rights on the mailbox")
    if code == 404:
        return MailboxRequestError("no EWS at this address (HTTP 404): check "
                                   "exchange.service_endpoint")
    if code is not None:
        return MailboxUnavailable(f"EWS server error (HTTP {code})")
    if isinstance(exc, ews_errors.TransportError | requests.RequestException | OSError):
        return MailboxUnavailable(f"cannot reach the EWS server ({_cause(text)})")
    return MailboxUnavailable(f"EWS call failed ({type(exc).__name__})")


def _cause(text: str) -> str:
    for needle, cause in (("refused", "connection refused"), ("timed out", "timeout"),
                          ("Name or service not known", "unknown host"),
                          ("No valid version headers", "no EWS version in the answer"),
                          ("Failed to get auth type", "no login offered: server down, or not "
                           "an EWS address")):
        if needle in text:
            return cause
    return "connection failed"


@contextmanager
def _translated() -> Iterator[None]:
    """Run exchangelib calls; anything they raise leaves as a MailboxError."""
    try:
        yield
    except MailboxError:
        raise
    except Exception as exc:
        raise diagnose(exc) from None


def _raise_if_error(result: object) -> None:
    """exchangelib returns per-item failures as exception instances in result lists."""
    if isinstance(result, BaseException):
        raise diagnose(result)


class EwsClient:
    """One mailbox over EWS. Connects lazily; folders are resolved once and then reused."""

    source = "exchange"

    def __init__(self, settings: ExchangeSettings, *, password: str | None = None) -> None:
        self.settings = settings
        self.mailbox = settings.mailbox
        self._password = password if password is not None else settings.password()
        self._account: Account | None = None
        self._folders: dict[str, BaseFolder] = {}
        # exchangelib logs request and response XML (mail content, addresses) at DEBUG and, on
        # some failures, at ERROR: keep it quiet whatever the root logger's level.
        logging.getLogger("exchangelib").setLevel(logging.CRITICAL)
        _install_adapter(settings)

    # --- connection and folders -------------------------------------------------------------

    @property
    def account(self) -> Account:
        if self._account is None:
            with _translated():
                self._account = self._connect()
        return self._account

    def _connect(self) -> Account:
        s = self.settings
        credentials = Credentials(s.username or s.mailbox, self._password)
        access = IMPERSONATION if s.access_type == "impersonation" else DELEGATE
        if s.autodiscover:
            return Account(s.mailbox, credentials=credentials, autodiscover=True,
                           access_type=access)
        auth = {"ntlm": NTLM, "basic": BASIC}.get(s.auth_type or "")
        config = Configuration(credentials=credentials, server=s.server,
                               service_endpoint=s.service_endpoint, auth_type=auth,
                               retry_policy=FailFast())
        return Account(s.mailbox, config=config, autodiscover=False, access_type=access)

    def folder(self, path: str, *, create: bool = False) -> BaseFolder:
        """The folder at `path` (display names below the mailbox root, or below a well-known
        folder named first); with `create`, missing folders on the way are created."""
        if path not in self._folders:
            with _translated():
                self._folders[path] = self._resolve(path, create)
        return self._folders[path]

    def _resolve(self, path: str, create: bool) -> BaseFolder:
        segments = [s for s in path.split("/") if s]
        if not segments:
            raise MailboxRequestError("empty folder path in the configuration")
        attribute = WELL_KNOWN.get(segments[0].lower())
        folder: BaseFolder = getattr(self.account, attribute or "msg_folder_root")
        for name in segments[1:] if attribute else segments:
            try:
                folder = folder // name
            except ews_errors.ErrorFolderNotFound:
                if not create:
                    raise MailboxRequestError(
                        f"folder {path!r} does not exist in the mailbox (postdesk exchange check "
                        "--create-folder creates it)") from None
                folder = Folder(parent=folder, name=name)
                folder.save()
                logs.event("exchange.folder_created", folder=path)
        return folder

    # --- MailboxClient ----------------------------------------------------------------------

    def find_new(self, limit: int) -> list[ItemRef]:
        """Items still to take in, oldest first: all items of the watched folder when processed
        items are moved away, else the unread ones."""
        folder = self.folder(self.settings.folder)
        with _translated():
            query = folder.all() if self.settings.processed_folder else folder.filter(
                is_read=False)
            items = list(query.order_by("datetime_received").only("datetime_received")[:limit])
        refs = []
        for item in items:
            _raise_if_error(item)
            refs.append(ItemRef(item.id, item.changekey))
        return refs

    def fetch_mime(self, ref: ItemRef) -> bytes:
        with _translated():
            results = list(self.account.fetch(ids=[(ref.id, ref.changekey)],
                                              only_fields=["mime_content"]))
        if not results:
            raise MailboxRequestError("Exchange returned no item for the id")
        _raise_if_error(results[0])
        mime = getattr(results[0], "mime_content", None)
        if not mime:
            raise MailboxRequestError("Exchange returned the item without MIME content")
        return bytes(mime)

    def finish(self, ref: ItemRef) -> None:
        """Move the item to the processed folder, or mark it read."""
        processed = self.settings.processed_folder
        if processed:
            target = self.folder(processed)
            with _translated():
                results = self.account.bulk_move(ids=[(ref.id, ref.changekey)], to_folder=target)
        else:
            item = Message(account=self.account, id=ref.id, changekey=ref.changekey, is_read=True)
            with _translated():
                results = self.account.bulk_update(items=[(item, ["is_read"])])
        try:
            for result in results:
                _raise_if_error(result)
        except MailboxRequestError:
            if processed:
                self._folders.pop(processed, None)  # the folder may be gone: look it up again
            raise

    # --- sending ------------------------------------------------------------------------------

    def send_mime(self, raw: bytes) -> None:
        """Send the MIME message as it is and keep a copy in Sent Items (CreateItem with
        MimeContent and MessageDisposition=SendAndSaveCopy)."""
        with _translated():
            message = Message(account=self.account, folder=self.account.sent, mime_content=raw)
            message.send_and_save()

    # --- check ----------------------------------------------------------------------------------

    def check(self, *, create_folder: bool = False) -> CheckResult:
        """Log in, count the watched folder, verify (or create) the processed folder."""
        try:
            watched = self.folder(self.settings.folder)
            with _translated():
                watched.refresh()
                total, unread = watched.total_count, watched.unread_count
            done = ""
            if self.settings.processed_folder:
                self.folder(self.settings.processed_folder, create=create_folder)
                done = f", processed folder {self.settings.processed_folder!r} found"
        except MailboxError as exc:
            return CheckResult(False, f"exchange: {exc}")
        return CheckResult(True, f"exchange: ok — folder {self.settings.folder!r} holds {total} "
                                 f"item(s), {unread} unread{done}")

    def close(self) -> None:
        if self._account is not None:
            self._account.protocol.close()


class ExchangeSender(MailboxSender):
    """Sends outgoing mail through the mailbox (`outgoing.transport: exchange`)."""

    @classmethod
    def from_settings(cls, settings: ExchangeSettings) -> ExchangeSender:
        return cls(EwsClient(settings), "Exchange")
