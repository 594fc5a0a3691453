# The s2s service image: Ray's own image (Ray 2.60.0, Python 3.12; the same Ray version as
# constraints.txt and the RayService's rayVersion) with s2s, actors/ and deployments/
# installed. One image for the Ray head, the Ray workers and the tool workers.
#   docker build -t registry.example.com/s2s:0.1.0 .
FROM rayproject/ray:2.60.0-py312

# The project installs into the image's Python (Ray is already there, pinned the same).
WORKDIR /home/ray/s2s
COPY --chown=ray:users pyproject.toml constraints.txt README.md ./
COPY --chown=ray:users src ./src
COPY --chown=ray:users actors ./actors
COPY --chown=ray:users deployments ./deployments
RUN pip install --no-cache-dir -c constraints.txt ".[all]" \
    && python -c "import s2s, actors, deployments.app, deployments.drain"

# The default configuration; on Kubernetes a ConfigMap is mounted over /etc/s2s instead.
COPY --chown=ray:users config.yaml /etc/s2s/config.yaml
ENV S2S_CONFIG=/etc/s2s/config.yaml \
    PYTHONUNBUFFERED=1

# Not the source tree: Ray workers and Serve import actors/ and deployments/ from
# site-packages, so a stray checkout cannot shadow them.
WORKDIR /home/ray
USER ray
