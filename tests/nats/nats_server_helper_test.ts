// The nats-server test helper (tests/nats/_nats_server.ts) does what the NATS
// tests rely on: a real server that speaks the protocol with the configured
// limits and auth, restarts on its port, and is gone, port and process,
// after stop() or the end of an `await using` scope, even when the test body
// throws. Talks to the server with a raw client, so that these tests do not
// depend on the NATS client they will test.
import assert from "node:assert/strict";
import {
  type NatsServer,
  NatsServerNotFoundError,
  natsServerPath,
  natsTest,
  startNatsServer,
} from "./_nats_server.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A raw NATS connection that reads whole protocol lines, each within a deadline. */
class RawClient implements AsyncDisposable {
  readonly #conn: Deno.TcpConn;
  #pending = "";
  #closed = false;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  static async connect(server: NatsServer): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: server.hostname, port: server.port }));
  }

  async send(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
  }

  /**
   * The next line without its "\r\n"; null when the server closed the
   * connection. Fails after `timeoutMs` rather than hanging the test.
   */
  async line(timeoutMs = 5_000): Promise<string | null> {
    const timer = setTimeout(() => this.close(), timeoutMs);
    try {
      const chunk = new Uint8Array(4096);
      for (;;) {
        const end = this.#pending.indexOf("\r\n");
        if (end >= 0) {
          const line = this.#pending.slice(0, end);
          this.#pending = this.#pending.slice(end + 2);
          return line;
        }
        if (this.#closed) throw new Error(`no line within ${timeoutMs} ms`);
        const n = await this.#conn.read(chunk);
        if (n === null) return null;
        this.#pending += decoder.decode(chunk.subarray(0, n));
      }
    } catch (error) {
      if (this.#closed) throw new Error(`no line within ${timeoutMs} ms`);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads the INFO line the server sends first and returns its JSON. */
  async info(): Promise<Record<string, unknown>> {
    const line = (await this.line()) ?? "(closed)";
    assert.ok(line.startsWith("INFO "), `expected INFO, got ${line}`);
    return JSON.parse(line.slice("INFO ".length));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** Asserts that no process has `pid` any more: signal 0 is refused. */
function assertGone(pid: number): void {
  assert.ok(pid > 0);
  assert.throws(() => Deno.kill(pid, "SIGCONT"), Deno.errors.NotFound, `pid ${pid} still exists`);
  assert.throws(() => Deno.statSync(`/proc/${pid}`), Deno.errors.NotFound);
}

/** Asserts that nothing listens on 127.0.0.1:`port`. */
async function assertRefused(port: number): Promise<void> {
  await assert.rejects(
    Deno.connect({ hostname: "127.0.0.1", port }),
    Deno.errors.ConnectionRefused,
  );
}

natsTest("nats-server is found (NATS_SERVER, PATH, /usr/sbin, /usr/bin)", () => {
  const path = natsServerPath();
  assert.ok(path !== null, "install Debian's nats-server package: the NATS tests need it");
  assert.match(path, /nats-server/);
});

natsTest(
  "a started server sends INFO with the configured max_payload, answers PING and routes a message",
  async () => {
    await using server = await startNatsServer({ maxPayload: 4096 });
    assert.equal(server.hostname, "127.0.0.1");
    assert.ok(server.port > 0 && server.port < 65536);
    await using client = await RawClient.connect(server);
    const info = await client.info();
    assert.equal(info.max_payload, 4096);
    assert.equal(info.port, server.port);
    assert.ok(info.auth_required === undefined || info.auth_required === false);
    await client.send('CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n');
    assert.equal(await client.line(), "PONG");
    await client.send("SUB helper.test 1\r\nPUB helper.test 5\r\nhello\r\nPING\r\n");
    assert.equal(await client.line(), "MSG helper.test 1 5");
    assert.equal(await client.line(), "hello");
    assert.equal(await client.line(), "PONG");
    // One byte over max_payload: the server refuses it and closes the connection.
    await client.send(`PUB helper.test 4097\r\n${"x".repeat(4097)}\r\n`);
    assert.match((await client.line()) ?? "", /^-ERR 'Maximum Payload Violation'/);
  },
);

natsTest("user/password: the right password connects, a wrong one gets -ERR", async () => {
  await using server = await startNatsServer({ user: "bab", password: "s3cret$x" });
  {
    await using good = await RawClient.connect(server);
    assert.equal((await good.info()).auth_required, true);
    await good.send('CONNECT {"verbose":false,"user":"bab","pass":"s3cret$x"}\r\nPING\r\n');
    assert.equal(await good.line(), "PONG");
  }
  await using bad = await RawClient.connect(server);
  await bad.info();
  await bad.send('CONNECT {"verbose":false,"user":"bab","pass":"wrong"}\r\nPING\r\n');
  assert.equal(await bad.line(), "-ERR 'Authorization Violation'");
  assert.equal(await bad.line(), null, "the server closes the connection");
});

natsTest("token: the right token connects, a wrong one gets -ERR", async () => {
  await using server = await startNatsServer({ token: "t0ken" });
  {
    await using good = await RawClient.connect(server);
    assert.equal((await good.info()).auth_required, true);
    await good.send('CONNECT {"verbose":false,"auth_token":"t0ken"}\r\nPING\r\n');
    assert.equal(await good.line(), "PONG");
  }
  await using bad = await RawClient.connect(server);
  await bad.info();
  await bad.send('CONNECT {"verbose":false,"auth_token":"nope"}\r\nPING\r\n');
  assert.equal(await bad.line(), "-ERR 'Authorization Violation'");
});

natsTest("pingIntervalMs: the server PINGs an idle client; extra config lines apply", async () => {
  await using server = await startNatsServer({
    pingIntervalMs: 50,
    config: 'server_name: "bab-helper-test"',
  });
  await using client = await RawClient.connect(server);
  assert.equal((await client.info()).server_name, "bab-helper-test");
  await client.send('CONNECT {"verbose":false}\r\n');
  assert.equal(await client.line(), "PING");
  await client.send("PONG\r\n");
  assert.equal(await client.line(), "PING", "and again, once answered");
});

natsTest("options that cannot be configured are refused before anything starts", async () => {
  await assert.rejects(startNatsServer({ maxPayload: 0 }), RangeError);
  await assert.rejects(startNatsServer({ maxPayload: 1.5 }), RangeError);
  await assert.rejects(startNatsServer({ pingIntervalMs: 0 }), RangeError);
  await assert.rejects(startNatsServer({ user: "a" }), /give both/);
  await assert.rejects(startNatsServer({ token: "t", user: "a", password: "b" }), /choose one/);
  await assert.rejects(startNatsServer({ token: 'a"b' }), /without quotes/);
});

natsTest(
  "a config the server rejects fails the start with its log, and leaves no process",
  async () => {
    const error = await startNatsServer({ config: "max_payload: {" }).then(
      () => assert.fail("expected the start to fail"),
      (error: unknown) => error,
    );
    assert.ok(error instanceof Error);
    assert.match(error.message, /^nats-server \(pid (\d+)\) exited with code \d+ while starting/);
    assert.match(error.message, /stderr/, error.message);
    assertGone(Number(/pid (\d+)/.exec(error.message)![1]));
  },
);

Deno.test("NATS_SERVER that names no binary fails loudly, naming the package", async () => {
  const before = Deno.env.get("NATS_SERVER");
  Deno.env.set("NATS_SERVER", "/nonexistent/nats-server");
  try {
    assert.equal(natsServerPath(), "/nonexistent/nats-server");
    await assert.rejects(startNatsServer(), (error: unknown) => {
      assert.ok(error instanceof NatsServerNotFoundError);
      assert.match(error.message, /NATS_SERVER is \/nonexistent\/nats-server/);
      assert.match(error.message, /apt-get install nats-server/);
      return true;
    });
  } finally {
    if (before === undefined) Deno.env.delete("NATS_SERVER");
    else Deno.env.set("NATS_SERVER", before);
  }
});

natsTest("restart keeps the port, drops the old connections and accepts again", async () => {
  await using server = await startNatsServer({ maxPayload: 2048 });
  const { port, pid } = server;
  await using before = await RawClient.connect(server);
  await before.info();
  await server.restart();
  assert.equal(await before.line(), null, "the old server's connection was closed");
  assertGone(pid);
  assert.notEqual(server.pid, pid);
  assert.equal(server.port, port);
  await using after = await RawClient.connect(server);
  assert.equal((await after.info()).max_payload, 2048, "with the same config");
  await after.send('CONNECT {"verbose":false}\r\nPING\r\n');
  assert.equal(await after.line(), "PONG");
  assert.match(await server.log(), /Server is ready[^]*Server is ready/, "both runs logged");
});

natsTest(
  "stop frees the port, ends the process, removes its files; a second stop does nothing",
  async () => {
    const server = await startNatsServer();
    const { port, pid } = server;
    assert.match(await server.log(), /Server is ready/);
    assert.ok((await Deno.stat(`${server.directory}/nats.conf`)).isFile);
    await server.stop();
    assertGone(pid);
    await assertRefused(port);
    await server.stop();
    assert.match(await server.log(), /Server is ready/, "the log outlives the server");
    await assert.rejects(server.restart(), /was stopped/);
    await assert.rejects(Deno.stat(server.directory), Deno.errors.NotFound, "its files are gone");
  },
);

natsTest("await using stops the server when the test body throws", async () => {
  let pid = 0;
  let port = 0;
  await assert.rejects(async () => {
    await using server = await startNatsServer();
    pid = server.pid;
    port = server.port;
    throw new Error("the body failed");
  }, /the body failed/);
  assertGone(pid);
  await assertRefused(port);
});

/** Whether `pid` is gone or a zombie: dead either way, only not yet reaped by init. */
function isDead(pid: number): boolean {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.startsWith("Z");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
}

natsTest("a test process killed without stopping its server takes the server with it", async () => {
  // A child Deno starts a server, prints its pid and directory, and stays.
  const helper = new URL("./_nats_server.ts", import.meta.url).href;
  const code = `import { startNatsServer } from ${JSON.stringify(helper)};
    const server = await startNatsServer();
    console.log(JSON.stringify({ pid: server.pid, directory: server.directory }));
    setInterval(() => {}, 60_000);`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let server: { pid: number; directory: string };
  try {
    const first = await lines.read();
    server = JSON.parse(first.value ?? "null");
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await lines.cancel();
  }
  try {
    // The kernel signals the server as the child dies; allow it a moment to go.
    const deadline = Date.now() + 5_000;
    while (!isDead(server.pid) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(isDead(server.pid), `the orphaned server ${server.pid} is still running`);
  } finally {
    await Deno.remove(server.directory, { recursive: true });
  }
});
