"""A small Exchange Web Services endpoint for tests: it speaks the SOAP that the real exchangelib
sends and answers in the shapes of Microsoft's published EWS examples (ServerVersionInfo header,
ResponseMessages with ResponseClass/ResponseCode, ItemId/ChangeKey, MimeContent in base64).

It keeps one mailbox: folders (the distinguished ones plus any created) and items with raw MIME.
Like Exchange, it gives an item a new id when the item is moved. Faults can be queued per
operation (`fail(op, Response(...))`) or for every request (`outage`)."""

from __future__ import annotations

import base64
import itertools
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

from tests.fakes.https import Request, Response

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
NS = {"s": SOAP, "m": M, "t": T}

# Exchange Server 2019 CU14 reports 15.2; the Version attribute is what Exchange 2016+ send.
SERVER_VERSION = (
    f'<h:ServerVersionInfo xmlns:h="{T}" MajorVersion="15" MinorVersion="2" '
    'MajorBuildNumber="1544" MinorBuildNumber="4" Version="V2017_07_11"/>'
)
DISTINGUISHED = {
    "root": "Root",
    "msgfolderroot": "Top of Information Store",
    "inbox": "Inbox",
    "sentitems": "Sent Items",
    "drafts": "Drafts",
    "deleteditems": "Deleted Items",
}


@dataclass
class FakeFolder:
    id: str
    name: str
    parent: str | None
    distinguished: str | None = None


@dataclass
class FakeItem:
    id: str
    changekey: str
    folder: str
    mime: bytes
    received: datetime
    is_read: bool = False


@dataclass
class SentCall:
    disposition: str
    saved_folder: str | None
    mime: bytes
    xml: bytes


