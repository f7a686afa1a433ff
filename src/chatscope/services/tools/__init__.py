"""Tools as the services see them: the `Tool` port, its declaration, and the per-scope registry."""
