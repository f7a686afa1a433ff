"""History: the in-memory store and middle-out compression (plan, summariser, compressor)."""
