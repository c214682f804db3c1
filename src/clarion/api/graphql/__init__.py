"""GraphQL API (strawberry): the graph as tooling sees it."""
