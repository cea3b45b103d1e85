"""`python -m gateway.cli`."""

from gateway.cli import console

console()
