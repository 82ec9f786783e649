"""Test doubles of the Clore.ai API: an in-memory fake (MockTransport) and a 1 req/s HTTP stub."""
