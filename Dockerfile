# syntax=docker/dockerfile:1
# Multi-stage: Native AOT publish in the SDK image, then only the binary on a chiseled runtime-deps base (no shell, no package
# manager, non-root "app" user). The image holds one ~11 MB binary plus glibc/OpenSSL/ICU-free deps.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
RUN apt-get update && apt-get install -y --no-install-recommends clang zlib1g-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Directory.Build.props Directory.Packages.props ./
COPY src/ src/
RUN dotnet publish src/Gateway/Gateway.csproj -c Release -o /out \
 && test -x /out/gateway

FROM mcr.microsoft.com/dotnet/runtime-deps:10.0-noble-chiseled AS runtime
WORKDIR /app
COPY --from=build /out/gateway /app/gateway
COPY gateway.toml /app/gateway.toml
USER app
ENV PORT=8080
EXPOSE 8080
# The chiseled base has no curl: the binary probes itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/app/gateway", "healthcheck", "http://127.0.0.1:8080/health"]
ENTRYPOINT ["/app/gateway"]
CMD ["serve", "/app/gateway.toml"]
