/**
 * Smoke test of the bundled library in headless Chromium, on two pages
 * served from 127.0.0.1: one cross-origin isolated (served with COOP and
 * COEP headers, so it has `SharedArrayBuffer`: a shared pool, a module
 * worker writing to a flusher in the page), one not (no
 * `SharedArrayBuffer`: pools of one thread, and `shared: true` failing with
 * the advice to isolate the page). Both run tools/smoke_checks.mjs, as Node
 * and Bun do, and post their report back to the server.
 *
 * `deno run -A tools/browser_smoke.ts [bundle.js]`: without a bundle it
 * makes one with `deno bundle`. Chromium is `$BAB_CHROMIUM`, else the first
 * of chromium, chromium-browser, google-chrome on PATH. Exits non-zero when a
 * check fails, a page reports nothing in time, or Chromium is missing.
 *
 * @module
 */

import { runMain } from "./_run_main.ts";

/** How long one page may take, from Chromium's start to its report; `$BAB_BROWSER_TIMEOUT_MS` overrides it. */
const PAGE_TIMEOUT_MS = Number(Deno.env.get("BAB_BROWSER_TIMEOUT_MS") || 60_000);
/** How long Chromium may take to exit once asked to. */
const EXIT_TIMEOUT_MS = 10_000;

const toolsDir = new URL(".", import.meta.url);
const repoDir = new URL("..", toolsDir);

/** What a page posts to /result. */
interface PageReport {
  runtime: string;
  isolated: boolean;
  sharedArrayBuffer: boolean;
  lines: string[];
  checks: number;
  failures: number;
}

function findChromium(): string {
  const named = Deno.env.get("BAB_CHROMIUM");
  if (named !== undefined && named !== "") return named;
  const path = Deno.env.get("PATH") ?? "";
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    for (const dir of path.split(":")) {
      if (dir === "") continue;
      try {
        const file = `${dir}/${name}`;
        if (Deno.statSync(file).isFile) return file;
      } catch {
        // Not in this directory.
      }
    }
  }
  throw new Error(
    "Cannot run the browser smoke test: no chromium, chromium-browser or google-chrome on PATH; install Debian's chromium package (apt-get install chromium) or set BAB_CHROMIUM",
  );
}

async function makeBundle(dir: string): Promise<string> {
  const out = `${dir}/bab.js`;
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--format",
      "esm",
      "--platform",
      "browser",
      "-o",
      out,
      new URL("mod.ts", repoDir).pathname,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`deno bundle failed (exit ${code}):\n${new TextDecoder().decode(stderr)}`);
  }
  return out;
}

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>bab smoke</title>
<script>
  // Errors before the module reports (a bundle that fails to load) are reported too.
  function reportFailure(what) {
    fetch("/result", {
      method: "POST",
      body: JSON.stringify({
        runtime: navigator.userAgent,
        isolated: self.crossOriginIsolated,
        sharedArrayBuffer: typeof SharedArrayBuffer === "function",
        lines: ["FAIL page: " + what],
        checks: 0,
        failures: 1,
      }),
    });
  }
  addEventListener("error", (event) => reportFailure(String(event.error?.stack ?? event.message)));
  addEventListener("unhandledrejection", (event) => reportFailure(String(event.reason?.stack ?? event.reason)));
</script>
<script type="module" src="smoke_page.mjs" onerror="reportFailure('smoke_page.mjs did not load')"></script>
`;

const PAGE_SCRIPT = `import * as bab from "./bab.js";
import { runChecks, runtimeName, smokeChecks } from "./smoke_checks.mjs";

const lines = [];
const worker = self.crossOriginIsolated
  ? {
    create: () => new Worker(new URL("./smoke_worker.mjs", import.meta.url), { type: "module" }),
    bundle: new URL("./bab.js", import.meta.url).href,
  }
  : undefined;
