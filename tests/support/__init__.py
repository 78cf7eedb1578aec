"""Shared test helpers, one of each: `waiting.wait_until` (bounded waits that say what they waited
for), `process.GatewayProcess` (the real gateway as a subprocess) and `memory` (the in-memory fake
of the hub's Connection protocol)."""
