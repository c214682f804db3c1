"""Ingestion: EdgeGraph batches from agents, merged exactly once into the graph store."""