@dataclass
class FakeEws:
    """The endpoint's state and the request handler (`__call__`) for `FakeServer`."""

    mailbox: str
    username: str
    password: str
    folders: dict[str, FakeFolder] = field(default_factory=dict)
    items: dict[str, FakeItem] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)  # operation names, "auth-probe" for 401s
    sent: list[SentCall] = field(default_factory=list)
    faults: dict[str, list[Response]] = field(default_factory=dict)
    outage: Response | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        root = self._add_folder("Root", None, "root")
        top = self._add_folder(DISTINGUISHED["msgfolderroot"], root.id, "msgfolderroot")
        for key in ("inbox", "sentitems", "drafts", "deleteditems"):
            self._add_folder(DISTINGUISHED[key], top.id, key)

    # --- test helpers ---------------------------------------------------------------------

    def folder(self, distinguished_or_name: str) -> FakeFolder:
        for folder in self.folders.values():
            if distinguished_or_name in (folder.distinguished, folder.name):
                return folder
        raise KeyError(distinguished_or_name)

    def add_folder(self, name: str, parent: str = "msgfolderroot") -> FakeFolder:
        return self._add_folder(name, self.folder(parent).id, None)

    def deliver(self, mime: bytes, folder: str = "inbox", is_read: bool = False) -> FakeItem:
        """Put a message into a folder, received one second after the previous one."""
        received = datetime(2026, 3, 2, 8, 0, tzinfo=UTC) + timedelta(seconds=len(self.items))
        item = FakeItem(self._new_id("item"), self._new_id("ck"), self.folder(folder).id, mime,
                        received, is_read)
        self.items[item.id] = item
        return item

    def in_folder(self, name: str) -> list[FakeItem]:
        folder_id = self.folder(name).id
        return sorted((i for i in self.items.values() if i.folder == folder_id),
                      key=lambda i: i.received)

    def fail(self, operation: str, *responses: Response) -> None:
        """The next requests of `operation` get these answers instead of the real one."""
        self.faults.setdefault(operation, []).extend(responses)

    def count(self, operation: str) -> int:
        return self.calls.count(operation)

    # --- HTTP -----------------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        with self._lock:
            return self._handle(request)

    def _handle(self, request: Request) -> Response:
        if request.method != "POST" or request.path.lower() != "/ews/exchange.asmx":
            return Response(404, b"Not Found", {"Content-Type": "text/plain"})
        body = ET.fromstring(request.body).find("s:Body", NS)
        assert body is not None and len(body), "SOAP request without a body"
        operation_elem = body[0]
        operation = operation_elem.tag.split("}", 1)[1]
        if self.outage is not None:  # IIS answers before any login when EWS is down
            self.calls.append(operation)
            return self.outage
        if not self._authorized(request):
            self.calls.append("auth-probe")
            return Response(401, b"", {"WWW-Authenticate": 'Basic realm="127.0.0.1"'})
        self.calls.append(operation)
        queued = self.faults.get(operation)
        if queued:
            return queued.pop(0)
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            return _soap_fault(f"operation {operation} is not implemented by the fake")
        messages: str = handler(operation_elem, request)
        return _envelope(operation, messages)

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user == self.username and password == self.password

    # --- operations: each returns the ResponseMessage elements ---------------------------

    def _op_ConvertId(self, elem: ET.Element, request: Request) -> str:
        # exchangelib sends a dummy id to learn the server version; Exchange refuses the id.
        return _error("ConvertId", "ErrorInvalidIdMalformed", "Id is malformed.")

    def _op_GetFolder(self, elem: ET.Element, request: Request) -> str:
        out = []
        for ref in elem.find("m:FolderIds", NS) or []:
            folder = self._folder_ref(ref)
            if folder is None:
                out.append(_error("GetFolder", "ErrorFolderNotFound",
                                  "The specified folder could not be found in the store."))
                continue
            out.append(_success("GetFolder", f"<m:Folders>{self._folder_xml(folder)}</m:Folders>"))
        return "".join(out)

    def _op_FindFolder(self, elem: ET.Element, request: Request) -> str:
        out = []
        wanted = elem.find(".//t:IsEqualTo/t:FieldURIOrConstant/t:Constant", NS)
        for ref in elem.find("m:ParentFolderIds", NS) or []:
            parent = self._folder_ref(ref)
            if parent is None:
                out.append(_error("FindFolder", "ErrorFolderNotFound",
                                  "The specified folder could not be found in the store."))
                continue
            children = [f for f in self.folders.values() if f.parent == parent.id
                        and (wanted is None or f.name == wanted.get("Value"))]
            folders = "".join(self._folder_xml(f) for f in children)
            out.append(_success("FindFolder", (
                f'<m:RootFolder TotalItemsInView="{len(children)}" '
                f'IncludesLastItemInRange="true"><t:Folders>{folders}</t:Folders></m:RootFolder>')))
        return "".join(out)

    def _op_CreateFolder(self, elem: ET.Element, request: Request) -> str:
        parent_ref = elem.find("m:ParentFolderId", NS)
        assert parent_ref is not None and len(parent_ref)
        parent = self._folder_ref(parent_ref[0])
        out = []
        for new in elem.findall("m:Folders/t:Folder", NS):
            name = new.findtext("t:DisplayName", default="", namespaces=NS)
            if parent is None:
                out.append(_error("CreateFolder", "ErrorFolderNotFound", "Folder not found."))
                continue
            folder = self._add_folder(name, parent.id, None)
            out.append(_success("CreateFolder", (
                f'<m:Folders><t:Folder><t:FolderId Id="{folder.id}" ChangeKey="AQAAAA=="/>'
                "</t:Folder></m:Folders>")))
        return "".join(out)

    def _op_FindItem(self, elem: ET.Element, request: Request) -> str:
        out = []
        unread_only = _restricts_unread(elem)
        view = elem.find("m:IndexedPageItemView", NS)
        offset = int(view.get("Offset", "0")) if view is not None else 0
        limit = int(view.get("MaxEntriesReturned", "1000")) if view is not None else 1000
        descending = elem.find("m:SortOrder/t:FieldOrder[@Order='Descending']", NS) is not None
        for ref in elem.find("m:ParentFolderIds", NS) or []:
            folder = self._folder_ref(ref)
            if folder is None:
                out.append(_error("FindItem", "ErrorFolderNotFound", "Folder not found."))
                continue
            matches = [i for i in self.items.values() if i.folder == folder.id
                       and not (unread_only and i.is_read)]
            matches.sort(key=lambda i: i.received, reverse=descending)
            page = matches[offset:offset + limit]
            last = offset + len(page) >= len(matches)
            items = "".join(
                f'<t:Message><t:ItemId Id="{i.id}" ChangeKey="{i.changekey}"/>'
                f"<t:DateTimeReceived>{i.received:%Y-%m-%dT%H:%M:%SZ}</t:DateTimeReceived>"
                "</t:Message>" for i in page)
            out.append(_success("FindItem", (
                f'<m:RootFolder IndexedPagingOffset="{offset + len(page)}" '
                f'TotalItemsInView="{len(matches)}" IncludesLastItemInRange="{str(last).lower()}">'
                f"<t:Items>{items}</t:Items></m:RootFolder>")))
        return "".join(out)

    def _op_GetItem(self, elem: ET.Element, request: Request) -> str:
        out = []
        for ref in elem.findall("m:ItemIds/t:ItemId", NS):
            item = self.items.get(ref.get("Id", ""))
            if item is None:
                out.append(_error("GetItem", "ErrorItemNotFound",
                                  "The specified object was not found in the store."))
                continue
            mime = base64.b64encode(item.mime).decode()
            out.append(_success("GetItem", (
                f'<m:Items><t:Message><t:MimeContent CharacterSet="UTF-8">{mime}</t:MimeContent>'
                f'<t:ItemId Id="{item.id}" ChangeKey="{item.changekey}"/></t:Message></m:Items>')))
        return "".join(out)

    def _op_MoveItem(self, elem: ET.Element, request: Request) -> str:
        target_ref = elem.find("m:ToFolderId", NS)
        assert target_ref is not None and len(target_ref)
        target = self._folder_ref(target_ref[0])
        out = []
        for ref in elem.findall("m:ItemIds/t:ItemId", NS):
            item = self.items.pop(ref.get("Id", ""), None)
            if item is None or target is None:
                if item is not None:
                    self.items[item.id] = item
                out.append(_error("MoveItem", "ErrorItemNotFound" if item is None
                                  else "ErrorFolderNotFound", "Not found."))
                continue
            item.id, item.changekey, item.folder = self._new_id("item"), self._new_id("ck"), \
                target.id  # a moved item gets a new id, as in Exchange
            self.items[item.id] = item
            out.append(_success("MoveItem", (
                f'<m:Items><t:Message><t:ItemId Id="{item.id}" ChangeKey="{item.changekey}"/>'
                "</t:Message></m:Items>")))
        return "".join(out)

    def _op_UpdateItem(self, elem: ET.Element, request: Request) -> str:
        out = []
        for change in elem.findall("m:ItemChanges/t:ItemChange", NS):
            ref = change.find("t:ItemId", NS)
            item = self.items.get(ref.get("Id", "") if ref is not None else "")
            if item is None:
                out.append(_error("UpdateItem", "ErrorItemNotFound", "Not found."))
                continue
            for update in change.findall("t:Updates/t:SetItemField", NS):
                uri = update.find("t:FieldURI", NS)
                value = update.findtext("t:Message/t:IsRead", namespaces=NS)
                if uri is not None and uri.get("FieldURI") == "message:IsRead" and value:
                    item.is_read = value in ("true", "1")
            item.changekey = self._new_id("ck")
            out.append(_success("UpdateItem", (
                f'<m:Items><t:Message><t:ItemId Id="{item.id}" ChangeKey="{item.changekey}"/>'
                '</t:Message></m:Items><m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>'
            )))
        return "".join(out)

    def _op_CreateItem(self, elem: ET.Element, request: Request) -> str:
        disposition = elem.get("MessageDisposition", "SaveOnly")
        saved = elem.find("m:SavedItemFolderId", NS)
        saved_folder = self._folder_ref(saved[0]) if saved is not None and len(saved) else None
        out = []
        for message in elem.findall("m:Items/t:Message", NS):
            mime_b64 = message.findtext("t:MimeContent", default="", namespaces=NS)
            mime = base64.b64decode(mime_b64)
            self.sent.append(SentCall(disposition, saved_folder.distinguished or saved_folder.name
                                      if saved_folder else None, mime, request.body))
            if saved_folder is not None:
                self.deliver(mime, saved_folder.distinguished or saved_folder.name, is_read=True)
            out.append(_success("CreateItem", "<m:Items/>"))
        return "".join(out)

    # --- internals ------------------------------------------------------------------------

    def _new_id(self, kind: str) -> str:
        return base64.b64encode(f"AAMk{kind}{next(self._ids):06d}".encode()).decode()

    def _add_folder(self, name: str, parent: str | None, distinguished: str | None) -> FakeFolder:
        folder = FakeFolder(self._new_id("folder"), name, parent, distinguished)
        self.folders[folder.id] = folder
        return folder

    def _folder_ref(self, ref: ET.Element) -> FakeFolder | None:
        if ref.tag == f"{{{T}}}FolderId":
            return self.folders.get(ref.get("Id", ""))
        if ref.tag == f"{{{T}}}DistinguishedFolderId":
            mailbox = ref.findtext("t:Mailbox/t:EmailAddress", namespaces=NS)
            if mailbox is not None and mailbox.lower() != self.mailbox.lower():
                return None
            key = ref.get("Id", "")
            return next((f for f in self.folders.values() if f.distinguished == key), None)
        return None

    def _folder_xml(self, folder: FakeFolder) -> str:
        total = sum(1 for i in self.items.values() if i.folder == folder.id)
        unread = sum(1 for i in self.items.values() if i.folder == folder.id and not i.is_read)
        children = sum(1 for f in self.folders.values() if f.parent == folder.id)
        parent = (f'<t:ParentFolderId Id="{folder.parent}" ChangeKey="AQAAAA=="/>'
                  if folder.parent else "")
        return (f'<t:Folder><t:FolderId Id="{folder.id}" ChangeKey="AQAAAA=="/>{parent}'
                f"<t:FolderClass>IPF.Note</t:FolderClass>"
                f"<t:DisplayName>{escape(folder.name)}</t:DisplayName>"
                f"<t:TotalCount>{total}</t:TotalCount><t:ChildFolderCount>{children}"
                f"</t:ChildFolderCount><t:UnreadCount>{unread}</t:UnreadCount></t:Folder>")


