"""The original an agent may be shown (gateway.mail.original): attachments capped in size, the
rest named; the view templates get holds no bytes."""

from __future__ import annotations

from gateway.mail.model import Address, MailAttachment
from gateway.mail.original import of_mail
from tests.helpers import parsed_mail

BIG = MailAttachment("scan.tif", "image/tiff", b"x" * 5000)
SMALL = MailAttachment("ausweis.png", "image/png", b"y" * 600)
NOTE = MailAttachment("notiz.txt", "text/plain", b"z" * 300)


def test_attachments_are_taken_while_they_fit_and_the_others_named() -> None:
    mail = parsed_mail(attachments=[SMALL, BIG, NOTE])
    original = of_mail(mail, article=2, max_bytes=1000)
    assert [a.filename for a in original.attachments] == ["ausweis.png", "notiz.txt"]
    assert original.omitted == (("scan.tif", 5000),)
    assert of_mail(mail, article=2, max_bytes=0).attachments == ()
    assert len(of_mail(mail, article=2, max_bytes=5900).attachments) == 3


def test_the_original_keeps_sender_subject_and_text_as_given() -> None:
    mail = parsed_mail(from_=Address("Erika Muster", "erika.muster@example.net"),
                       subject="[NAME-1]", text="[NAME-1] (geb. [GEBURTSDATUM-1])")
    original = of_mail(mail, article=1, max_bytes=100, subject="Konto für Frau Kowalczyk",
                       text="Frau Kowalczyk (geb. 14.07.1991)", attachments=[SMALL])
    assert original.sender == "Erika Muster <erika.muster@example.net>"
    assert (original.subject, original.text) == ("Konto für Frau Kowalczyk",
                                                 "Frau Kowalczyk (geb. 14.07.1991)")
    view = original.view()
    assert view["attachments"] == [] and view["omitted"] == [
        {"filename": "ausweis.png", "size": 600}]
    assert view["article"] == 1 and view["text"].startswith("Frau Kowalczyk")
    bare = of_mail(parsed_mail(from_=Address("", "x@example.net")), article=1, max_bytes=0)
    assert bare.sender == "x@example.net"
