# Multi-stage build: a static binary on a distroless base, running as non-root.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/tokensmith/tokensmith/cmd.Version=${VERSION}" \
      -o /out/tokensmith . \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tokensmith /usr/local/bin/tokensmith
# The embedded store, signing keys and generated admin token live here; mount a volume.
COPY --from=build --chown=nonroot:nonroot /out/data /var/lib/tokensmith
ENV TOKENSMITH_DATA_DIR=/var/lib/tokensmith \
    TOKENSMITH_LISTEN=:8080 \
    TOKENSMITH_ADMIN_LISTEN=:8081
# 8081 is the admin API: publish it only on a private network.
EXPOSE 8080 8081
VOLUME ["/var/lib/tokensmith"]
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/tokensmith"]
CMD ["serve"]
