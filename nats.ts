/**
 * bab speaks NATS: publish from pooled memory through bab's writers, and
 * receive each message's payload as a zero-copy {@linkcode Packet} of a
 * {@linkcode BufferPool}, over one TCP connection to a `nats-server`.
 *
 * @module
 */
