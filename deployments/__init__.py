"""The Ray Serve layer: the ingress deployment and the commands that run the service."""
