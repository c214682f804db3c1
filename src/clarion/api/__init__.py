"""HTTP API: agent ingestion (REST), GraphQL for tooling, health and metrics."""
