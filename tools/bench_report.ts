/**
 * `deno task bench:report [--runs N] [bench files...]`: runs each bench file
 * with `deno bench -A --json` in its own process, and writes
 * docs/benchmarks.md and docs/benchmarks.svg from the results. With no files
 * it runs every `*_bench.ts` in bench/; with `--runs N` each file N times,
 * reporting the median.
 *
 * Everything but spawning and writing lives in ./bench_report_lib.ts.
 *
 * @module
 */

import {
  type BenchCase,
  parseBenchJson,
  parseReportArgs,
  renderMarkdown,
  renderSvg,
  summarize,
} from "./bench_report_lib.ts";

const OUT_DIR = "docs";
const BENCH_DIR = "bench";

const args = parseReportArgs(Deno.args);
if (args.help) {
  console.log("Usage: deno task bench:report [--runs N] [bench files...]");
  Deno.exit(0);
}

const files = args.files.length > 0 ? args.files : await benchFiles();
const runs: BenchCase[][] = [];
const seconds = new Map<string, number>();
let runtime = "unknown";
let cpu = "";

for (let run = 1; run <= args.runs; run++) {
  const cases: BenchCase[] = [];
  for (const file of files) {
    const started = performance.now();
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["bench", "-A", "--json", file],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const took = (performance.now() - started) / 1000;
    seconds.set(file, (seconds.get(file) ?? 0) + took / args.runs);
    console.error(`${file}: run ${run} of ${args.runs} took ${took.toFixed(1)} s`);
    const stdout = new TextDecoder().decode(output.stdout);
    let parsed;
    try {
      parsed = parseBenchJson(stdout, file);
    } catch (error) {
      console.error(new TextDecoder().decode(output.stderr));
      throw error;
    }
    if (!output.success) {
      console.error(`${file}: deno bench exited with code ${output.code}`);
    }
    runtime = parsed.runtime;
    cpu = parsed.cpu;
    cases.push(...parsed.cases);
  }
  runs.push(cases);
}

const groups = summarize(runs);
const command = ["deno task bench:report", ...Deno.args].join(" ");
const markdown = renderMarkdown(groups, {
  command,
  benchCommand: "deno bench -A --json <file>",
  runs: args.runs,
  runtime,
  versions: Deno.version,
  machine: await machine(cpu),
  date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
  files: files.map((file) => ({ file, seconds: seconds.get(file) ?? 0 })),
});

await Deno.mkdir(OUT_DIR, { recursive: true });
// bench:e2e writes its own section between markers: keep it across a rewrite.
const old = await Deno.readTextFile(`${OUT_DIR}/benchmarks.md`).catch(() => "");
const e2e = old.match(/<!-- e2e:begin -->[\s\S]*<!-- e2e:end -->\n?/)?.[0];
const page = e2e === undefined ? markdown : `${markdown.trimEnd()}\n\n${e2e}`;
await Deno.writeTextFile(`${OUT_DIR}/benchmarks.md`, await format("md", page));
await Deno.writeTextFile(`${OUT_DIR}/benchmarks.svg`, await format("svg", renderSvg(groups)));
console.error(`Wrote ${OUT_DIR}/benchmarks.md and ${OUT_DIR}/benchmarks.svg`);

const failed = groups.flatMap((g) => g.cases).filter((c) => c.timeNs === null);
if (failed.length > 0) {
  console.error(`${failed.length} bench case(s) failed: ${failed.map((c) => c.name).join("; ")}`);
  Deno.exit(1);
}

async function benchFiles(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(BENCH_DIR)) {
    if (entry.isFile && entry.name.endsWith("_bench.ts")) names.push(`${BENCH_DIR}/${entry.name}`);
  }
  return names.sort();
}

/** CPU model (from /proc/cpuinfo where there is one), cores, memory and OS. */
async function machine(benchCpu: string): Promise<string> {
  let model = benchCpu;
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    model = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? model;
  } catch {
    // Not Linux: keep the name deno bench gave.
  }
  const gib = Deno.systemMemoryInfo().total / 2 ** 30;
  return `${model}, ${navigator.hardwareConcurrency} logical CPUs, ${gib.toFixed(1)} GiB RAM, ` +
    `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`;
}

/** Lays generated text out with `deno fmt`, so that `deno fmt --check` passes on the files. */
async function format(ext: "md" | "svg", text: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext", ext, "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const output = await child.output();
  if (!output.success) throw new Error(`deno fmt could not format the generated ${ext}`);
  return new TextDecoder().decode(output.stdout);
}
