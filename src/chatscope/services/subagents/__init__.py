"""Subagents: profiles turned into scopes, the task runner, and the `task` / `emit_value` tools."""
