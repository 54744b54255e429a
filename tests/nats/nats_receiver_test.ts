// NatsReceiver: server ops cut out of pool staging memory and dispatched in
// order, however the input is split, within the limits, with every malformed
// input a NatsProtocolError, and with no allocation on the MSG path. Every
// test ends with every buffer back in the pool. No server needed: the
// recorded stream below is what nats-server 2.9 sent (its INFO ends with a
// space), with case, spacing and payload variants added.
import assert from "node:assert/strict";
import {
  BufferPool,
  ClosedError,
  FrameBounds,
  FrameError,
  type Packet,
  ReleasedError,
} from "../../mod.ts";
import {
  type NatsMessage,
  NatsMessage as NatsMessageClass,
  NatsProtocolError,
  NatsReceiver,
  type NatsReceiverOptions,
  NatsServerError,
  type NatsServerHandlers,
  parseServerInfo,
} from "../../nats.ts";
import { NatsOpsCodec } from "../../src/nats/_nats_ops_codec.ts";
import { assertAllFree, chunkSource, flush, prng } from "../_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);

const INFO_JSON =
  '{"server_id":"NCWMVRBAPBGW","server_name":"hub","version":"2.9.10","proto":1,"go":"go1.19.8","host":"127.0.0.1","port":14222,"headers":true,"auth_required":true,"max_payload":1048576,"client_id":6,"client_ip":"127.0.0.1"}';

/** A stream of every op, with the events it must give. */
const RECORDED = [
  `INFO ${INFO_JSON} \r\n`,
  "+OK\r\n",
  "MSG ok.a 1 _INBOX.x 5\r\nhello\r\n",
  "HMSG ok.a 1 24 26\r\nNATS/1.0\r\nA: b\r\nC: d\r\n\r\nhi\r\n",
  "HMSG ok.b 7 rr 12 12\r\nNATS/1.0\r\n\r\n\r\n",
  "-ERR 'Invalid Publish Subject'\r\n",
  "MSG ok.a 1 0\r\n\r\n",
  "PONG\r\n",
  "PING\r\n",
  "MSG tricky 22 16\r\nMSG x 1 2\r\n\r\nPIN\r\n",
  "msg\tlower  3\t\t4\r\n\r\n\r\n\r\n",
  "hMsG mixed 4 r.1 12 14\r\nNATS/1.0\r\n\r\nok\r\n",
  "ping  \r\n",
  "+ok\r\n",
  "-err 'Authorization Violation'\r\n",
  "PONG\r\n",
].join("");

const RECORDED_EVENTS = [
  "INFO hub 1048576 true",
  "OK",
  'MSG ok.a 1 "_INBOX.x" null "hello"',
  'MSG ok.a 1 null "NATS/1.0\\r\\nA: b\\r\\nC: d\\r\\n\\r\\n" "hi"',
  'MSG ok.b 7 "rr" "NATS/1.0\\r\\n\\r\\n" ""',
  "ERR Invalid Publish Subject fatal=false",
  'MSG ok.a 1 null null ""',
  "PONG",
  "PING",
  'MSG tricky 22 null null "MSG x 1 2\\r\\n\\r\\nPIN"',
  'MSG lower 3 null null "\\r\\n\\r\\n"',
  'MSG mixed 4 "r.1" "NATS/1.0\\r\\n\\r\\n" "ok"',
  "PING",
  "OK",
  "ERR Authorization Violation fatal=true",
  "PONG",
];

/** Handlers that note each op as a line of text, and the events they noted. */
function recorder(
  onMessage?: (message: NatsMessage) => void,
): { handlers: NatsServerHandlers; events: string[] } {
  const events: string[] = [];
  const handlers: NatsServerHandlers = {
    message(message) {
      const headers = message.headers;
      events.push(
        `MSG ${message.subject} ${message.sid} ${JSON.stringify(message.reply)} ${
          headers === null ? "null" : JSON.stringify(decoder.decode(headers))
        } ${JSON.stringify(message.text())}`,
      );
      onMessage?.(message);
    },
    info: (info) => events.push(`INFO ${info.server_name} ${info.max_payload} ${info.headers}`),
    ping: () => events.push("PING"),
    pong: () => events.push("PONG"),
    ok: () => events.push("OK"),
    error: (error) => events.push(`ERR ${error.serverMessage} fatal=${error.fatal}`),
  };
  return { handlers, events };
}

/** Pushes `input` cut at `cuts` (sorted offsets), ends it, and returns the events. */
function runChunks(
  pool: BufferPool,
  input: Uint8Array,
  cuts: number[],
  options?: NatsReceiverOptions,
): string[] {
  const { handlers, events } = recorder();
  const receiver = new NatsReceiver(pool, handlers, options);
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    receiver.push(input.subarray(from, cut));
    from = cut;
  }
  receiver.end();
  return events;
}

/** Asserts that `fn` throws a NatsProtocolError whose message matches every pattern. */
function assertProtocolError(fn: () => unknown, ...patterns: RegExp[]): NatsProtocolError {
  let caught: NatsProtocolError | null = null;
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof NatsProtocolError, `expected a NatsProtocolError, got ${error}`);
    assert.ok(error instanceof FrameError);
    assert.equal(error.name, "NatsProtocolError");
    for (const pattern of patterns) assert.match(error.message, pattern);
    caught = error;
    return true;
  });
  return caught!;
}

