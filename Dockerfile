# scfed: one image for every role (node, coordinator, operator, governance commands).
#
#   docker build -t scfed:local .
#   docker run --rm -v /srv/scfed/kumamoto:/state scfed:local node serve --config /state/node.toml
#
# The image holds the program only: no keys, configuration or state. A party's folder (its
# keys, its .toml and the state database beside it) is a volume, written by the unprivileged
# user scfed (uid 10001); compose.yaml runs a whole demo federation from one such volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 scfed \
    && useradd --system --uid 10001 --gid scfed --home-dir /home/scfed --create-home \
       --shell /usr/sbin/nologin scfed

# Only what the package is built from: the metadata and its Python packages.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scfed ./scfed
COPY edge ./edge
COPY node ./node
COPY coordinator ./coordinator
COPY protos ./protos
COPY auditor ./auditor
COPY governance ./governance
COPY tools ./tools
COPY dashboard ./dashboard
RUN pip install --no-cache-dir . \
    && rm -rf /src \
    && mkdir -p /state /fed \
    && chown scfed:scfed /state /fed \
    && chmod 0700 /state /fed

USER scfed
WORKDIR /home/scfed
# A party's folder: keys, configuration and the state database. compose.yaml uses /fed.
VOLUME ["/state", "/fed"]
ENTRYPOINT ["scfed"]
CMD ["--help"]
