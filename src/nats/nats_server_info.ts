/**
 * {@linkcode NatsServerInfo}: what a NATS server says about itself in its
 * `INFO` line, and {@linkcode parseServerInfo}, which checks it.
 *
 * @module
 */

import { NatsProtocolError } from "./nats_errors.ts";

/**
 * The fields of a server's `INFO` a client needs, checked and with defaults
 * filled in: a boolean the server left out (it omits those that are false)
 * is `false`, and a field only some servers send is optional. Fields a
 * client has no use for are dropped. Names are the protocol's own.
 *
 * @example The INFO of a local server
 * ```ts
 * import { type NatsServerInfo, parseServerInfo } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const info: NatsServerInfo = parseServerInfo(
 *   '{"server_id":"NABC","server_name":"hub","version":"2.9.10","proto":1,"headers":true,"max_payload":1048576,"client_id":5}',
 * );
 * assert.equal(info.max_payload, 1048576);
 * assert.equal(info.auth_required, false); // left out: false
 * assert.equal(info.connect_urls, undefined);
 * ```
 */
export interface NatsServerInfo {
  /** The server's unique id (a public nkey on current servers). */
  "server_id": string;
  /** The server's configured name; its id when it has none, or is too old to say. */
  "server_name": string;
  /** The server's version, such as "2.9.10". */
  version: string;
  /**
   * The protocol level it speaks: 1 (or more) for one that sends INFO again
   * as its cluster changes. 0 when left out.
   */
  proto: number;
  /** The largest payload it accepts, and sends, in bytes (headers included). */
  "max_payload": number;
  /** Whether it supports message headers (HPUB and HMSG). */
  headers: boolean;
  /** Whether CONNECT must carry credentials. */
  "auth_required": boolean;
  /** Whether the client must upgrade the connection to TLS before CONNECT. */
  "tls_required": boolean;
  /** Whether the client may upgrade the connection to TLS. */
  "tls_available": boolean;
  /** Whether JetStream is enabled. */
  jetstream: boolean;
  /** Lame duck mode: the server is about to shut down; clients should move. */
  ldm: boolean;
  /** The id the server gave this connection. */
  "client_id"?: number;
  /** The client's address as the server sees it. */
  "client_ip"?: string;
  /** The host the server listens on. */
  host?: string;
  /** The port the server listens on for clients. */
  port?: number;
  /** Other servers of its cluster a client may connect to, as "host:port". */
  "connect_urls"?: string[];
  /** The same for websocket clients. */
  "ws_connect_urls"?: string[];
  /** A challenge to sign with an nkey or user JWT, in CONNECT's `sig`. */
  nonce?: string;
  /** The name of the server's cluster. */
  cluster?: string;
  /** The JetStream domain. */
  domain?: string;
}

/**
 * Parses and checks the JSON of an `INFO` line (the text after `INFO `).
 *
 * @param text The JSON object the server sent.
 * @returns Its fields, checked, with defaults filled in (see
 * {@linkcode NatsServerInfo}).
 * @throws {NatsProtocolError} If the text is not a JSON object, lacks
 * `server_id`, `version` or `max_payload`, or a field has the wrong type:
 * `max_payload` must be a positive integer, `proto`, `client_id` and `port`
 * non-negative integers, the URL lists arrays of strings.
 *
 * @example A server that says too little
 * ```ts
 * import { NatsProtocolError, parseServerInfo } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const info = parseServerInfo('{"server_id":"N1","version":"2.10.0","max_payload":65536,"tls_required":true}');
 * assert.deepEqual([info.server_name, info.tls_required, info.proto], ["N1", true, 0]);
 * assert.throws(() => parseServerInfo('{"server_id":"N1","version":"2.10.0"}'), NatsProtocolError);
 * assert.throws(() => parseServerInfo("not json"), NatsProtocolError);
 * ```
 */
export function parseServerInfo(text: string): NatsServerInfo {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw bad(`it is not JSON (${(error as Error).message})`, text);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw bad("it is not a JSON object", text);
  }
  const fields = value as Record<string, unknown>;
  const check = new Checker(fields, text);
  const serverId = check.string("server_id", true)!;
  const info: NatsServerInfo = {
    "server_id": serverId,
    "server_name": check.string("server_name", false) ?? serverId,
    version: check.string("version", true)!,
    proto: check.integer("proto", 0, false) ?? 0,
    "max_payload": check.integer("max_payload", 1, true)!,
    headers: check.boolean("headers"),
    "auth_required": check.boolean("auth_required"),
    "tls_required": check.boolean("tls_required"),
    "tls_available": check.boolean("tls_available"),
    jetstream: check.boolean("jetstream"),
    ldm: check.boolean("ldm"),
  };
  // Optional fields are left out, not undefined (exactOptionalPropertyTypes).
  const clientId = check.integer("client_id", 0, false);
  if (clientId !== undefined) info.client_id = clientId;
  const port = check.integer("port", 0, false);
  if (port !== undefined) info.port = port;
  for (const name of ["client_ip", "host", "nonce", "cluster", "domain"] as const) {
    const field = check.string(name, false);
    if (field !== undefined) info[name] = field;
  }
  for (const name of ["connect_urls", "ws_connect_urls"] as const) {
    const urls = check.strings(name);
    if (urls !== undefined) info[name] = urls;
  }
  return info;
}

/** Reads typed fields of an INFO object, throwing on a wrong type. */
class Checker {
  readonly #fields: Record<string, unknown>;
  readonly #text: string;

  constructor(fields: Record<string, unknown>, text: string) {
    this.#fields = fields;
    this.#text = text;
  }

  string(name: string, required: boolean): string | undefined {
    const value = this.#present(name, required);
    if (value === undefined || typeof value === "string") return value;
    throw this.#wrong(name, "a string", value);
  }

  integer(name: string, min: number, required: boolean): number | undefined {
    const value = this.#present(name, required);
    if (value === undefined || (Number.isSafeInteger(value) && (value as number) >= min)) {
      return value as number | undefined;
    }
    throw this.#wrong(name, min > 0 ? "a positive integer" : "a non-negative integer", value);
  }

  boolean(name: string): boolean {
    const value = this.#present(name, false);
    if (value === undefined || typeof value === "boolean") return value === true;
    throw this.#wrong(name, "true or false", value);
  }

  strings(name: string): string[] | undefined {
    const value = this.#present(name, false);
    if (value === undefined) return undefined;
    if (Array.isArray(value) && value.every((item) => typeof item === "string")) {
      return value as string[];
    }
    throw this.#wrong(name, "an array of strings", value);
  }

  /** The field's value; undefined when absent (null counts as absent). */
  #present(name: string, required: boolean): unknown {
    const value = this.#fields[name] ?? undefined;
    if (value === undefined && required) throw bad(`it has no ${name}`, this.#text);
    return value;
  }

  #wrong(name: string, want: string, value: unknown): NatsProtocolError {
    return bad(`${name} must be ${want}, received ${JSON.stringify(value)}`, this.#text);
  }
}

function bad(what: string, text: string): NatsProtocolError {
  const shown = JSON.stringify(text.slice(0, 60)) + (text.length > 60 ? "..." : "");
  return new NatsProtocolError(`Cannot read the NATS server's INFO: ${what}: ${shown}`);
}
