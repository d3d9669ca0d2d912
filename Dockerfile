# DocGate service image. Configuration comes from the environment (DOCGATE_*), and
# DOCGATE_CONFIG may name a production TOML mounted into the container
# (see config/production.example.toml). Keys and tokens are mounted, never baked in.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --home-dir /var/lib/docgate --create-home docgate

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY signing ./signing
COPY exchange ./exchange
COPY config ./config
RUN pip install . && rm -rf /root/.cache

USER docgate
ENV DOCGATE_HOST=0.0.0.0 \
    DOCGATE_PORT=8080 \
    DOCGATE_SERVICE__VAR_DIR=/var/lib/docgate
VOLUME ["/var/lib/docgate"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]

CMD ["docgate", "serve"]
