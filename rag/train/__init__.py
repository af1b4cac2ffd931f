"""Models rag trains here from the packaged all-MiniLM-L6-v2 (`rag train ...`); torch loads when training starts."""
