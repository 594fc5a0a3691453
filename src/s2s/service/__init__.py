"""The parts of the distributed service that do not need Ray: configuration, the event envelope,
the Redis event log and fan-out, the actor media channel, session state and the embedded Redis.

``actors/`` and ``deployments/`` (the Ray layer) build on these; so can any Python subscriber.
Needs the ``service`` extra (redis, pyyaml).
"""
