"""The OpenAI wire formats: Chat Completions (and every server that copies it) and Responses."""
