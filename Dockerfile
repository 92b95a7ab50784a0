# One image for the controller and the listener (the controller starts listener pods with its own image).
#   docker build -t gha-autoscaler:dev .
# Controller: `/gha-autoscaler controller ...`; listener pods run `/gha-autoscaler listener` (LISTENER_ENTRYPOINT).

FROM rust:1.95-bookworm AS build
RUN rustup target add wasm32-unknown-unknown
WORKDIR /src
COPY . .
# The production build: no demo, no fake GitHub, no in-memory Kubernetes API, no simulated kubelet.
RUN cargo build --release --locked -p gha-autoscaler --no-default-features && cp target/release/gha-autoscaler /gha-autoscaler

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /gha-autoscaler /gha-autoscaler
USER 65532:65532
ENTRYPOINT ["/gha-autoscaler"]
CMD ["controller"]
