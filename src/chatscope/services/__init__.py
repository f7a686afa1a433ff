"""The domain: runtime scopes, chats, subagents, retry, history, and the ports adapters implement.

Services depend only on `chatscope.services.ports` and plain data; they do no I/O of their own.
"""
