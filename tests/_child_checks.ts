// Runs a child script's named checks in order, prints "ok NAME" or
// "FAIL NAME" with the stack for each, and exits 1 if any failed: the
// parent test reads these lines as steps.

/** A named check; it fails by throwing. */
export type Check = [name: string, run: () => void | Promise<void>];

/** Runs every check, reporting each; exits 1 after the last if any failed. */
export async function runChecks(checks: readonly Check[]): Promise<void> {
  let failed = 0;
  for (const [name, check] of checks) {
    try {
      await check();
      console.log(`ok ${name}`);
    } catch (error) {
      failed++;
      console.log(`FAIL ${name}\n${error instanceof Error ? error.stack : error}`);
    }
  }
  if (failed > 0) Deno.exit(1);
}

/** What a flusher's readable yields, seen without importing mod.ts. */
type Batches = ReadableStream<Iterable<{ readonly bytes: Uint8Array; release(): void }>>;

/**
 * Reads a flusher's readable to its end, releasing every region, and
 * returns its bytes. Child scripts load mod.ts themselves after changing
 * globals, so they cannot use tests/_writer_helpers.ts (which imports it).
 */
export async function readFlushed(readable: Batches): Promise<number[]> {
  const bytes: number[] = [];
  for await (const batch of readable) {
    for (const region of batch) {
      bytes.push(...region.bytes);
      region.release();
    }
  }
  return bytes;
}
