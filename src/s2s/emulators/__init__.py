"""Protocol-faithful local emulators of the providers, for tests, demos and benchmarks.

Each is a real network server bound to loopback that speaks the provider's production wire
protocol, with deterministic model behaviour (:mod:`s2s.emulators.behavior`) and fault injection.
"""
