"""The Anthropic wire format: the Messages API (`messages.py`), read back by `_events.py`."""
