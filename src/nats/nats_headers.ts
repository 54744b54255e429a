/**
 * NATS message headers, checked and encoded once, for publishing with
 * `HPUB`.
 *
 * @module
 */

import { describeChar, loneSurrogate } from "./_nats_checks.ts";

const encoder = new TextEncoder();

/**
 * Headers for a published message, in the block NATS puts before a
 * payload: `NATS/1.0\r\n`, a `Name: Value\r\n` line per header, then an empty
 * line. Made once from name–value pairs (a name may come more than once, in
 * order) or from a record, and reused: a {@linkcode NatsPublisher} copies
 * {@linkcode NatsHeaders.bytes} into each message that carries them.
 *
 * A name is one or more printable ASCII characters other than `:`; a value
 * is any text on one line (no CR, no LF), written as UTF-8. Header bytes
 * count towards the server's `max_payload`, as the payload's do.
 *
 * @example A message id for JetStream's deduplication
 * ```ts
 * import { NatsHeaders } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const headers = new NatsHeaders({ "Nats-Msg-Id": "order-17" });
 * assert.equal(
 *   new TextDecoder().decode(headers.bytes),
 *   "NATS/1.0\r\nNats-Msg-Id: order-17\r\n\r\n",
 * );
 *
 * const repeated = new NatsHeaders([["Tag", "a"], ["Tag", "b"]]);
 * assert.equal(repeated.bytes.length, 28);
 * assert.throws(() => new NatsHeaders({ "Bad Name": "x" }), /whitespace \(U\+0020\)/);
 * ```
 */
export class NatsHeaders {
  /** The header block as it goes on the wire, blank line included. Do not modify it. */
  readonly bytes: Uint8Array;

  /**
   * Checks every name and value and encodes the block.
   *
   * @example From a web `Headers` (whose names are lower-cased)
   * ```ts
   * import { NatsHeaders } from "@bab/bab/nats";
   * import assert from "node:assert/strict";
   *
   * const headers = new NatsHeaders(new Headers({ "Content-Type": "text/plain" }));
   * assert.match(new TextDecoder().decode(headers.bytes), /content-type: text\/plain/);
   * ```
   *
   * @param init Name–value pairs, or a record of them.
   * @throws {TypeError} If a name is empty or has `:`, whitespace, a control
   * or non-ASCII character; or a value has a CR, an LF or a lone surrogate.
   */
  constructor(init: Iterable<readonly [string, string]> | Readonly<Record<string, string>>) {
    const pairs = Symbol.iterator in init
      ? init as Iterable<readonly [string, string]>
      : Object.entries(init);
    let text = "NATS/1.0\r\n";
    for (const [name, value] of pairs) {
      checkName(name);
      checkValue(name, value);
      text += `${name}: ${value}\r\n`;
    }
    this.bytes = encoder.encode(`${text}\r\n`);
  }
}

function checkName(name: string): void {
  if (name.length === 0) throw new TypeError("Invalid NATS header name: it is empty");
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0x20 && c < 0x7f && c !== 0x3a) continue;
    const what = c === 0x3a
      ? `":" at index ${i}, which ends a name`
      : c > 0x7f
      ? `a non-ASCII character at index ${i}`
      : `${describeChar(c)} at index ${i}`;
    throw new TypeError(
      `Invalid NATS header name ${
        JSON.stringify(name)
      }: ${what}; names are printable ASCII other than ":"`,
    );
  }
}

function checkValue(name: string, value: string): void {
  const lineBreak = value.search(/[\r\n]/);
  if (lineBreak >= 0) {
    throw new TypeError(
      `Invalid NATS header value for ${JSON.stringify(name)}: a line break (${
        value[lineBreak] === "\r" ? "CR" : "LF"
      }) at index ${lineBreak}; a value is one line`,
    );
  }
  const lone = loneSurrogate(value);
  if (lone >= 0) {
    throw new TypeError(
      `Invalid NATS header value for ${
        JSON.stringify(name)
      }: a lone surrogate at index ${lone}, which UTF-8 cannot encode`,
    );
  }
}
