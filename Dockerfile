# Builds the `shop` binary and runs it on a slim Debian image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p api --bin shop

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 shop
COPY --from=build /src/target/release/shop /usr/local/bin/shop
USER shop
ENV SHOP_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["shop"]
CMD ["serve"]
