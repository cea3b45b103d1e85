"""The mail model and pure helpers on mail bytes: MIME walk, text, TNEF, file
names, Thread-Index, reply text, composing outgoing MIME, language. Imports
nothing of postdesk but `errors`."""
