# One image for every urne process; the command picks the role (`urne service vote`,
# `urne vote-worker`, `urne gateway`, `urne migrate`, `urne up` …): docker-compose.yml
# and infra/k8s/ run the same image with the commands of the distributed tests.

# Build stage: the wheels, with a compiler at hand for any dependency without one for
# this platform (cassandra-driver's extensions, when no wheel fits). None of it ships.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/urne
WORKDIR /src
COPY pyproject.toml README.md ./
COPY urne ./urne
COPY services ./services
COPY gateway ./gateway
# The pinned versions of pyproject.toml, nothing else (no dev extras in the image).
RUN /opt/urne/bin/pip install .

# Run stage: the interpreter and the virtualenv only; no compiler, no pip cache, no
# source tree beside the installed package.
FROM python:3.11-slim
# Production unless told otherwise: development secrets and keys made on the fly are
# refused (`-e URNE_ENVIRONMENT=development` for a throwaway demo).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 URNE_ENVIRONMENT=production \
    PATH=/opt/urne/bin:$PATH
COPY --from=build /opt/urne /opt/urne
# A fixed uid, not root: compose and the Kubernetes security contexts name it, and the
# root file system is mounted read-only (writable: the volumes, /tmp).
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin urne
USER 10001
WORKDIR /data
ENTRYPOINT ["urne"]
CMD ["up", "--host", "0.0.0.0", "--data-dir", "/data"]
