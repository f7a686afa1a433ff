"""The `chatscope` command line."""
