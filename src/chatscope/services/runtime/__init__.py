"""The runtime scope: frozen state and context, scope factory, auth, invocation, telemetry."""
