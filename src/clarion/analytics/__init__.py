"""Analytics: pure functions over plain data (features, clustering, the SGT policy matrix)."""
