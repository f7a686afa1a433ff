"""Tracing after the OpenTelemetry GenAI semantic conventions: the tracing port's adapter
(`otel`), the conventions' names and content (`genai`), and exporting traces as the standard
`OTEL_*` variables ask (`export`, with the `otel` extra)."""
