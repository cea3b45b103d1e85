"""Keep what a person newly wrote, not the whole quoted history: replies are stored (and an
agent's reply relayed) without the quoted earlier mails, signature and #command lines.

`prepare` (PREPARE) makes the body variants from the mail alone, before the write transaction
(so the redaction analysis can run on each); `run` chooses the one to store once the ticket and the
sender's role are known. A new ticket keeps the full text: a forwarded history may be the
request itself."""

from __future__ import annotations

from gateway.agents import commands as agentcommands
from gateway.agents import reply as agentreply
from gateway.mail import replytext
from gateway.mail.model import ParsedMail
from gateway.pipeline import thread
from gateway.pipeline.context import Context, Preparing, SenderRole


def prepare(state: Preparing) -> None:
    assert state.mail is not None
    mail, full = state.mail, state.mail.text
    if state.settings.agent(mail.from_.email) is None:
        state.texts = {"full": full}
        if could_thread(mail, state.settings.service.ticket_prefix):
            state.texts["reply"] = replytext.new_text(full)  # "" if nothing new
        return
    # An agent answers a mail of ours: only what stands outside its marker lines is theirs.
    separated = agentreply.separate(full)
    state.texts = {"full": full, "reply": separated.text}
    if separated.problem is not None:  # holds the reply in the transaction (commands)
        state.inseparable = separated.problem
        state.decide("quotes", "inseparable", problem=separated.problem)
    state.commands = agentcommands.parse_commands(separated.text)
    service = state.settings.service.address
    agents = [agent.email for agent in state.settings.agents]
    state.texts["relay"] = agentreply.replace_addresses(
        state.commands.remaining_text, agents, service
    )


def could_thread(mail: ParsedMail, prefix: str) -> bool:
    """Whether the thread stage could find a ticket for `mail` (see thread._find): without a
    ticket tag, In-Reply-To, References or Thread-Index the mail opens a new ticket, which keeps
    the full text, so its reply text is not worth the quote parser's time (a third of PREPARE
    without redaction)."""
    return bool(mail.in_reply_to or mail.references or mail.thread_index is not None
                or thread.subject_ref(mail.subject, prefix))


def run(ctx: Context) -> None:
    assert ctx.mail is not None
    if ctx.sender_role == SenderRole.AGENT and not ctx.command_errors:
        variant = "relay"
    elif ctx.sender_role == SenderRole.REQUESTER and (ctx.ticket is None
                                                       or not ctx.texts.get("reply")):
        variant = "full"  # a new request, or a reply whose new text we cannot tell apart
    else:
        variant = "reply"
    ctx.body_variant = variant if variant in ctx.texts else "full"
    ctx.mail.text = ctx.texts.get(ctx.body_variant, ctx.mail.text)
    if ctx.body_variant != "full":
        ctx.decide("quotes", "stripped", variant=ctx.body_variant)
