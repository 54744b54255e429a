/**
 * The pure half of `deno task bench:report`: read what `deno bench --json`
 * printed, reduce several runs to one time per case, and render the report
 * as markdown and as an SVG bar chart. Nothing here touches the file system
 * or spawns a process, so tests feed it plain objects.
 *
 * @module
 */

/** One bench case as one run of `deno bench --json` reported it. */
export interface BenchCase {
  /** The bench file, as passed to `deno bench`. */
  file: string;
  /** The case's group, or null for a case outside any group. */
  group: string | null;
  name: string;
  /** Whether the case was declared with `baseline: true`. */
  baseline: boolean;
  /** Mean time per iteration in nanoseconds, or null when the case failed. */
  avgNs: number | null;
  /** Why the case failed, when it did. */
  error?: string;
}

/** What one `deno bench --json` process reported. */
export interface BenchRun {
  /** Deno's own description of itself, e.g. "Deno/2.9.6 x86_64-unknown-linux-gnu". */
  runtime: string;
  /** The CPU as Deno names it, e.g. "AMD EPYC". */
  cpu: string;
  cases: BenchCase[];
}

/** A case in the report: its time across runs and its ratio to the baseline. */
export interface ReportCase {
  name: string;
  /** Whether this case is the group's baseline. */
  baseline: boolean;
  /** Median over the runs of the mean time per iteration, in ns; null if any run failed. */
  timeNs: number | null;
  /** Baseline time over this case's time: above 1 is faster. Null when either failed. */
  ratio: number | null;
  /** Why the case failed, when it did. */
  error?: string;
}

/** A bench group of one file, with the case its ratios are taken against. */
export interface ReportGroup {
  file: string;
  group: string | null;
  /** Whether a case was declared `baseline: true`; if not, the first case serves. */
  declaredBaseline: boolean;
  cases: ReportCase[];
}

/** What the report says about how and where it was produced. */
export interface ReportMeta {
  /** The command a reader runs to produce the report again. */
  command: string;
  /** The command run per bench file, with `<file>` in place of the file. */
  benchCommand: string;
  runs: number;
  /** Deno's runtime string from the bench output. */
  runtime: string;
  /** Deno, V8 and TypeScript versions. */
  versions: { deno: string; v8: string; typescript: string };
  /** CPU model, cores, memory and OS. */
  machine: string;
  /** When the report was made, as text. */
  date: string;
  /** Seconds each file's bench process took, per run. */
  files: { file: string; seconds: number }[];
}

/** Options of `deno task bench:report`, from its command line. */
export interface ReportArgs {
  /** Bench files to run; empty means every `*_bench.ts` in bench/. */
  files: string[];
  /** Runs of each file; the report takes the median. */
  runs: number;
  /** Whether `--help` was asked for. */
  help: boolean;
}

/**
 * Reads the command line of `deno task bench:report`: bench files, and
 * `--runs N` (or `--runs=N`).
 *
 * @throws {TypeError} On an unknown option or a run count that is not a positive integer.
 */
export function parseReportArgs(args: readonly string[]): ReportArgs {
  const result: ReportArgs = { files: [], runs: 1, help: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--help" || arg === "-h") {
      result.help = true;
    } else if (arg === "--runs" || arg.startsWith("--runs=")) {
      const value = arg === "--runs" ? args[++i] : arg.slice("--runs=".length);
      const runs = Number(value);
      if (!Number.isInteger(runs) || runs < 1) {
        throw new TypeError(`Cannot read --runs ${value ?? ""}: expected an integer of 1 or more`);
      }
      result.runs = runs;
    } else if (arg.startsWith("-")) {
      throw new TypeError(`Cannot read option ${arg}: the options are --runs N and --help`);
    } else {
      result.files.push(arg);
    }
  }
  return result;
}

/**
 * Parses the standard output of `deno bench --json <file>` (format version 1,
 * as printed by Deno 2.x).
 *
 * @param text The whole standard output.
 * @param file The bench file, recorded on each case.
 * @throws {TypeError} If the text is not that JSON.
 */
export function parseBenchJson(text: string, file: string): BenchRun {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    const start = text.slice(0, 200);
    throw new TypeError(
      `Cannot read the bench output of ${file}: it is not JSON (${error}); it starts with: ${start}`,
    );
  }
  const top = record(data, file, "the output");
  if (top.version !== 1) {
    throw new TypeError(
      `Cannot read the bench output of ${file}: format version ${top.version}, expected 1`,
    );
  }
  if (!Array.isArray(top.benches)) {
    throw new TypeError(`Cannot read the bench output of ${file}: it has no "benches" array`);
  }
  const cases = top.benches.map((entry: unknown): BenchCase => {
    const bench = record(entry, file, "a bench");
    const name = String(bench.name);
    const group = typeof bench.group === "string" ? bench.group : null;
    const results = Array.isArray(bench.results) ? bench.results : [];
    const result = record(results[0], file, `the result of "${name}"`);
    const base = { file, group, name, baseline: bench.baseline === true };
    const ok = result.ok as Record<string, unknown> | undefined;
    if (ok !== undefined && typeof ok.avg === "number") return { ...base, avgNs: ok.avg };
    const failed = result.failed as Record<string, unknown> | undefined;
    const error = failed?.exceptionMessage ?? failed?.message ?? JSON.stringify(result);
    return { ...base, avgNs: null, error: String(error) };
  });
  return { runtime: String(top.runtime ?? "unknown"), cpu: String(top.cpu ?? "unknown"), cases };
}

