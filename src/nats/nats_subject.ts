/**
 * A NATS subject, checked once and encoded once, so that publishing to it
 * copies its bytes and checks nothing.
 *
 * @module
 */

import { describeChar, loneSurrogate, wildcardError } from "./_nats_checks.ts";

/**
 * The longest subject a {@linkcode NatsSubject} takes, in bytes of UTF-8:
 * 1,024. A publish's control line holds a subject, a reply subject and two
 * lengths; at this limit that is at most 2,077 bytes (`HPUB`, both subjects,
 * two 10-digit lengths, spaces and CRLF), under the 4,096 bytes a
 * `nats-server` accepts by default (its `max_control_line`).
 *
 * @example
 * ```ts
 * import { MAX_NATS_SUBJECT_LENGTH, NatsSubject } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * new NatsSubject("a".repeat(MAX_NATS_SUBJECT_LENGTH));
 * assert.throws(() => new NatsSubject("a".repeat(MAX_NATS_SUBJECT_LENGTH + 1)), RangeError);
 * ```
 */
export const MAX_NATS_SUBJECT_LENGTH: number = 1024;

const encoder = new TextEncoder();

/**
 * A subject such as `orders.eu.created`: tokens separated by dots. Made
 * once and reused, it carries its UTF-8 {@linkcode NatsSubject.bytes}, which
 * a {@linkcode NatsPublisher} copies into each message's control line.
 *
 * A subject is valid when it has at least one token, no token is empty (no
 * leading, trailing or double dot), and it holds no whitespace and no
 * control character. `*` (any one token) and `>` (every token from there
 * on, so only as the last) are wildcards when they are a whole token: a
 * subject with one is {@linkcode NatsSubject.wildcard}, fit to subscribe to
 * but never to publish to. Any other character, UTF-8 included, is taken as
 * it is; `a*` is a plain token.
 *
 * @example Made once, published to many times
 * ```ts
 * import { NatsSubject } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const created = new NatsSubject("orders.eu.created");
 * assert.equal(created.text, "orders.eu.created");
 * assert.equal(created.bytes.length, 17);
 * assert.equal(created.wildcard, false);
 *
 * assert.equal(new NatsSubject("orders.*.created").wildcard, true);
 * assert.throws(() => new NatsSubject("orders..created"), /token 2 is empty/);
 * assert.throws(() => NatsSubject.literal("orders.>"), TypeError);
 * ```
 */
export class NatsSubject {
  /** The subject as given. */
  readonly text: string;
  /** Its UTF-8 bytes: what goes on the wire. Do not modify them. */
  readonly bytes: Uint8Array;
  /** Whether a token is `*` or `>`: a subscription's subject, not a publish's. */
  readonly wildcard: boolean;

  /**
   * Checks `text` and encodes it.
   *
   * @example
   * ```ts
   * import { NatsSubject } from "@bab/bab/nats";
   * import assert from "node:assert/strict";
   *
   * assert.deepEqual([...new NatsSubject("a.é").bytes], [97, 46, 195, 169]);
   * assert.throws(() => new NatsSubject("a b"), /whitespace \(U\+0020\) at index 1/);
   * ```
   *
   * @param text The subject.
   * @throws {TypeError} If it is empty, has an empty token, whitespace, a
   * control character or a lone surrogate, or `>` before its last token.
   * @throws {RangeError} If its UTF-8 takes more than
   * {@linkcode MAX_NATS_SUBJECT_LENGTH} bytes.
   */
  constructor(text: string) {
    this.wildcard = check(text);
    const bytes = encoder.encode(text);
    if (bytes.length > MAX_NATS_SUBJECT_LENGTH) {
      throw new RangeError(
        `Invalid NATS subject: its UTF-8 takes ${bytes.length} bytes; the limit is ${MAX_NATS_SUBJECT_LENGTH}`,
      );
    }
    this.text = text;
    this.bytes = bytes;
  }

  /**
   * A subject to publish to: as the constructor, and refused if it has a
   * wildcard, which a server accepts only in a subscription.
   *
   * @example
   * ```ts
   * import { NatsSubject } from "@bab/bab/nats";
   * import assert from "node:assert/strict";
   *
   * const subject = NatsSubject.literal("metrics.cpu");
   * assert.equal(subject.wildcard, false);
   * assert.throws(() => NatsSubject.literal("metrics.*"), /wildcard/);
   * ```
   *
   * @param text The subject.
   * @returns The subject, without wildcards.
   * @throws {TypeError} If it is invalid, or has a wildcard.
   * @throws {RangeError} If it is longer than {@linkcode MAX_NATS_SUBJECT_LENGTH} bytes.
   */
  static literal(text: string): NatsSubject {
    const subject = new NatsSubject(text);
    if (subject.wildcard) throw wildcardError(text, "publish to");
    return subject;
  }

  /**
   * The subject's text.
   *
   * @example
   * ```ts
   * import { NatsSubject } from "@bab/bab/nats";
   * import assert from "node:assert/strict";
   *
   * assert.equal(`${new NatsSubject("a.b")}`, "a.b");
   * ```
   *
   * @returns {@linkcode NatsSubject.text}.
   */
  toString(): string {
    return this.text;
  }
}

/**
 * Checks a subject's characters and tokens; returns whether it has a
 * wildcard token.
 */
function check(text: string): boolean {
  if (text.length === 0) throw invalid(text, "it is empty");
  let wildcard = false;
  let token = 1;
  let tokenStart = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i === text.length ? 0x2e : text.charCodeAt(i);
    if (c === 0x2e) {
      const length = i - tokenStart;
      if (length === 0) {
        throw invalid(
          text,
          `token ${token} is empty (at index ${i}); dots separate non-empty tokens`,
        );
      }
      if (length === 1) {
        const only = text.charCodeAt(tokenStart);
        if (only === 0x2a) wildcard = true;
        else if (only === 0x3e) {
          if (i !== text.length) {
            throw invalid(
              text,
              `">" is token ${token}, not the last; it stands for every token after it`,
            );
          }
          wildcard = true;
        }
      }
      token++;
      tokenStart = i + 1;
    } else if (c <= 0x20 || c === 0x7f) {
      throw invalid(
        text,
        `${describeChar(c)} at index ${i}; a subject has no whitespace or control characters`,
      );
    }
  }
  const lone = loneSurrogate(text);
  if (lone >= 0) {
    throw invalid(text, `a lone surrogate at index ${lone}, which UTF-8 cannot encode`);
  }
  return wildcard;
}

function invalid(text: string, why: string): TypeError {
  return new TypeError(`Invalid NATS subject ${JSON.stringify(text)}: ${why}`);
}
