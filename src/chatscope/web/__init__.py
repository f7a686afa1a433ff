"""chatscope over HTTP: an OpenAI-compatible API, saved sessions per tenant, and the chat page.

    app = create_app(ApplicationContainer(settings=load_settings(), environ=dict(os.environ)))

`chatscope serve` runs it with uvicorn. The app owns its container's resources (its lifespan
starts and stops them) and builds a fresh scope for every request.
"""

from __future__ import annotations

from chatscope.web.app import create_app
from chatscope.web.tenancy import hash_key

__all__ = ["create_app", "hash_key"]
