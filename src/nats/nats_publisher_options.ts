/**
 * The options of a {@linkcode NatsPublisher} and of each publish.
 *
 * @module
 */

import type { NatsHeaders } from "./nats_headers.ts";
import type { NatsSubject } from "./nats_subject.ts";

/**
 * Options for {@linkcode NatsPublisher}.
 *
 * @example The limit the server announced
 * ```ts
 * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
 * import { NatsPublisher, type NatsPublisherOptions } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 8 });
 * using flusher = new WriteFlusher(pool);
 * using writer = new Writer(pool, flusher);
 * const options: NatsPublisherOptions = { maxPayload: 8 * 1024 * 1024 }; // INFO's max_payload
 * const publisher = new NatsPublisher(writer, options);
 * assert.equal(publisher.maxPayload, 8 * 1024 * 1024);
 * ```
 */
export interface NatsPublisherOptions {
  /**
   * The most bytes of headers and payload one message may carry: the
   * server's `max_payload`, from its `INFO`. A larger publish is refused
   * before anything is written. Default 1,048,576 (1 MiB), the server's
   * default.
   */
  maxPayload?: number;
}

/**
 * What a publish may carry besides its subject and payload.
 *
 * @example A request's reply subject, and headers
 * ```ts
 * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
 * import { NatsHeaders, NatsPublisher, type NatsPublishOptions, NatsSubject } from "@bab/bab/nats";
 *
 * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 4 });
 * using flusher = new WriteFlusher(pool);
 * using writer = new Writer(pool, flusher);
 * const publisher = new NatsPublisher(writer);
 *
 * const options: NatsPublishOptions = {
 *   reply: new NatsSubject("_INBOX.7"),
 *   headers: new NatsHeaders({ "Trace-Id": "abc" }),
 * };
 * publisher.tryPublishString(new NatsSubject("time.now"), "?", options);
 * ```
 */
export interface NatsPublishOptions {
  /** Where a responder should send its reply: a subject without wildcards. */
  reply?: NatsSubject;
  /** Headers: the message is sent with `HPUB`, the header block before the payload. */
  headers?: NatsHeaders;
}
