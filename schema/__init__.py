"""The GraphQL schema: strawberry types, inputs, enums and the Query/Mutation/Subscription roots."""