/** A message of no receiver, for the codec alone. */
class NatsReceiverMessage extends NatsMessageClass {
  constructor() {
    super(() => {
      throw new Error("no receiver");
    });
  }
}

const noHandlers = (): NatsServerHandlers => recorder().handlers;

Deno.test("NatsReceiver dispatches every op of a recorded stream, in order", () => {
  const pool = new BufferPool({ bufferSize: 8192, bufferCount: 2 });
  assert.deepEqual(runChunks(pool, bytes(RECORDED), []), RECORDED_EVENTS);
  assertAllFree(pool);
});

Deno.test("NatsReceiver gives the same events however the stream is split", () => {
  const pool = new BufferPool({ bufferSize: 8192, bufferCount: 2 });
  const input = bytes(RECORDED);
  // Two pushes, cut at every byte boundary.
  for (let cut = 1; cut < input.length; cut++) {
    assert.deepEqual(runChunks(pool, input, [cut]), RECORDED_EVENTS, `cut at ${cut}`);
  }
  // One byte at a time.
  const everyByte = Array.from({ length: input.length - 1 }, (_, i) => i + 1);
  assert.deepEqual(runChunks(pool, input, everyByte), RECORDED_EVENTS);
  // Random chunkings.
  const random = prng(16);
  for (let run = 0; run < 300; run++) {
    const cuts: number[] = [];
    for (let at = random(40); at < input.length; at += 1 + random(40)) cuts.push(at);
    assert.deepEqual(runChunks(pool, input, cuts.filter((c) => c > 0)), RECORDED_EVENTS);
  }
  assertAllFree(pool);
});

Deno.test("NatsReceiver on the smallest pool: one buffer just large enough, ops moved within it", () => {
  // Buffers of exactly maxControlLine + maxPayload + 4 bytes.
  const options = { maxControlLine: 40, maxPayload: 30 };
  const pool = new BufferPool({ bufferSize: 74, bufferCount: 1 });
  const random = prng(7);
  const parts: string[] = [];
  const expected: string[] = [];
  for (let i = 0; i < 400; i++) {
    const payload = "p".repeat(random(31));
    parts.push(`MSG s.${i % 10} ${i} ${payload.length}\r\n${payload}\r\n`);
    expected.push(`MSG s.${i % 10} ${i} null null ${JSON.stringify(payload)}`);
    if (random(5) === 0) {
      parts.push("PING\r\n");
      expected.push("PING");
    }
  }
  const input = bytes(parts.join(""));
  for (const most of [1, 7, 74, 200]) {
    const cuts: number[] = [];
    for (let at = 1 + random(most); at < input.length; at += 1 + random(most)) cuts.push(at);
    assert.deepEqual(runChunks(pool, input, cuts, options), expected, `chunks up to ${most}`);
  }
  // The largest message the limits allow fits.
  const largest = `MSG ${"s".repeat(31)} 1 30\r\n${"x".repeat(30)}\r\n`;
  assert.equal(largest.length, 74);
  assert.equal(runChunks(pool, bytes(largest), [1, 40, 73], options).length, 1);
  assertAllFree(pool);
});

Deno.test("NatsReceiver: HMSG with and without reply, and what a message's getters give", () => {
  const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
  const seen: string[] = [];
  const receiver = new NatsReceiver(pool, {
    ...noHandlers(),
    message(message) {
      const headers = message.headers!;
      seen.push(JSON.stringify({
        subject: message.subject,
        reply: message.reply,
        replyStart: message.replyStart >= 0,
        headers: decoder.decode(headers),
        headersEnd: message.headersEnd === message.payloadStart,
        payload: decoder.decode(message.payload),
        json: message.json(),
        matches: message.subjectEquals(bytes("orders.new")),
        shorter: message.subjectEquals(bytes("orders.ne")),
        other: message.subjectEquals(bytes("orders.old")),
      }));
    },
  });
  receiver.push(bytes(
    'HMSG orders.new 9 _INBOX.r 19 26\r\nNATS/1.0\r\nId: 7\r\n\r\n{"n":1}\r\n' +
      'HMSG orders.new 9 19 26\r\nNATS/1.0\r\nId: 8\r\n\r\n{"n":2}\r\n',
  ));
  receiver.end();
  assert.deepEqual(seen.map((line) => JSON.parse(line)), [
    {
      subject: "orders.new",
      reply: "_INBOX.r",
      replyStart: true,
      headers: "NATS/1.0\r\nId: 7\r\n\r\n",
      headersEnd: true,
      payload: '{"n":1}',
      json: { n: 1 },
      matches: true,
      shorter: false,
      other: false,
    },
    {
      subject: "orders.new",
      reply: null,
      replyStart: false,
      headers: "NATS/1.0\r\nId: 8\r\n\r\n",
      headersEnd: true,
      payload: '{"n":2}',
      json: { n: 2 },
      matches: true,
      shorter: false,
      other: false,
    },
  ]);
  assertAllFree(pool);
});

