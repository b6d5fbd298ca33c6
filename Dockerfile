# One image for every urne process; the command picks the role
# (`urne service vote`, `urne gateway`, `urne up`).
FROM python:3.11-slim
# Production unless told otherwise: development secrets and keys made on the fly are
# refused (`-e URNE_ENVIRONMENT=development` for a throwaway demo).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 URNE_ENVIRONMENT=production
WORKDIR /app
COPY pyproject.toml README.md ./
COPY urne ./urne
COPY services ./services
COPY gateway ./gateway
RUN pip install --no-cache-dir . && useradd --uid 10001 --no-create-home urne
USER 10001
ENTRYPOINT ["urne"]
CMD ["up", "--host", "0.0.0.0", "--data-dir", "/data"]
