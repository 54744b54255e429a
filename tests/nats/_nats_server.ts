// A real nats-server for the NATS tests and benchmarks. Each call starts its
// own server in a temporary directory of its own (config, log, ports file),
// on a port the kernel picks, and stops it by its own PID: tests never share
// a server, never kill anything by name, and leave no process or file behind.
//
// The port: the config asks for port -1, so the server binds a free port
// itself and writes the port it got to a ports file (`ports_file_dir`). That
// is race-free, unlike picking a free port with Deno.listen and closing it,
// which another process can take before the server binds it. A restart asks
// for that same port explicitly, and retries while it is still taken.

/** What a test may set on the server it starts; the rest is fixed or default. */
export interface NatsServerOptions {
  /** `max_payload`: the largest message payload the server takes, in bytes (default 1 MiB). */
  maxPayload?: number;
  /** With `password`: clients must log in as this user. */
  user?: string;
  /** With `user`: the password clients must give. */
  password?: string;
  /** Clients must give this token (not with `user`/`password`). */
  token?: string;
  /** `ping_interval` in milliseconds: how often the server PINGs each client (default 2 minutes, the server's own). */
  pingIntervalMs?: number;
  /** Extra config lines, appended after the generated ones (a repeated key overrides). */
  config?: string;
}

/** A running nats-server, stopped by `stop()` or at the end of an `await using` scope. */
export interface NatsServer extends AsyncDisposable {
  /** Where it listens: always "127.0.0.1". */
  readonly hostname: string;
  /** The port it listens on; a restart keeps it. */
  readonly port: number;
  /** The process's id: the running one, or the last one once stopped. */
  readonly pid: number;
  /** Its temporary directory (nats.conf, nats.log, the ports file); removed by `stop()`. */
  readonly directory: string;
  /**
   * Stops it: SIGTERM to its own PID, then SIGKILL if it has not exited
   * within a few seconds; awaits its exit and removes its temporary
   * directory. A second call does nothing.
   */
  stop(): Promise<void>;
  /**
   * Stops it and starts it again on the same port with the same config,
   * resolving once it accepts connections and sends its INFO again.
   */
  restart(): Promise<void>;
  /** What the server logged so far (its log file and its stderr), for failure messages. */
  log(): Promise<string>;
}

/** Thrown when no nats-server binary can be found; names the package to install. */
export class NatsServerNotFoundError extends Error {
  /** @param detail where it looked, or what was wrong with NATS_SERVER */
  constructor(detail: string) {
    super(
      `Cannot start nats-server: ${detail}. Install Debian's nats-server package ` +
        `(apt-get install nats-server; .ci/run does this) or set NATS_SERVER to the binary`,
    );
    this.name = "NatsServerNotFoundError";
  }
}

const HOSTNAME = "127.0.0.1";
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
const DEFAULT_PING_INTERVAL_MS = 120_000;
// nats-server itself refuses a max_payload over 64 MiB.
const MAX_PAYLOAD_LIMIT = 64 * 1024 * 1024;
// Debian installs nats-server into /usr/sbin, which a non-root PATH may lack.
const FALLBACK_DIRS = ["/usr/sbin", "/usr/bin"];
// Startup takes ~10 ms here; CI machines under load get far more room.
const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 3_000;
const POLL_MS = 10;

/**
 * Where the nats-server binary is: the NATS_SERVER environment variable if
 * set, else the first `nats-server` on PATH, else in /usr/sbin or /usr/bin.
 *
 * @returns its path, or null when there is none
 */
export function natsServerPath(): string | null {
  const fromEnv = Deno.env.get("NATS_SERVER");
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  return findExecutable("nats-server");
}