Deno.test("NatsReceiver: a payload over maxPayload fails as soon as its control line is read", () => {
  const pool = new BufferPool({ bufferSize: 8192, bufferCount: 2 });
  for (const line of ["MSG big 1 1000000\r\n", "HMSG big 1 _I.1 12 101\r\n"]) {
    const receiver = new NatsReceiver(pool, noHandlers(), { maxPayload: 100 });
    // Only the control line: the payload is never buffered.
    const error = assertProtocolError(
      () => receiver.push(bytes(line)),
      /announces (1000000|101) bytes, over the maxPayload of 100 bytes/,
      /"H?MSG big 1 /,
    );
    assert.equal(error.maxFrameLength, 100);
    assert.ok(error.frameLength === 1000000 || error.frameLength === 101);
    assert.equal(receiver.closed, true);
    assert.equal(pool.stats().inUse, 0);
    receiver.close(); // idempotent
  }
  // Exactly maxPayload is accepted.
  const exact = `HMSG ok 1 12 100\r\nNATS/1.0\r\n\r\n${"x".repeat(88)}\r\n`;
  assert.equal(runChunks(pool, bytes(exact), [17], { maxPayload: 100 }).length, 1);
  assertAllFree(pool);
});

Deno.test("NatsReceiver: a control line over maxControlLine fails once that many bytes are searched", () => {
  const pool = new BufferPool({ bufferSize: 1024, bufferCount: 1 });
  const options = { maxControlLine: 32 };
  // A line of exactly 32 bytes, then its "\r\n", is accepted.
  const longest = `MSG ${"s".repeat(24)} 1 0\r\n\r\n`;
  assert.equal(longest.indexOf("\r\n"), 32);
  assert.equal(runChunks(pool, bytes(longest), [], options).length, 1);
  // 33 bytes without "\r\n": fed a byte at a time, it fails at the 34th.
  const receiver = new NatsReceiver(pool, noHandlers(), options);
  const line = bytes(`INFO ${"x".repeat(60)}`);
  for (let i = 0; i < 33; i++) receiver.push(line.subarray(i, i + 1));
  const error = assertProtocolError(
    () => receiver.push(line.subarray(33, 34)),
    /a control line is over the maxControlLine of 32 bytes \(no "\\r\\n" in its first 34 bytes\)/,
    /"INFO x+"/,
  );
  assert.equal(error.frameLength, 34);
  assert.equal(error.maxFrameLength, 32);
  // A 33-byte line whose "\r" is the 34th byte is over the limit too.
  assertProtocolError(
    () => runChunks(pool, bytes(`MSG ${"s".repeat(25)} 1 0\r\n\r\n`), [], options),
    /over the maxControlLine of 32 bytes/,
  );
  assertAllFree(pool);
});

