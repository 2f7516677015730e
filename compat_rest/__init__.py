"""REST compatibility layer: documented /api paths served by executing GraphQL documents."""