/** The first executable `name` on PATH, then in /usr/sbin and /usr/bin; null if none. */
function findExecutable(name: string): string | null {
  const path = (Deno.env.get("PATH") ?? "").split(":").filter((dir) => dir !== "");
  for (const dir of [...path, ...FALLBACK_DIRS]) {
    const candidate = `${dir}/${name}`;
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

function isExecutableFile(path: string): boolean {
  try {
    const stat = Deno.statSync(path);
    return stat.isFile && (stat.mode === null || (stat.mode & 0o111) !== 0);
  } catch {
    return false;
  }
}

/**
 * Whether the tests that need a real nats-server are skipped here: none is
 * found, and BAB_REQUIRE_NATS (set by .ci/run) does not ask for them. So
 * `deno task test` works on a machine without one, while CI, which installs
 * it, can never skip them.
 */
export const natsTestsSkipped: boolean = natsServerPath() === null &&
  Deno.env.get("BAB_REQUIRE_NATS") !== "1";

let skipNoted = false;

/**
 * Registers a test that needs a real nats-server: skipped, with one notice,
 * where {@link natsTestsSkipped}.
 */
export function natsTest(name: string, fn: () => void | Promise<void>): void {
  if (natsTestsSkipped && !skipNoted) {
    skipNoted = true;
    console.warn(
      "nats-server not found: the tests that need one are skipped here. Install Debian's " +
        "nats-server package or set NATS_SERVER to run them (CI runs them, with BAB_REQUIRE_NATS=1).",
    );
  }
  Deno.test({ name, ignore: natsTestsSkipped, fn });
}

/**
 * Starts a nats-server on 127.0.0.1 on a free port and waits until it
 * accepts a connection and sends its INFO line.
 *
 * @param options what to configure; see {@link NatsServerOptions}
 * @returns the running server; stop it with `stop()` or `await using`
 * @throws {NatsServerNotFoundError} when there is no nats-server binary
 * @throws {RangeError} when an option is out of range or cannot go into a config file
 * @throws {Error} when the server exits or is not ready within 15 s; the message includes its log
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = natsServerPath();
  if (binary === null) {
    throw new NatsServerNotFoundError(
      `no nats-server on PATH, in ${FALLBACK_DIRS.join(" or ")}, and NATS_SERVER is not set`,
    );
  }
  if (!isExecutableFile(binary)) {
    throw new NatsServerNotFoundError(`NATS_SERVER is ${binary}, which is not an executable file`);
  }
  const settings = configLines(options);
  const dir = await Deno.makeTempDir({ prefix: "bab-nats-" });
  const server = new RunningNatsServer(binary, dir, settings);
  try {
    await server.launch(-1, 0);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/** The config lines every start of one server shares: all but `listen` and the files. */
function configLines(options: NatsServerOptions): string[] {
  const maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  if (!Number.isSafeInteger(maxPayload) || maxPayload < 1 || maxPayload > MAX_PAYLOAD_LIMIT) {
    throw new RangeError(
      `Cannot use maxPayload ${maxPayload}: it must be a whole number of bytes from 1 to ${MAX_PAYLOAD_LIMIT}`,
    );
  }
  const pingIntervalMs = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
  if (!Number.isSafeInteger(pingIntervalMs) || pingIntervalMs < 1) {
    throw new RangeError(
      `Cannot use pingIntervalMs ${pingIntervalMs}: it must be a whole number of milliseconds, at least 1`,
    );
  }
  const lines = [`max_payload: ${maxPayload}`, `ping_interval: "${pingIntervalMs}ms"`];
  const { user, password, token } = options;
  if (token !== undefined) {
    if (user !== undefined || password !== undefined) {
      throw new RangeError("Cannot configure both a token and a user/password: choose one");
    }
    lines.push(`authorization { token: ${quote("token", token)} }`);
  } else if (user !== undefined || password !== undefined) {
    if (user === undefined || password === undefined) {
      throw new RangeError("Cannot configure a user without a password, or the reverse: give both");
    }
    lines.push(
      `authorization { user: ${quote("user", user)}, password: ${quote("password", password)} }`,
    );
  }
  if (options.config !== undefined) lines.push(options.config);
  return lines;
}

/** A config-file string; refuses what would need escaping rather than trusting the escapes. */
function quote(what: string, value: string): string {
  // deno-lint-ignore no-control-regex -- control characters are exactly what is refused
  if (value === "" || /["\\\x00-\x1f\x7f]/.test(value)) {
    throw new RangeError(
      `Cannot put ${what} ${JSON.stringify(value)} into a config file: ` +
        "it must be non-empty, without quotes, backslashes or control characters",
    );
  }
  return `"${value}"`;
}

/** One server process: the child, how it exited (once it has), its stderr read to the end. */
interface Process {
  readonly child: Deno.ChildProcess;
  readonly status: Promise<Deno.CommandStatus>;
  exit: Deno.CommandStatus | null;
  readonly stderr: Promise<string>;
}

class RunningNatsServer implements NatsServer {
  readonly hostname = HOSTNAME;
  readonly #binary: string;
  readonly #dir: string;
  readonly #settings: readonly string[];
  readonly #setpriv = findExecutable("setpriv");
  #port = 0;
  #pid = 0;
  #process: Process | null = null;
  // Every run's stderr, kept so that log() still has it once a run has ended.
  #stderr = "";
  #stopping: Promise<void> | null = null;
  // The log as it was when the directory was removed.
  #finalLog: string | null = null;

  constructor(binary: string, dir: string, settings: readonly string[]) {
    this.#binary = binary;
    this.#dir = dir;
    this.#settings = settings;
  }

  get port(): number {
    return this.#port;
  }

  get pid(): number {
    return this.#pid;
  }

  get directory(): string {
    return this.#dir;
  }

  /**
   * Starts the process with `listen` on `port` (-1: the kernel picks) and
   * waits until it is ready. While the port is still taken (a restart),
   * tries again until `retryMs` has passed.
   */
  async launch(port: number, retryMs: number): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    const retryUntil = Date.now() + retryMs;
    for (;;) {
      const configPath = `${this.#dir}/nats.conf`;
      await Deno.writeTextFile(
        configPath,
        [
          `listen: "${HOSTNAME}:${port}"`,
          `log_file: "${this.#dir}/nats.log"`,
          `ports_file_dir: "${this.#dir}"`,
          ...this.#settings,
          "",
        ].join("\n"),
      );
      const server = [this.#binary, "-c", configPath];
      // Through util-linux's setpriv where there is one: it sets Linux's
      // parent-death signal and then execs the server (same PID), so that a
      // test process that dies without stopping its server (killed, crashed,
      // Deno.exit) takes the server with it instead of leaving it running
      // with nobody to stop it. The signal follows the spawning thread: a
      // server started in a worker ends with that worker.
      const command = this.#setpriv === null
        ? server
        : [this.#setpriv, "--pdeathsig", "KILL", "--", ...server];
      const child = new Deno.Command(command[0]!, {
        args: command.slice(1),
        stdin: "null",
        stdout: "null",
        // Drained to the end below: errors before the log file opens, and panics, go there.
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text().then((text) => {
        this.#stderr += text;
        return text;
      });
      const process: Process = { child, status: child.status, exit: null, stderr };
      process.status.then((status) => process.exit = status);
      this.#process = process;
      this.#pid = child.pid;
      const outcome = await this.#awaitReady(deadline);
      if (outcome === "ready") return;
      await this.#terminate();
      const log = await this.log();
      if (Date.now() < retryUntil && /address already in use/i.test(log)) {
        await delay(50);
        continue;
      }
      throw new Error(`nats-server (pid ${child.pid}) ${outcome}. Its log:\n${log}`);
    }
  }

  /** Polls for the ports file, then reads the INFO line; there is no readiness signal to wait on. */
  async #awaitReady(deadline: number): Promise<"ready" | string> {
    const process = this.#process!;
    while (Date.now() < deadline) {
      if (process.exit !== null) return `exited with code ${process.exit.code} while starting`;
      const port = await this.#portFromFile(process.child.pid);
      if (port !== null) {
        this.#port = port;
        const problem = await probeInfo(HOSTNAME, port, deadline);
        if (problem === null) return "ready";
        if (Date.now() >= deadline) return `sent no INFO line: ${problem}`;
      }
      await delay(POLL_MS);
    }
    return `was not ready within ${START_TIMEOUT_MS} ms`;
  }

  /** The port in this process's ports file (`<binary name>_<pid>.ports`), once it is written. */
  async #portFromFile(pid: number): Promise<number | null> {
    for await (const entry of Deno.readDir(this.#dir)) {
      if (!entry.name.endsWith(`_${pid}.ports`)) continue;
      try {
        const ports = JSON.parse(await Deno.readTextFile(`${this.#dir}/${entry.name}`));
        const url = new URL(String(ports.nats[0]));
        return Number(url.port);
      } catch {
        return null; // still being written
      }
    }
    return null;
  }

  /** SIGTERM to the process, SIGKILL after a grace period; awaits its exit and its stderr. */
  async #terminate(): Promise<void> {
    const process = this.#process;
    if (process === null) return;
    this.#process = null;
    if (process.exit === null) {
      signal(process.child, "SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stopped = await Promise.race([
        process.status.then(() => true),
        new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), STOP_GRACE_MS)),
      ]);
      clearTimeout(timer);
      if (!stopped) signal(process.child, "SIGKILL");
    }
    await process.status;
    await process.stderr;
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#terminate();
      this.#finalLog = await this.log();
      await Deno.remove(this.#dir, { recursive: true });
    })();
    return this.#stopping;
  }

  async restart(): Promise<void> {
    if (this.#stopping !== null) throw new Error("Cannot restart a nats-server that was stopped");
    await this.#terminate();
    try {
      // The old process is gone, but a socket of another process may still
      // hold the port for a moment: retry for most of the start timeout.
      await this.launch(this.#port, START_TIMEOUT_MS - 1_000);
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  async log(): Promise<string> {
    if (this.#finalLog !== null) return this.#finalLog;
    let text = "";
    try {
      text = await Deno.readTextFile(`${this.#dir}/nats.log`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    if (this.#stderr === "") return text;
    return `${text === "" ? "" : `${text}\n`}--- stderr ---\n${this.#stderr}`;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * Connects and reads until the first "\r\n", which must start with "INFO ".
 *
 * @returns null when it did, else what went wrong
 */
async function probeInfo(hostname: string, port: number, deadline: number): Promise<string | null> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname, port });
  } catch (error) {
    return `cannot connect: ${error}`;
  }
  // A server that accepts but says nothing must not hang the start: closing
  // the connection at the deadline ends the pending read.
  const timer = setTimeout(() => conn.close(), Math.max(0, deadline - Date.now()));
  try {
    const bytes: number[] = [];
    const chunk = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(chunk);
      if (n === null) return "the connection closed before a line";
      bytes.push(...chunk.subarray(0, n));
      const text = new TextDecoder().decode(new Uint8Array(bytes));
      const end = text.indexOf("\r\n");
      if (end < 0) continue;
      return text.startsWith("INFO ") ? null : `the first line was ${text.slice(0, end)}`;
    }
  } catch (error) {
    return `reading INFO failed: ${error}`;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Already closed by the deadline.
    }
  }
}

/** Sends `name` to the child by its own PID; one that has just exited needs none. */
function signal(child: Deno.ChildProcess, name: Deno.Signal): void {
  try {
    child.kill(name);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error; // "already terminated"
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