function record(value: unknown, file: string, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`Cannot read the bench output of ${file}: ${what} is not an object`);
  }
  return value as Record<string, unknown>;
}

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("Cannot take the median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Reduces one or more runs to report groups: each case's time is the median
 * of its runs' mean times, and its ratio is the baseline's time over its own.
 * Groups and cases keep the order they first appeared in.
 *
 * @param runs Each run's cases, all files together.
 */
export function summarize(runs: readonly (readonly BenchCase[])[]): ReportGroup[] {
  const groups = new Map<string, { group: ReportGroup; times: Map<string, BenchCase[]> }>();
  for (const run of runs) {
    for (const bench of run) {
      const key = `${bench.file}\0${bench.group ?? ""}`;
      let entry = groups.get(key);
      if (entry === undefined) {
        const group = { file: bench.file, group: bench.group, declaredBaseline: false, cases: [] };
        entry = { group, times: new Map() };
        groups.set(key, entry);
      }
      const seen = entry.times.get(bench.name);
      if (seen === undefined) entry.times.set(bench.name, [bench]);
      else seen.push(bench);
    }
  }
  return [...groups.values()].map(({ group, times }) => {
    const cases: ReportCase[] = [...times].map(([name, measured]) => {
      const failed = measured.find((bench) => bench.avgNs === null);
      const timeNs = failed ? null : median(measured.map((bench) => bench.avgNs!));
      const reportCase: ReportCase = {
        name,
        baseline: measured[0]!.baseline,
        timeNs,
        ratio: null,
      };
      if (failed?.error !== undefined) reportCase.error = failed.error;
      return reportCase;
    });
    const declared = cases.find((c) => c.baseline);
    const baseline = declared ?? cases[0]!;
    for (const c of cases) {
      c.baseline = c === baseline;
      if (c.timeNs !== null && baseline.timeNs !== null) c.ratio = baseline.timeNs / c.timeNs;
    }
    return { ...group, declaredBaseline: declared !== undefined, cases };
  });
}

/** A time in nanoseconds with three significant digits and a fitting unit: "12.2 ns", "2.56 µs". */
export function formatTime(ns: number): string {
  const units = ["ns", "µs", "ms", "s"];
  let value = ns;
  let unit = 0;
  while (unit < units.length - 1 && Number(value.toPrecision(3)) >= 1000) {
    value /= 1000;
    unit++;
  }
  return `${Number(value.toPrecision(3))} ${units[unit]}`;
}

/** A ratio to the baseline as a reader says it: "71× faster", "4.1× slower", "1.00× (the same)". */
export function formatRatio(ratio: number): string {
  const factor = ratio >= 1 ? ratio : 1 / ratio;
  const digits = factor < 2 ? 2 : factor < 10 ? 1 : 0;
  const shown = factor.toFixed(digits);
  if (Number(shown) === 1) return "1.00× (the same)";
  return `${shown}× ${ratio >= 1 ? "faster" : "slower"}`;
}

function groupTitle(group: ReportGroup): string {
  return group.group ?? "(no group)";
}

function caseRatio(c: ReportCase): string {
  if (c.timeNs === null) return `failed: ${c.error ?? "unknown error"}`;
  if (c.baseline) return "1× (baseline)";
  return c.ratio === null ? "—" : formatRatio(c.ratio);
}

function escapeCell(text: string): string {
  return text.replace(/[\\`*_<>|[\]]/g, (ch) => `\\${ch}`).replace(/\s+/g, " ");
}

/**
 * Renders the report as markdown (not yet laid out by `deno fmt`): how it
 * was made, the chart, then a table per file and group.
 */
export function renderMarkdown(groups: readonly ReportGroup[], meta: ReportMeta): string {
  const lines: string[] = [
    "# Benchmarks",
    "",
    `Generated by \`${meta.command}\`; do not edit by hand, run it again.`,
    "",
    `- Command: \`${meta.benchCommand}\` for each file, each in its own process, ` +
    (meta.runs === 1 ? "one run." : `${meta.runs} runs.`),
    `- Runtime: Deno ${meta.versions.deno} (V8 ${meta.versions.v8}, TypeScript ${meta.versions.typescript}), \`${meta.runtime}\`.`,
    `- Machine: ${meta.machine}.`,
    `- Date: ${meta.date}.`,
    "",
    "Time per iteration is the mean that `deno bench` reports for the case" +
    (meta.runs === 1 ? "." : `, the median over ${meta.runs} runs.`) +
    " Each case's iteration is its own loop (see the bench file; many run 1000 operations or" +
    " a stated number of messages), so compare times within a group only. The ratio is the" +
    " baseline's time over the case's.",
    "",
    "![Each case's speed against its group's baseline, log scale](benchmarks.svg)",
  ];
  let file: string | null = null;
  for (const group of groups) {
    if (group.file !== file) {
      file = group.file;
      const took = meta.files.find((f) => f.file === file);
      lines.push("", `## ${file}`);
      if (took !== undefined) {
        lines.push("", `One run of this file took ${took.seconds.toFixed(1)} s.`);
      }
    }
    lines.push("", `### \`${groupTitle(group)}\``, "");
    if (!group.declaredBaseline) {
      lines.push("No case is marked `baseline: true`; ratios are against the first case.", "");
    }
    lines.push("| case | time per iteration | vs the group's baseline |", "| --- | --- | --- |");
    for (const c of group.cases) {
      const time = c.timeNs === null ? "failed" : formatTime(c.timeNs);
      const name = escapeCell(c.name) + (c.baseline ? " (baseline)" : "");
      const ratio = escapeCell(caseRatio(c));
      const shown = c.ratio !== null && c.ratio >= 10 ? `**${ratio}**` : ratio;
      lines.push(`| ${name} | ${time} | ${shown} |`);
    }
  }
  lines.push("");
  return lines.join("\n");
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** Average width of a 12px sans-serif character, for laying out labels without a browser. */
const CHAR_WIDTH = 6.6;
const ROW = 22;
const PLOT_WIDTH = 440;

/**
 * Renders a horizontal bar chart, one row per case: each bar runs from the
 * group's baseline (1×) to the case's speed relative to it, on a log scale,
 * right for faster and left for slower, labelled with the ratio.
 */
export function renderSvg(groups: readonly ReportGroup[]): string {
  const ratios = groups.flatMap((g) => g.cases.map((c) => c.ratio ?? 1));
  const low = Math.floor(Math.log10(Math.min(0.5, ...ratios)));
  const high = Math.ceil(Math.log10(Math.max(2, ...ratios)));
  const names = groups.flatMap((g) => g.cases.map((c) => c.name));
  const longest = Math.max(...names.map((n) => n.length), 20);
  const maxChars = Math.min(longest, 72);
  const left = Math.ceil(maxChars * CHAR_WIDTH) + 24;
  const width = left + PLOT_WIDTH + 140;
  const x = (ratio: number) => left + (Math.log10(ratio) - low) / (high - low) * PLOT_WIDTH;
  const one = x(1);

  const body: string[] = [];
  let y = 48;
  for (const group of groups) {
    body.push(
      `<text x="12" y="${y + 15}" font-weight="bold">${
        escapeXml(`${group.file} · ${groupTitle(group)}`)
      }</text>`,
    );
    y += ROW;
    for (const c of group.cases) {
      const label = c.name.length > maxChars ? `${c.name.slice(0, maxChars - 1)}…` : c.name;
      body.push(`<text x="${left - 8}" y="${y + 15}" text-anchor="end">${escapeXml(label)}</text>`);
      let text: string;
      let end = one;
      if (c.ratio === null) {
        text = c.timeNs === null ? "failed" : "—";
      } else if (c.baseline) {
        body.push(`<rect x="${one - 2}" y="${y + 4}" width="4" height="14" fill="#555"/>`);
        text = "baseline";
      } else {
        end = x(c.ratio);
        const from = Math.min(one, end);
        const span = Math.max(Math.abs(end - one), 1);
        const fill = c.ratio >= 1 ? "#2b6cb0" : "#dd6b20";
        body.push(
          `<rect x="${from.toFixed(1)}" y="${y + 4}" width="${
            span.toFixed(1)
          }" height="14" fill="${fill}"/>`,
        );
        text = formatRatio(c.ratio);
      }
      body.push(
        `<text x="${(Math.max(end, one) + 6).toFixed(1)}" y="${y + 15}">${escapeXml(text)}</text>`,
      );
      y += ROW;
    }
    y += 8;
  }

  const grid: string[] = [];
  for (let k = low; k <= high; k++) {
    const gx = x(10 ** k).toFixed(1);
    const stroke = k === 0 ? "#555" : "#ccc";
    grid.push(`<line x1="${gx}" y1="40" x2="${gx}" y2="${y}" stroke="${stroke}"/>`);
    grid.push(
      `<text x="${gx}" y="${y + 16}" text-anchor="middle">${decadeLabel(k)}</text>`,
    );
  }
  const height = y + 28;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="12" y="24" font-size="14" font-weight="bold">Speed against each group's baseline (log scale: right of 1× is faster, left is slower)</text>`,
    ...grid,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}

function decadeLabel(k: number): string {
  return k < 0 ? `${(10 ** k).toFixed(-k)}×` : `${10 ** k}×`;
}
