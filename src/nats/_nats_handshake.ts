// The first thing a NATS server sends is one INFO line, before the client
// says anything. It is read here, before the connection's receiver exists,
// because the receiver's limits (the largest payload) come from it.

import { NatsConnectionError, NatsProtocolError } from "./nats_errors.ts";
import type { NatsConnectOptions } from "./nats_connection_options.ts";

const decoder = new TextDecoder();

/**
 * Reads the server's first line, `INFO {...}\r\n`, within `timeout` ms.
 *
 * @returns The JSON after "INFO ", and any bytes read past the line.
 * @throws {NatsConnectionError} If the server closes first or is too slow.
 * @throws {NatsProtocolError} If the line is not INFO, or longer than `maxLine`.
 */
export async function readInfoLine(
  conn: Deno.Conn,
  maxLine: number,
  timeout: number,
): Promise<{ line: string; rest: Uint8Array }> {
  const buffer = new Uint8Array(maxLine + 2);
  let filled = 0;
  const timer = setTimeout(() => conn.close(), timeout);
  try {
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buffer.subarray(filled));
      } catch (error) {
        throw new NatsConnectionError(
          `The NATS server did not send its INFO within ${timeout} ms`,
          { cause: error },
        );
      }
      if (n === null) {
        throw new NatsConnectionError("The NATS server closed the connection before its INFO");
      }
      const from = Math.max(0, filled - 1);
      filled += n;
      const end = lineEnd(buffer, from, filled);
      if (end === -1) {
        if (filled === buffer.length) {
          throw new NatsProtocolError(
            `The NATS server's first line is over ${maxLine} bytes: "${
              decoder.decode(buffer.subarray(0, 40))
            }..."`,
          );
        }
        continue;
      }
      const text = decoder.decode(buffer.subarray(0, end));
      if (!/^INFO[ \t]/i.test(text)) {
        throw new NatsProtocolError(
          `The NATS server's first line is not INFO: "${text.slice(0, 40)}"`,
        );
      }
      return { line: text.slice(5).trim(), rest: buffer.slice(end + 2, filled) };
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Where "\r\n" starts in `bytes[from, to)`, or -1. */
function lineEnd(bytes: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 1 < to; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10) return i;
  }
  return -1;
}

/** The CONNECT line for `options`: quiet (no +OK), protocol 1 (headers, no_responders). */
export function connectLine(options: NatsConnectOptions): string {
  const connect: Record<string, unknown> = {
    verbose: false,
    pedantic: false,
    "tls_required": false,
    lang: "deno-bab",
    version: "0.1.0",
    protocol: 1,
    headers: true,
    "no_responders": options.noResponders ?? false,
  };
  if (options.name !== undefined) connect.name = options.name;
  if (options.user !== undefined) connect.user = options.user;
  if (options.pass !== undefined) connect.pass = options.pass;
  if (options.token !== undefined) connect["auth_token"] = options.token;
  return `CONNECT ${JSON.stringify(connect)}\r\n`;
}
