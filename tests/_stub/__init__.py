"""Test helpers around the API: a Wire recording requests to the sandbox, hooks on the n-th
request, scaled clocks, and a 1 req/s HTTP stub for the pacing benchmarks."""
