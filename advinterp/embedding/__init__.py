"""Attribute embeddings: SJE (structured joint embedding)."""
