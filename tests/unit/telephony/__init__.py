"""Unit tests of the telephony protocols (sans-I/O)."""
