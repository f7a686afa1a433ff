"""Tools the model may call: the workspace tools, one module per family (files, search, write)."""