Deno.test("NatsReceiver: each kind of malformed input is a NatsProtocolError saying what and where", () => {
  const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
  const cases: [string, RegExp][] = [
    ["FOO bar\r\n", /unknown operation: "FOO bar\\r\\n"/],
    ["MSGX a 1 1\r\nx\r\n", /unknown operation: "MSGX a 1 1\\r\\n"/],
    ["PINGPONG\r\n", /unknown operation/],
    ["PING extra\r\n", /unknown operation: "PING extra\\r\\n"/],
    ["+OKAY\r\n", /unknown operation/],
    ["\r\n", /unknown operation: "\\r\\n"/],
    [" MSG a 1 0\r\n\r\n", /unknown operation/],
    ["\x0bOK\r\n", /unknown operation: "\\x0bOK\\r\\n"/],
    ["\rERR 'x'\r\n", /unknown operation/],
    ["PING\n", /a control line holds a "\\n" without "\\r" before it: "PING\\n"/],
    ["\n", /without "\\r"/],
    [
      "MSG a 1\r\n",
      /MSG needs 3 or 4 arguments \(subject, sid, \[reply-to,\] #bytes\), received 2: "MSG a 1\\r\\n"/,
    ],
    ["MSG\r\n", /MSG needs 3 or 4 arguments .*received 0/],
    ["MSG a 1 r x 1\r\n", /MSG needs 3 or 4 arguments .*received more than 4/],
    ["HMSG a 1 12\r\n", /HMSG needs 4 or 5 arguments .*received 3/],
    ["HMSG a 1 r x 12 12\r\n", /HMSG needs 4 or 5 arguments .*received more than 5/],
    ["MSG a 1 1x\r\n", /the byte count is not a whole number: "MSG a 1 1x\\r\\n"/],
    ["MSG a 1 -1\r\n", /the byte count is not a whole number/],
    ["MSG a b 1\r\nx\r\n", /the sid is not a whole number: "MSG a b 1\\r\\n"/],
    ["MSG a 99999999999999999 1\r\nx\r\n", /the sid is not a whole number/],
    ["HMSG a 1 20 12\r\n", /the header byte count must be from 12 .* to the total byte count/],
    ["HMSG a 1 11 12\r\n", /the header byte count must be from 12/],
    ["HMSG a 1 x 12\r\n", /the header byte count must be/],
    ["MSG a 1 2\r\nhiX\r\n", /the 2-byte payload is not followed by "\\r\\n": "MSG a 1 2\\r\\n"/],
    ["MSG a 1 2\r\nhi\n\n", /the 2-byte payload is not followed by "\\r\\n"/],
    ["HMSG a 1 12 12\r\nNATS/1.1\r\n\r\n\r\n", /the header block does not start with "NATS\/1.0"/],
    ["HMSG a 1 12 14\r\nNATS/1.0\r\nX:\r\n\r\n", /and end with a blank line/],
    ["INFO {nope}\r\n", /Cannot read the NATS server's INFO: it is not JSON/],
    ["INFO\r\n", /INFO: it is not JSON/],
    ['INFO {"server_id":"N","version":"1"}\r\n', /INFO: it has no max_payload/],
  ];
  for (const [input, pattern] of cases) {
    for (const split of [0, 1, Math.floor(input.length / 2), input.length - 1]) {
      const cuts = split > 0 && split < input.length ? [split] : [];
      assertProtocolError(() => runChunks(pool, bytes(input), cuts), pattern);
      assertAllFree(pool);
    }
  }
  // A long line's excerpt stops at 60 bytes.
  assertProtocolError(
    () => runChunks(pool, bytes(`BOGUS ${"y".repeat(100)}\r\n`), []),
    /: "BOGUS y{54}"\.\.\.$/,
  );
  assertAllFree(pool);
});

Deno.test("NatsReceiver: -ERR is a NatsServerError with the server's text and whether it is fatal", () => {
  const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
  const errors: NatsServerError[] = [];
  const receiver = new NatsReceiver(pool, { ...noHandlers(), error: (e) => errors.push(e) });
  receiver.push(bytes(
    [
      `-ERR 'Permissions Violation for Publish to "no.x"'`,
      `-ERR 'Permissions Violation for Subscription to "no.a" using queue "q"'`,
      "-ERR 'maximum subscriptions exceeded'",
      "-ERR 'Invalid Subject'",
      "-ERR 'Invalid Publish Subject'",
      "-ERR 'Unknown Protocol Operation'",
      "-ERR 'Maximum Payload Violation'",
      "-ERR 'Stale Connection'",
      "-ERR   unquoted text  ",
      "-ERR",
      "-ERR ''",
    ].map((line) => `${line}\r\n`).join(""),
  ));
  receiver.end();
  assert.deepEqual(errors.map((e) => [e.serverMessage, e.fatal]), [
    ['Permissions Violation for Publish to "no.x"', false],
    ['Permissions Violation for Subscription to "no.a" using queue "q"', false],
    ["maximum subscriptions exceeded", false],
    ["Invalid Subject", false],
    ["Invalid Publish Subject", false],
    ["Unknown Protocol Operation", true],
    ["Maximum Payload Violation", true],
    ["Stale Connection", true],
    ["unquoted text", true],
    ["", true],
    ["", true],
  ]);
  for (const error of errors) {
    assert.ok(error instanceof NatsServerError && error instanceof Error);
    assert.equal(error.name, "NatsServerError");
    assert.ok(error.message.includes(`'${error.serverMessage}'`));
  }
  assertAllFree(pool);
});

Deno.test("NatsReceiver: INFO is checked and parsed into NatsServerInfo", () => {
  const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
  const infos: unknown[] = [];
  const receiver = new NatsReceiver(pool, { ...noHandlers(), info: (info) => infos.push(info) });
  receiver.push(bytes(`INFO\t${INFO_JSON}\t \r\n`));
  receiver.push(bytes(
    'info {"server_id":"N2","version":"2.10.0","max_payload":64,"connect_urls":["a:1","b:2"],"nonce":"abc","ldm":true,"jetstream":true,"tls_required":true,"tls_available":true,"cluster":"c","domain":"d","ws_connect_urls":[],"unknown":{"x":1}}\r\n',
  ));
  receiver.end();
  assert.deepEqual(infos, [
    {
      server_id: "NCWMVRBAPBGW",
      server_name: "hub",
      version: "2.9.10",
      proto: 1,
      max_payload: 1048576,
      headers: true,
      auth_required: true,
      tls_required: false,
      tls_available: false,
      jetstream: false,
      ldm: false,
      client_id: 6,
      client_ip: "127.0.0.1",
      host: "127.0.0.1",
      port: 14222,
    },
    {
      server_id: "N2",
      server_name: "N2",
      version: "2.10.0",
      proto: 0,
      max_payload: 64,
      headers: false,
      auth_required: false,
      tls_required: true,
      tls_available: true,
      jetstream: true,
      ldm: true,
      connect_urls: ["a:1", "b:2"],
      ws_connect_urls: [],
      nonce: "abc",
      cluster: "c",
      domain: "d",
    },
  ]);
  const base = '"server_id":"N","version":"2"';
  const bad: [string, RegExp][] = [
    ["[]", /it is not a JSON object: "\[\]"/],
    ["null", /not a JSON object/],
    [`{${base}}`, /it has no max_payload/],
    [`{${base},"max_payload":0}`, /max_payload must be a positive integer, received 0/],
    [`{${base},"max_payload":1.5}`, /max_payload must be a positive integer, received 1.5/],
    [`{${base},"max_payload":"1024"}`, /max_payload must be a positive integer, received "1024"/],
    [`{"version":"2","max_payload":1}`, /it has no server_id/],
    [`{${base},"max_payload":1,"proto":-1}`, /proto must be a non-negative integer/],
    [`{${base},"max_payload":1,"headers":"yes"}`, /headers must be true or false, received "yes"/],
    [`{${base},"max_payload":1,"connect_urls":[1]}`, /connect_urls must be an array of strings/],
    [`{${base},"max_payload":1,"nonce":5}`, /nonce must be a string, received 5/],
    [`{"server_id":"${"n".repeat(80)}"}`, /it has no version: "\{\\"server_id\\":\\"n+"\.\.\./],
  ];
  for (const [text, pattern] of bad) {
    assertProtocolError(
      () => parseServerInfo(text),
      /^Cannot read the NATS server's INFO: /,
      pattern,
    );
  }
  assertAllFree(pool);
});

Deno.test("NatsMessage.retain keeps a payload valid after later pushes, until released", () => {
  const pool = new BufferPool({ bufferSize: 128, bufferCount: 2 });
  const kept: Packet[] = [];
  let message: NatsMessage | null = null;
  const receiver = new NatsReceiver(pool, {
    ...noHandlers(),
    message(m) {
      message = m;
      if (m.sid === 1) kept.push(m.retain(), m.retain());
    },
  }, { maxControlLine: 40 });
  receiver.push(bytes("HMSG keep 1 12 17\r\nNATS/1.0\r\n\r\nhello\r\nMSG a 2 3\r\n"));
  // Many more messages: the staging memory moves on to the other buffer and back.
  for (let i = 0; i < 50; i++) receiver.push(bytes(`abc\r\nMSG a 2 3\r\n`));
  receiver.push(bytes("xyz\r\n"));
  assert.deepEqual(kept.map((p) => p.text()), ["hello", "hello"]);
  // After its handler, a message no longer gives packets.
  assert.throws(() => message!.retain(), ReleasedError);
  kept[0]!.release();
  assert.equal(kept[1]!.text(), "hello");
  kept[1]!.release();
  receiver.end();
  assertAllFree(pool);
});

Deno.test("NatsReceiver.push throws when retained payloads pin every buffer; read() waits for a release", async () => {
  // maxControlLine 16 leaves a 44-byte maxPayload in 64-byte buffers.
  const options = { maxControlLine: 16 };
  const first = "MSG a 1 2\r\nhi\r\n"; // 15 bytes, retained
  const second = `MSG b 2 40\r\n${"z".repeat(40)}\r\n`; // 54 bytes: cannot end in the buffer
  const input = bytes(first + second);

  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const kept: Packet[] = [];
  const retaining = recorder((m) => void (m.sid === 1 && kept.push(m.retain())));
  const pushed = new NatsReceiver(pool, retaining.handlers, options);
  assert.throws(() => pushed.push(input), (error: unknown) => {
    assert.ok(error instanceof RangeError);
    assert.match(error.message, /the pool has no free buffer .* \(5 of 69 bytes left\)/);
    return true;
  });
  assert.equal(pushed.closed, true);
  assert.deepEqual(kept.map((p) => p.text()), ["hi"]);
  kept.pop()!.release();
  assertAllFree(pool);

  // read() waits instead, and goes on once the packet is released.
  const reading = recorder((m) => void (m.sid === 1 && kept.push(m.retain())));
  const receiver = new NatsReceiver(pool, reading.handlers, options);
  const done = receiver.read(chunkSource([input]));
  while (pool.stats().waiters === 0) await flush();
  assert.equal(reading.events.length, 1);
  kept.pop()!.release();
  await done;
  assert.deepEqual(reading.events, [
    'MSG a 1 null null "hi"',
    `MSG b 2 null null "${"z".repeat(40)}"`,
  ]);
  assert.equal(receiver.closed, true);
  assertAllFree(pool);

  // close() while read() waits for a buffer: the reading ends quietly.
  const waiting = new NatsReceiver(pool, reading.handlers, options);
  const waited = waiting.read(chunkSource([input]));
  while (pool.stats().waiters === 0) await flush();
  waiting.close();
  await waited;
  assert.equal(pool.stats().waiters, 0);
  kept.pop()!.release();
  assertAllFree(pool);
});

Deno.test("NatsReceiver: a handler that throws stops it: the error propagates and it is closed", () => {
  const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
  const boom = new Error("boom");
  const { handlers, events } = recorder();
  const receiver = new NatsReceiver(pool, {
    ...handlers,
    ping() {
      throw boom;
    },
  });
  assert.throws(() => receiver.push(bytes("PONG\r\nPING\r\nPONG\r\nMSG a 1 4\r\nun")), boom);
  assert.deepEqual(events, ["PONG"]); // nothing after the failing op
  assert.equal(receiver.closed, true);
  assertAllFree(pool);
  assert.throws(() => receiver.push(bytes("PONG\r\n")), ClosedError);
  assert.throws(() => receiver.end(), ClosedError);
  receiver.close();
  assertAllFree(pool);
});

Deno.test("NatsReceiver: a handler may close it, not push into it", () => {
  const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
  const { handlers, events } = recorder();
  const closing = new NatsReceiver(pool, { ...handlers, ok: () => closing.close() });
  closing.push(bytes("PONG\r\n+OK\r\nPONG\r\nPONG\r\n"));
  assert.deepEqual(events, ["PONG"]);
  assert.equal(closing.closed, true);
  assertAllFree(pool);

  const pushing = new NatsReceiver(pool, {
    ...noHandlers(),
    ok: () => pushing.push(bytes("PING\r\n")),
  });
  assert.throws(() => pushing.push(bytes("+OK\r\n")), TypeError);
  assert.equal(pushing.closed, true);
  assertAllFree(pool);
});

Deno.test("NatsReceiver: input that stops inside an op is a NatsProtocolError at its end", async () => {
  const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
  const cases: [string, RegExp][] = [
    ["PING\r\nMSG a 1 10\r\nhel", /the input ended 15 bytes into a 24-byte op/],
    ["PING\r\nMSG a 1 1", /the input ended 9 bytes into an op whose control line had not ended/],
    ["PING\r\nPONG\r", /the input ended 5 bytes into an op whose control line/],
  ];
  for (const [input, pattern] of cases) {
    const { handlers, events } = recorder();
    const receiver = new NatsReceiver(pool, handlers);
    receiver.push(bytes(input));
    const error = assertProtocolError(() => receiver.end(), pattern);
    assert.ok(Number.isNaN(error.frameLength) && Number.isNaN(error.maxFrameLength)); // no limit passed
    assert.equal(receiver.closed, true);
    assert.deepEqual(events, ["PING"]);
    assertAllFree(pool);

    const reader = new NatsReceiver(pool, recorder().handlers);
    await assert.rejects(reader.read(chunkSource([bytes(input)])), NatsProtocolError);
    assertAllFree(pool);
  }
});

Deno.test("NatsReceiver.read: from a read()able in small reads, a ReadableStream, and a TCP connection", async () => {
  const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
  const input = bytes(RECORDED);
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < input.length; at += 7) chunks.push(input.subarray(at, at + 7));

  const fromSource = recorder();
  await new NatsReceiver(pool, fromSource.handlers).read(chunkSource(chunks));
  assert.deepEqual(fromSource.events, RECORDED_EVENTS);
  assertAllFree(pool);

  const fromStream = recorder();
  await new NatsReceiver(pool, fromStream.handlers).read(ReadableStream.from(chunks));
  assert.deepEqual(fromStream.events, RECORDED_EVENTS);
  assertAllFree(pool);

  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  const writing = (async () => {
    for (const chunk of chunks) await server.write(chunk);
    server.close();
  })();
  const fromConn = recorder();
  await new NatsReceiver(pool, fromConn.handlers).read(client);
  await writing;
  client.close();
  listener.close();
  assert.deepEqual(fromConn.events, RECORDED_EVENTS);
  assertAllFree(pool);
});

/** A source whose reads the test answers, one at a time. */
class ManualSource {
  #pending:
    | { view: Uint8Array; resolve: (n: number | null) => void; reject: (e: Error) => void }
    | null = null;

  read(view: Uint8Array): Promise<number | null> {
    return new Promise((resolve, reject) => this.#pending = { view, resolve, reject });
  }

  /** Waits for the reader's next read. */
  async asked(): Promise<void> {
    while (this.#pending === null) await flush();
  }

  /** Answers the pending read with `text`, or the end of input for null. */
  answer(text: string | null): void {
    const pending = this.#take();
    if (text === null) return pending.resolve(null);
    const input = bytes(text);
    pending.view.set(input);
    pending.resolve(input.length);
  }

  /** Fails the pending read. */
  fail(error: Error): void {
    this.#take().reject(error);
  }

  #take() {
    const pending = this.#pending;
    assert.ok(pending !== null, "no read is pending");
    this.#pending = null;
    return pending;
  }
}

Deno.test("NatsReceiver.read: close() during a pending read resolves it; an abort rejects it", async () => {
  const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
  const source = new ManualSource();
  const { handlers, events } = recorder();
  const receiver = new NatsReceiver(pool, handlers);
  const reading = receiver.read(source);
  source.answer("PONG\r\n");
  await source.asked();
  assert.throws(() => receiver.push(bytes("PING\r\n")), TypeError);
  assert.throws(() => receiver.end(), TypeError);
  await assert.rejects(receiver.read(source), TypeError);
  receiver.close();
  source.answer("PING\r\n");
  await reading;
  assert.deepEqual(events, ["PONG"]); // the PING came after close(): dropped
  await assert.rejects(receiver.read(source), ClosedError);
  assertAllFree(pool);

  // A read that fails because the source was closed with the receiver.
  const closing = new NatsReceiver(pool, recorder().handlers);
  const failing = closing.read(source);
  await source.asked();
  closing.close();
  source.fail(new Deno.errors.BadResource("closed"));
  await failing;
  assertAllFree(pool);

  // Before close(), the source's failure is the read's.
  const broken = new NatsReceiver(pool, recorder().handlers);
  const breaking = broken.read(source);
  await source.asked();
  source.fail(new Deno.errors.ConnectionReset("reset"));
  await assert.rejects(breaking, Deno.errors.ConnectionReset);
  assert.equal(broken.closed, true);
  assertAllFree(pool);

  // A handler that closes it (a fatal -ERR, say) ends the reading.
  const stopping = recorder();
  const stopped = new NatsReceiver(pool, { ...stopping.handlers, ping: () => stopped.close() });
  const stopReading = stopped.read(source);
  source.answer("PONG\r\nPING\r\nPONG\r\n");
  await stopReading;
  assert.deepEqual(stopping.events, ["PONG"]);
  assertAllFree(pool);

  const controller = new AbortController();
  const aborted = new NatsReceiver(pool, recorder().handlers);
  const abortedReading = aborted.read(source, controller.signal);
  await source.asked();
  controller.abort(new Error("stop"));
  source.answer("PING\r\n");
  await assert.rejects(abortedReading, /stop/);
  assert.equal(aborted.closed, true);
  assertAllFree(pool);

  // Already aborted: a stream source is not read at all.
  const never = new NatsReceiver(pool, recorder().handlers);
  await assert.rejects(
    never.read(ReadableStream.from([bytes("PING\r\n")]), controller.signal),
    /stop/,
  );
  assertAllFree(pool);
});

Deno.test("NatsReceiver's constructor checks its limits against the pool's buffers", () => {
  const pool = new BufferPool({ bufferSize: 4096, bufferCount: 1 });
  const tooSmall = (options: NatsReceiverOptions, ...patterns: RegExp[]) => {
    assert.throws(() => new NatsReceiver(pool, noHandlers(), options), (error: unknown) => {
      assert.ok(error instanceof RangeError);
      for (const pattern of patterns) assert.match(error.message, pattern);
      return true;
    });
  };
  tooSmall(
    { maxPayload: 4000, maxControlLine: 1024 },
    /a 4000-byte maxPayload needs 5028-byte buffers \(with a 1024-byte control line and two "\\r\\n"\), but the pool's buffers are 4096 bytes; lower maxPayload to 3068 or less/,
  );
  tooSmall({}, /the pool's buffers are 4096 bytes; lower maxControlLine or use larger buffers/);
  tooSmall({ maxControlLine: 0 }, /maxControlLine must be a positive integer, received 0/);
  tooSmall({ maxControlLine: 1.5 }, /maxControlLine must be a positive integer, received 1.5/);
  tooSmall(
    { maxControlLine: 100, maxPayload: -1 },
    /maxPayload must be a non-negative integer, received -1/,
  );
  tooSmall({ maxControlLine: 100, maxPayload: NaN }, /received NaN/);
  // By default, maxPayload is what a buffer holds beside the longest control line.
  const receiver = new NatsReceiver(pool, noHandlers(), { maxControlLine: 1024 });
  assert.equal(receiver.maxPayload, 4096 - 1024 - 4);
  assert.equal(receiver.maxControlLine, 1024);
  const big = new BufferPool({ bufferSize: 65536, bufferCount: 1 });
  assert.equal(new NatsReceiver(big, noHandlers()).maxPayload, 65536 - 4096 - 4);
  assertAllFree(pool);
  assertAllFree(big);
});

Deno.test("The NATS ops codec only decodes", () => {
  const codec = new NatsOpsCodec(new NatsReceiverMessage(), 64, 100);
  assert.equal(codec.maxPayload, 64 + 2 + 100 + 2);
  assert.equal(codec.headerLength(5), 0);
  assert.throws(() => codec.encode(new Uint8Array(1)), TypeError);
  assert.throws(() => codec.encodeHeader(new Uint8Array(8), 0, 1), TypeError);
  assert.throws(() => codec.encodeTrailer(new Uint8Array(8), 0), TypeError);
});

/** `bytes` behind a proxy that counts the reads of its elements. */
function counted(bytes: Uint8Array): { bytes: Uint8Array; reads: () => number } {
  let reads = 0;
  const proxy = new Proxy(bytes, {
    get(target, key) {
      if (typeof key === "string" && /^\d+$/.test(key)) reads++;
      return Reflect.get(target, key);
    },
  });
  return { bytes: proxy, reads: () => reads };
}

Deno.test("The NATS ops codec resumes a control line's search where the last call stopped", () => {
  const message = new NatsReceiverMessage();
  const codec = new NatsOpsCodec(message, 64, 100);
  const out = new FrameBounds();
  /** Element reads of a decode of `text` whose bytes up to `end` came before, resumed or not. */
  const reads = (text: string, end: number, resume: boolean): number => {
    const { bytes: input, reads } = counted(bytes(text));
    assert.equal(codec.decode(input, 0, end, 1000, out), false);
    const before = reads();
    const scanned = out.scanned;
    assert.equal(codec.decode(input, 0, text.length, 1000, out, resume ? scanned : 0), true);
    assert.equal(out.frameEnd, text.length);
    return reads() - before;
  };
  // The bytes of "PIN" are not searched again for the line's end.
  assert.equal(reads("PING\r\n", 3, false) - reads("PING\r\n", 3, true), 3);
  // A MSG whose line was read resumes at the line's "\r".
  assert.equal(reads("MSG a 1 2\r\nhi\r\n", 12, false) - reads("MSG a 1 2\r\nhi\r\n", 12, true), 9);
  assert.equal(message.payloadEnd - message.payloadStart, 2);
  // Not finished: scanned is where the search got to, frameEnd -1 until the line is read.
  assert.equal(codec.decode(bytes("INFO {"), 0, 6, 1000, out, 2), false);
  assert.deepEqual([out.frameEnd, out.scanned], [-1, 6]);
});

/** Heap growth, in bytes, over each of `rounds` runs of `step`, sorted. */
function heapGrowth(rounds: number, step: () => void): number[] {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const growth: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const before = Deno.memoryUsage().heapUsed;
    step();
    growth.push(Deno.memoryUsage().heapUsed - before);
  }
  return growth.sort((a, b) => a - b);
}

Deno.test("NatsReceiver allocates nothing per MSG: the heap stays flat over 200,000 messages", () => {
  const pool = new BufferPool({ bufferSize: 65536, bufferCount: 1 });
  // 1,000 small messages a chunk, cut mid-op at both ends so ops also move.
  const one = "MSG ticks.a 17 _INBOX.abc 8\r\n01234567\r\n";
  const stream = bytes(one.repeat(1001));
  const chunk = stream.subarray(7, 7 + one.length * 1000);
  let count = 0;
  let sum = 0;
  let readSubject = false;
  const receiver = new NatsReceiver(pool, {
    ...noHandlers(),
    message(message) {
      count++;
      sum += message.sid + message.payloadEnd - message.payloadStart;
      // Only for the control run below: a string per message.
      if (readSubject) sum += message.subject.length;
    },
  });
  receiver.push(stream.subarray(0, 7));
  const pushTen = () => {
    for (let i = 0; i < 10; i++) receiver.push(chunk);
  };
  for (let i = 0; i < 20; i++) pushTen(); // warm up: compile the path
  count = sum = 0;
  // 20 rounds of 10,000 messages: a string or object per message would add
  // at least 200 KB to most rounds (a scavenge empties the young space only
  // every few MB).
  const flat = heapGrowth(20, pushTen);
  assert.equal(count, 200_000);
  assert.equal(sum, 200_000 * (17 + 8));
  const median = flat[10]!;
  assert.ok(median < 16 * 1024, `heap grew ${median} bytes per 10,000 messages: ${flat}`);
  // The control: the same measure sees a string made per message.
  readSubject = true;
  const allocating = heapGrowth(20, pushTen);
  assert.ok(allocating[10]! > 100 * 1024, `a string per message went unseen: ${allocating}`);
  receiver.close();
  assertAllFree(pool);
});

Deno.test("NatsReceiver: many random ops and splits on a 2-buffer pool, retaining some, match a reference", () => {
  const random = prng(99);
  const options = { maxControlLine: 48, maxPayload: 60 };
  const pool = new BufferPool({ bufferSize: 48 + 60 + 4, bufferCount: 2 });
  for (let run = 0; run < 40; run++) {
    const parts: string[] = [];
    const expected: string[] = [];
    for (let i = 0; i < 60; i++) {
      const kind = random(6);
      const payload = "abc\r\nMSG ".repeat(4).slice(0, random(41));
      if (kind === 0) {
        parts.push("PING\r\n");
        expected.push("PING");
      } else if (kind === 1) {
        const reply = random(2) === 0 ? null : `_I.${i}`;
        const head = `NATS/1.0\r\nK: ${i}\r\n\r\n`;
        const size = head.length + payload.length;
        parts.push(
          `HMSG h.${i} ${i} ${reply ?? ""}${
            reply ? " " : ""
          }${head.length} ${size}\r\n${head}${payload}\r\n`,
        );
        expected.push(
          `MSG h.${i} ${i} ${JSON.stringify(reply)} ${JSON.stringify(head)} ${
            JSON.stringify(payload)
          }`,
        );
      } else {
        parts.push(`MSG m.${i} ${i}  ${payload.length}\r\n${payload}\r\n`);
        expected.push(`MSG m.${i} ${i} null null ${JSON.stringify(payload)}`);
      }
    }
    const input = bytes(parts.join(""));
    // Keep every third payload until the next message: it pins its buffer meanwhile.
    let held: Packet | null = null;
    const kept: string[] = [];
    const { handlers, events } = recorder((m) => {
      if (held !== null) {
        kept.push(held.text());
        held.release();
        held = null;
      }
      if (m.sid % 3 === 0) held = m.retain();
    });
    const receiver = new NatsReceiver(pool, handlers, options);
    let at = 0;
    while (at < input.length) {
      const next = Math.min(input.length, at + 1 + random(150));
      receiver.push(input.subarray(at, next));
      at = next;
    }
    receiver.end();
    (held as Packet | null)?.release();
    assert.deepEqual(events, expected);
    assert.ok(kept.length > 0);
    assertAllFree(pool);
  }
});
