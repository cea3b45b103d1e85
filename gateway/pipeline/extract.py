"""Read the text of the mail's attachments (gateway.mail.attachtext) in PREPARE, where the
body is parsed too, so that a huge or hostile file costs the prepare process, under its time
limit, and never the worker's transaction; the analyse step then searches it for personal data
like the body."""

from __future__ import annotations

import dataclasses

from gateway.mail import attachtext
from gateway.pipeline.context import Preparing


def prepare(state: Preparing) -> None:
    mail, settings = state.mail, state.settings.attachment_text
    if mail is None or not settings.enabled or not mail.attachments:
        return
    limits = attachtext.Limits(
        max_bytes=settings.max_bytes,
        max_pages=settings.max_pages,
        max_unpacked_bytes=settings.max_unpacked_bytes,
        max_chars=settings.max_chars,
        seconds=settings.timeout_seconds,
    )
    read = []
    for attachment in mail.attachments:
        text_state, text = attachtext.extract(attachment.filename, attachment.content_type,
                                              attachment.data, limits)
        read.append(dataclasses.replace(attachment, text=text, text_state=text_state))
    mail.attachments = read