const checks = smokeChecks(bab, { worker });
const failures = await runChecks(checks, (line) => lines.push(line));
await fetch("/result", {
  method: "POST",
  body: JSON.stringify({
    runtime: runtimeName(),
    isolated: self.crossOriginIsolated,
    sharedArrayBuffer: typeof SharedArrayBuffer === "function",
    lines,
    checks: checks.length,
    failures,
  }),
});
`;

/** Serves the page, its scripts and the bundle; `/isolated/` with COOP and COEP. */
function serve(
  bundle: string,
  onReport: (report: PageReport) => void,
): Deno.HttpServer<Deno.NetAddr> {
  const files: Record<string, () => Promise<string>> = {
    "": () => Promise.resolve(PAGE),
    "index.html": () => Promise.resolve(PAGE),
    "smoke_page.mjs": () => Promise.resolve(PAGE_SCRIPT),
    "bab.js": () => Deno.readTextFile(bundle),
    "smoke_checks.mjs": () => Deno.readTextFile(new URL("smoke_checks.mjs", toolsDir)),
    "smoke_worker.mjs": () => Deno.readTextFile(new URL("smoke_worker.mjs", toolsDir)),
  };
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const { pathname } = new URL(request.url);
    if (request.method === "POST" && pathname === "/result") {
      onReport(await request.json() as PageReport);
      return new Response("thanks");
    }
    const match = /^\/(isolated|plain)\/(.*)$/.exec(pathname);
    const file = match === null ? undefined : files[match[2]!];
    if (match === null || file === undefined) return new Response("not found", { status: 404 });
    const headers = new Headers({
      "content-type": match[2]!.endsWith(".html") || match[2] === ""
        ? "text/html; charset=utf-8"
        : "text/javascript; charset=utf-8",
      "cache-control": "no-store",
    });
    if (match[1] === "isolated") {
      headers.set("cross-origin-opener-policy", "same-origin");
      headers.set("cross-origin-embedder-policy", "require-corp");
    }
    return new Response(await file(), { headers });
  });
}

/** Opens `url` in a fresh headless Chromium and waits for the page's report. */
async function runPage(
  chromium: string,
  url: string,
  reports: { next: Promise<PageReport> },
): Promise<PageReport> {
  const profile = await Deno.makeTempDir({ prefix: "bab-chromium-" });
  const child = new Deno.Command(chromium, {
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-extensions",
      "--enable-logging=stderr",
      "--v=0",
      `--user-data-dir=${profile}`,
      url,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Chromium's output, for the error message when the page never reports.
  const decoder = new TextDecoder();
  let output = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output = (output + decoder.decode(chunk)).slice(-20_000);
  };
  const collecting = Promise.all([collect(child.stdout), collect(child.stderr)]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${url} reported nothing within ${PAGE_TIMEOUT_MS} ms`)),
        PAGE_TIMEOUT_MS,
      );
    });
    const exited = child.status.then((status) => {
      throw new Error(`Chromium exited (code ${status.code}) before ${url} reported`);
    });
    return await Promise.race([reports.next, timeout, exited]);
  } catch (error) {
    throw new Error(`${(error as Error).message}\nChromium's last output:\n${output}`);
  } finally {
    clearTimeout(timer);
    await stop(child);
    await collecting;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** Stops Chromium by its own pid: SIGTERM, then SIGKILL if it lingers. */
async function stop(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const lingered = await Promise.race([
    child.status.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), EXIT_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  if (lingered) {
    child.kill("SIGKILL");
    await child.status;
  }
}

/** Checks one page's report: every check passed, on the page it was meant to be. */
function judge(report: PageReport, isolated: boolean): string[] {
  const problems: string[] = [];
  if (report.isolated !== isolated) {
    problems.push(`crossOriginIsolated is ${report.isolated}, expected ${isolated}`);
  }
  if (report.sharedArrayBuffer !== isolated) {
    problems.push(
      `SharedArrayBuffer is ${report.sharedArrayBuffer ? "" : "not "}there, expected ${
        isolated ? "it" : "none"
      }`,
    );
  }
  if (report.checks === 0) problems.push("it failed before its checks ran");
  else if (report.failures !== 0) problems.push(`${report.failures} checks failed`);
  if (isolated && !report.lines.some((line) => line.startsWith("ok   worker:"))) {
    problems.push("the worker check did not run");
  }
  return problems;
}

/** What `chromium --version` says, e.g. "Chromium 156.0.8078.108 built on Debian GNU/Linux 12". */
async function chromiumVersion(chromium: string): Promise<string> {
  try {
    const { stdout } = await new Deno.Command(chromium, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(stdout).trim();
  } catch (cause) {
    throw new Error(`Cannot start Chromium at ${chromium}: ${(cause as Error).message}`, { cause });
  }
}

async function main(): Promise<number> {
  const chromium = findChromium();
  const version = await chromiumVersion(chromium);
  const work = await Deno.makeTempDir({ prefix: "bab-browser-smoke-" });
  try {
    const bundle = Deno.args[0] ?? await makeBundle(work);
    let deliver: (report: PageReport) => void = () => {};
    const reports = { next: Promise.resolve({} as PageReport) };
    const arm = () => {
      reports.next = new Promise((resolve) => (deliver = resolve));
    };
    const server = serve(bundle, (report) => deliver(report));
    let failed = false;
    try {
      for (const isolated of [true, false]) {
        const page = isolated ? "isolated" : "plain";
        const url = `http://127.0.0.1:${server.addr.port}/${page}/`;
        arm();
        const report = await runPage(chromium, url, reports);
        for (const line of report.lines) console.log(line);
        const problems = judge(report, isolated);
        // The page's user agent gives only the major version: the binary's is exact.
        const where = `${version.replace(/ built on .*/, "") || report.runtime} (${
          isolated ? "cross-origin isolated page" : "page not cross-origin isolated"
        })`;
        console.log(
          report.checks === 0
            ? `The page failed before its checks ran, on ${where}`
            : `${report.checks - report.failures} of ${report.checks} checks passed on ${where}`,
        );
        for (const problem of problems) console.error(`FAIL ${page} page: ${problem}`);
        if (problems.length > 0) failed = true;
      }
    } finally {
      await server.shutdown();
    }
    return failed ? 1 : 0;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) await runMain(main);
