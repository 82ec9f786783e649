"""The simulated tools copied into every machine's PATH: standalone scripts (standard
library only) that read the order's hardware.json; importable here for their tests."""
