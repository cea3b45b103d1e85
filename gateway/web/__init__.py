"""The web surface of `postdesk serve` (config `web:`, off by default): the requesters' status
pages `/s/<token>` on the public listener (`app.public_app`), and an internal listener
(`app.internal_app`: `/healthz`, and the place where internal routes such as `/reports` are
mounted) that must never face the internet. No JavaScript, no cookies, no login: the link in
the requester's mail is the key (gateway.outgoing.statuslink)."""
