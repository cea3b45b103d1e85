"""The routing-rules engine in parts (YAML with lines, schema, predicates, evaluation); the
public surface is `gateway.ruleset`, which is what the rest of postdesk imports."""
