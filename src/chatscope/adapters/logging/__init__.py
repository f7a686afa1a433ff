"""structlog: set-up at the entry point, redaction, and the sink that logs telemetry events."""
