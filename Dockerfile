# syntax=docker/dockerfile:1
# cfadmin image: web (default command) and worker (`python manage.py qcluster`) from one image.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml ./
# Runtime dependencies only (the code itself runs from /app, beside manage.py).
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && /opt/venv/bin/pip install -r requirements.txt

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CFADMIN_DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles
RUN groupadd --system --gid 10001 cfadmin \
    && useradd --system --uid 10001 --gid cfadmin --home-dir /app --shell /usr/sbin/nologin cfadmin \
    && mkdir -p /data \
    && chown cfadmin:cfadmin /data
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY manage.py ./
COPY templates ./templates
COPY cfadmin ./cfadmin
COPY tenants ./tenants
COPY stacks ./stacks
COPY ops ./ops
# Static files are collected at build time with throwaway values that never reach the image's env.
RUN SECRET_KEY=collectstatic-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz \
    SECRETS_ENCRYPTION_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    python manage.py collectstatic --noinput \
    && rm -f /tmp/collectstatic.sqlite3
USER 10001:10001
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# gunicorn trusts X-Forwarded-Proto only from the proxies in FORWARDED_ALLOW_IPS (an environment
# variable gunicorn and cfadmin both read; see .env.example): set it to Traefik's network.
CMD ["gunicorn", "cfadmin.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
