"""dsa110: the domain layer of dsa110-graph (no GraphQL, no HTTP)."""
