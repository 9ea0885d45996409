# One image for every step of the pipeline: simulators, ingest consumers, dashboard, migrations.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY ioc ioc
COPY streams streams
COPY simulators simulators
COPY layouts layouts
COPY sql sql
# Editable so that `ioc db migrate` finds sql/ beside the package.
# The locked set (exact versions, hashes), then the project with no further resolution.
RUN pip install --require-hashes -r requirements.lock \
    && pip install --no-deps --no-build-isolation -e . && useradd --system --uid 10001 ioc && mkdir -p /data && chown ioc /data
USER ioc
ENV IOC_DATA_DIR=/data
ENTRYPOINT ["ioc"]
