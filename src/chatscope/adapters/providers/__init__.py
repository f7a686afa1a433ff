"""Model providers: one module per wire format, the offline demo, and the HTTP and SSE plumbing."""
