"""Agents: proof tokens, the #command language, an agent's own text in a reply."""
