# Multi-stage build, running as non-root. Two images from one file:
#
#   docker build -t tokensmith .                        # OpenSSL signer (default): cgo + libcrypto 3
#   docker build --target static -t tokensmith:static . # pure-Go signer: static binary, no libraries
#
# Both run as the distroless nonroot user (65532) and keep their data in /var/lib/tokensmith.

FROM golang:1.26-bookworm AS source
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN mkdir -p /out/data
ARG VERSION=dev
ENV GO_LDFLAGS="-s -w -X github.com/tokensmith/tokensmith/cmd.Version=${VERSION}"

# The pure-Go build: crypto/rsa signs; the binary links statically.
FROM source AS build-static
RUN CGO_ENABLED=0 go build -trimpath -ldflags "${GO_LDFLAGS}" -o /out/tokensmith . \
 && /out/tokensmith version | grep -q 'signer=go '

# The OpenSSL build: cgo against Debian bookworm's libcrypto 3 headers (libssl-dev 3.0.x);
# the runtime image below carries the matching libssl3.
FROM source AS build-openssl
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libssl-dev \
 && rm -rf /var/lib/apt/lists/*
RUN CGO_ENABLED=1 go build -trimpath -tags openssl -ldflags "${GO_LDFLAGS}" -o /out/tokensmith . \
 && /out/tokensmith version | grep -q 'signer=openssl (OpenSSL 3\.'

FROM gcr.io/distroless/static-debian12:nonroot AS static
COPY --from=build-static /out/tokensmith /usr/local/bin/tokensmith
# The embedded store, signing keys and generated admin token live here; mount a volume.
COPY --from=build-static --chown=nonroot:nonroot /out/data /var/lib/tokensmith
ENV TOKENSMITH_DATA_DIR=/var/lib/tokensmith \
    TOKENSMITH_LISTEN=:8080 \
    TOKENSMITH_ADMIN_LISTEN=:8081
# 8081 is the admin API: publish it only on a private network.
EXPOSE 8080 8081
VOLUME ["/var/lib/tokensmith"]
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/tokensmith"]
CMD ["serve"]

# The default target, last so that a plain "docker build" makes it. distroless/base-debian12
# is glibc plus libssl3 (libcrypto.so.3) from Debian bookworm, the release the binary was
# built on, and nothing else.
FROM gcr.io/distroless/base-debian12:nonroot AS openssl
COPY --from=build-openssl /out/tokensmith /usr/local/bin/tokensmith
COPY --from=build-openssl --chown=nonroot:nonroot /out/data /var/lib/tokensmith
ENV TOKENSMITH_DATA_DIR=/var/lib/tokensmith \
    TOKENSMITH_LISTEN=:8080 \
    TOKENSMITH_ADMIN_LISTEN=:8081
EXPOSE 8080 8081
VOLUME ["/var/lib/tokensmith"]
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/tokensmith"]
CMD ["serve"]
