"""Stand-ins for the servers postdesk talks to, each a real server on loopback: an SMTP sink
(the requester's MTA or a relay), an HTTPS server with a throwaway CA, and on it the EWS and
Graph endpoints the real exchangelib, msal and httpx clients speak to."""