def _restricts_unread(elem: ET.Element) -> bool:
    """True for a FindItem restricted to IsRead = false (exchangelib's filter(is_read=False))."""
    for cond in elem.findall("m:Restriction//t:IsEqualTo", NS):
        uri = cond.find("t:FieldURI", NS)
        const = cond.find("t:FieldURIOrConstant/t:Constant", NS)
        if uri is not None and uri.get("FieldURI") == "message:IsRead" and const is not None:
            return const.get("Value") in ("false", "0")  # xs:boolean; exchangelib sends 0
    return False


def _success(operation: str, inner: str) -> str:
    return (f'<m:{operation}ResponseMessage ResponseClass="Success">'
            f"<m:ResponseCode>NoError</m:ResponseCode>{inner}</m:{operation}ResponseMessage>")


def _error(operation: str, code: str, text: str) -> str:
    return (f'<m:{operation}ResponseMessage ResponseClass="Error">'
            f"<m:MessageText>{escape(text)}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode>"
            f"<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:{operation}ResponseMessage>")


def _envelope(operation: str, messages: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{SOAP}"><s:Header>{SERVER_VERSION}</s:Header><s:Body>'
        f'<m:{operation}Response xmlns:m="{M}" xmlns:t="{T}">'
        f"<m:ResponseMessages>{messages}</m:ResponseMessages></m:{operation}Response>"
        "</s:Body></s:Envelope>"
    )
    return Response(200, body.encode(), {"Content-Type": "text/xml; charset=utf-8"})


def _soap_fault(text: str) -> Response:
    body = (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Body>'
            f"<s:Fault><faultcode>s:Client</faultcode><faultstring>{escape(text)}</faultstring>"
            "</s:Fault></s:Body></s:Envelope>")
    return Response(500, body.encode(), {"Content-Type": "text/xml; charset=utf-8"})


def server_error(status: int = 503) -> Response:
    """What IIS answers when the EWS application pool is down."""
    return Response(status, b"<html><body>Service Unavailable</body></html>",
                    {"Content-Type": "text/html"})


def soap_error(operation: str, code: str, text: str) -> Response:
    """A whole EWS answer whose one ResponseMessage is an error (e.g. ErrorAccessDenied)."""
    return _envelope(operation, _error(operation, code, text))
