# The app's image: a static binary on distroless, run as uid 65532.
# Every base image is a build argument, so that air-gapped machines can use
# local stand-ins; the defaults are the official images.
ARG GO_IMAGE=golang:1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
# Empty GOPROXY and GOSUMDB mean Go's defaults; pass `go env` values to use a mirror.
ARG GOPROXY
ARG GOSUMDB
# go.mod's toolchain line names the Go that builds the app; golang images set GOTOOLCHAIN=local,
# which ignores it, so auto (the default here) has an older image's go fetch it through GOPROXY.
# The argument has another name because the image's ENV GOTOOLCHAIN would win over an ARG of its own.
ARG GO_TOOLCHAIN=auto
ENV GOTOOLCHAIN=${GO_TOOLCHAIN:-auto}
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/app ./app

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/app /app
USER 65532:65532
EXPOSE 8080 50051
# No shell in the image: the binary probes itself (GET /readyz on HTTP_ADDR's port).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
