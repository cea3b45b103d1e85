"""The routing-rules engine in parts (YAML with lines, schema, predicates, evaluation); the
public surface is `gateway.routing.ruleset`, which is what the rest of postdesk imports."""
