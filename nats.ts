/**
 * bab speaks NATS: publish from pooled memory through bab's writers, and
 * receive each message's payload as a zero-copy {@linkcode Packet} of a
 * {@linkcode BufferPool}, over one TCP connection to a `nats-server`.
 *
 * @module
 */

export * from "./src/nats/nats_errors.ts";
export * from "./src/nats/nats_message.ts";
export * from "./src/nats/nats_receiver.ts";
export * from "./src/nats/nats_receiver_options.ts";
export * from "./src/nats/nats_server_handlers.ts";
export * from "./src/nats/nats_server_info.ts";
export * from "./src/nats/nats_headers.ts";
export * from "./src/nats/nats_publisher.ts";
export * from "./src/nats/nats_publisher_options.ts";
export * from "./src/nats/nats_reservation.ts";
export * from "./src/nats/nats_subject.ts";
export * from "./src/nats/nats_connection.ts";
export * from "./src/nats/nats_connection_options.ts";
export * from "./src/nats/nats_subscription.ts";
