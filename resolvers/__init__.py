"""Query logic: async functions (context, args) -> domain records. No GraphQL types here."""
