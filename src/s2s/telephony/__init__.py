"""Telephony platforms' protocols, sans-I/O."""
