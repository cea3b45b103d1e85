"""Read the text of the mail's attachments (gateway.mail.attachtext) in PREPARE, where the
body is parsed too, so that a huge or hostile file costs the prepare process, under its time
limit, and never the worker's transaction; the analyse step then searches it for personal data
like the body."""

from __future__ import annotations

import dataclasses
import time

from gateway.mail import attachtext
from gateway.pipeline.context import Preparing


def prepare(state: Preparing) -> None:
    mail, settings = state.mail, state.settings.attachment_text
    if mail is None or not settings.enabled or not mail.attachments:
        return
    # All files of one mail together get at most half the prepare time limit, so that many
    # slow files make some of them unreadable, never the whole mail fail (PrepareFailed).
    ends = time.monotonic() + state.settings.worker.prepare_timeout_seconds / 2
    read = []
    for attachment in mail.attachments:
        left = ends - time.monotonic()
        if left <= 0 and attachtext.kind_of(attachment.filename, attachment.content_type):
            text_state, text = attachtext.UNREADABLE, None  # a text format, no time left
        else:
            limits = attachtext.Limits(
                max_bytes=settings.max_bytes,
                max_pages=settings.max_pages,
                max_unpacked_bytes=settings.max_unpacked_bytes,
                max_chars=settings.max_chars,
                seconds=max(0.001, min(settings.timeout_seconds, left)),
            )
            text_state, text = attachtext.extract(attachment.filename, attachment.content_type,
                                                  attachment.data, limits)
        read.append(dataclasses.replace(attachment, text=text, text_state=text_state))
    mail.attachments = read
