# syntax=docker/dockerfile:1
# The narrate image for docker-compose.yml (migrate, worker, beat, flower).
# espeak-ng and ffmpeg come inside the espeakng-loader and imageio-ffmpeg wheels
# (x86_64 and aarch64), so no system packages are installed and nothing is fetched at run time.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --user-group narrate

WORKDIR /src
COPY pyproject.toml README.md ./
COPY narrate ./narrate
COPY jobs ./jobs
COPY renderer ./renderer
COPY ssml ./ssml
COPY migrations ./migrations
RUN pip install --no-cache-dir '.[monitor]' \
    && rm -rf /src

# /app is an empty working directory owned by narrate, so that imports come from the installed
# package and beat may write its schedule file. The storage directory exists in the image, owned
# by narrate, so that a named volume mounted there starts out writable by the non-root user.
WORKDIR /app
RUN mkdir -p /data/storage \
    && chown narrate:narrate /data/storage /app
USER narrate
ENV NARRATE_STORAGE_DIR=/data/storage

CMD ["narrate", "--help"]
