"""The domain: runtime scopes, the chat loop, history, subagents and tools, each a room of its own.

The loose modules are the vocabulary every room shares: frozen values, messages and events.
Services depend on ports (small protocols next to the services that use them) and plain data;
they do no I/O of their own.
"""
