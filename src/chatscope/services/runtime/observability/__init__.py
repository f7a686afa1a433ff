"""What a scope reports: its telemetry events (`telemetry.py`) and its traces (`tracing.py`,
the tracing port and its no-op)."""
