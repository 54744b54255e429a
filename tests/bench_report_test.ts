import assert from "node:assert/strict";
import {
  type BenchCase,
  formatRatio,
  formatTime,
  median,
  parseBenchJson,
  parseReportArgs,
  renderMarkdown,
  renderSvg,
  summarize,
} from "../tools/bench_report_lib.ts";

/** The shape `deno bench --json` prints in Deno 2.9, trimmed to what the report reads. */
function benchOutput(avgs: { base: number; fast: number; other: number }) {
  const ok = (avg: number) => ({ ok: { n: 100, min: avg, max: avg, avg, p75: avg, p99: avg } });
  return JSON.stringify({
    version: 1,
    runtime: "Deno/2.9.6 x86_64-unknown-linux-gnu",
    cpu: "AMD EPYC",
    benches: [
      {
        origin: "file:///b.ts",
        group: "alloc",
        name: "new",
        baseline: true,
        results: [ok(avgs.base)],
      },
      {
        origin: "file:///b.ts",
        group: "alloc",
        name: "pool",
        baseline: false,
        results: [ok(avgs.fast)],
      },
      {
        origin: "file:///b.ts",
        group: null,
        name: "a|b<c>",
        baseline: false,
        results: [ok(avgs.other)],
      },
      {
        origin: "file:///b.ts",
        group: "alloc",
        name: "broken",
        baseline: false,
        results: [{ failed: { message: "boom", exceptionMessage: "Uncaught Error: boom" } }],
      },
    ],
  });
}

const META = {
  command: "deno task bench:report",
  benchCommand: "deno bench -A --json <file>",
  runs: 3,
  runtime: "Deno/2.9.6 x86_64-unknown-linux-gnu",
  versions: { deno: "2.9.6", v8: "15.0", typescript: "6.0" },
  machine: "AMD EPYC, 2 logical CPUs",
  date: "2026-01-01 00:00 UTC",
  files: [{ file: "bench/b.ts", seconds: 4.25 }],
};

Deno.test("parseReportArgs() reads files and --runs, and rejects what it does not know", () => {
  assert.deepEqual(parseReportArgs([]), { files: [], runs: 1, help: false });
  assert.deepEqual(parseReportArgs(["--runs", "3", "bench/a.ts", "--runs=5"]), {
    files: ["bench/a.ts"],
    runs: 5,
    help: false,
  });
  assert.throws(() => parseReportArgs(["--runs", "0"]), TypeError);
  assert.throws(() => parseReportArgs(["--runs"]), TypeError);
  assert.throws(() => parseReportArgs(["--fast"]), /--runs N/);
});

Deno.test("parseBenchJson() reads groups, baselines, mean times and failures", () => {
  const run = parseBenchJson(benchOutput({ base: 1000, fast: 10, other: 5 }), "bench/b.ts");
  assert.equal(run.runtime, "Deno/2.9.6 x86_64-unknown-linux-gnu");
  assert.equal(run.cpu, "AMD EPYC");
  assert.deepEqual(run.cases.map((c) => [c.group, c.name, c.baseline, c.avgNs]), [
    ["alloc", "new", true, 1000],
    ["alloc", "pool", false, 10],
    [null, "a|b<c>", false, 5],
    ["alloc", "broken", false, null],
  ]);
  assert.equal(run.cases[3]!.error, "Uncaught Error: boom");
  assert.throws(() => parseBenchJson("Check bench/b.ts", "bench/b.ts"), /not JSON/);
  assert.throws(() => parseBenchJson('{"version":2,"benches":[]}', "bench/b.ts"), /version 2/);
});

Deno.test("summarize() takes the median of the runs and the ratio to each group's baseline", () => {
  const runs: BenchCase[][] = [
    { base: 1000, fast: 10, other: 5 },
    { base: 3000, fast: 30, other: 7 },
    { base: 2000, fast: 40, other: 6 },
  ].map((avgs) => parseBenchJson(benchOutput(avgs), "bench/b.ts").cases);
  const groups = summarize(runs);
  assert.deepEqual(groups.map((g) => [g.group, g.declaredBaseline]), [["alloc", true], [
    null,
    false,
  ]]);
  const [alloc, ungrouped] = groups;
  assert.deepEqual(alloc!.cases.map((c) => [c.name, c.baseline, c.timeNs, c.ratio]), [
    ["new", true, 2000, 1],
    ["pool", false, 30, 2000 / 30],
    ["broken", false, null, null],
  ]);
  assert.equal(alloc!.cases[2]!.error, "Uncaught Error: boom");
  // A group without a declared baseline measures against its first case.
  assert.deepEqual(ungrouped!.cases.map((c) => [c.baseline, c.timeNs, c.ratio]), [[true, 6, 1]]);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

Deno.test("formatTime() and formatRatio() say times and ratios as a reader would", () => {
  assert.equal(formatTime(12.24), "12.2 ns");
  assert.equal(formatTime(999.7), "1 µs");
  assert.equal(formatTime(2_560), "2.56 µs");
  assert.equal(formatTime(33_996_243), "34 ms");
  assert.equal(formatRatio(71.4), "71× faster");
  assert.equal(formatRatio(3.34), "3.3× faster");
  assert.equal(formatRatio(1 / 1.13), "1.13× slower");
  assert.equal(formatRatio(1.001), "1.00× (the same)");
});

Deno.test("renderMarkdown() writes the command, machine, chart and one table per group", () => {
  const runs = [
    parseBenchJson(benchOutput({ base: 1000, fast: 10, other: 5 }), "bench/b.ts").cases,
  ];
  const markdown = renderMarkdown(summarize(runs), META);
  for (
    const expected of [
      "`deno bench -A --json <file>` for each file, each in its own process, 3 runs.",
      "Deno 2.9.6 (V8 15.0, TypeScript 6.0)",
      "Machine: AMD EPYC, 2 logical CPUs.",
      "![Each case's speed against its group's baseline, log scale](benchmarks.svg)",
      "## bench/b.ts",
      "One run of this file took 4.3 s.",
      "### `alloc`",
      "| new (baseline) | 1 µs | 1× (baseline) |",
      "| pool | 10 ns | **100× faster** |",
      "| broken | failed | failed: Uncaught Error: boom |",
      "### `(no group)`",
      "ratios are against the first case",
      "| a\\|b\\<c\\> (baseline) | 5 ns | 1× (baseline) |",
    ]
  ) {
    assert.ok(markdown.includes(expected), `missing ${expected} in:\n${markdown}`);
  }
});

Deno.test("renderSvg() draws a labelled bar per case on a log scale, with names escaped", () => {
  const runs = [
    parseBenchJson(benchOutput({ base: 1000, fast: 10, other: 5 }), "bench/b.ts").cases,
  ];
  const svg = renderSvg(summarize(runs));
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  assert.ok(svg.includes(">100× faster</text>"));
  assert.ok(svg.includes(">failed</text>"));
  assert.ok(svg.includes(">a|b&#60;c&#62;</text>"), "names are XML-escaped");
  for (const tick of ["0.1×", "1×", "10×", "100×"]) assert.ok(svg.includes(`>${tick}</text>`));
  assert.ok(!svg.includes("NaN"));
});
