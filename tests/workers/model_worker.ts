// The worker side of the model test's shared-pool runs: attaches to the
// pool, drives one writer through a seeded random script, closes it,
// detaches, and reports what the writer placed.
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import { BufferPool, type BufferPoolHandle, type WriteFlusherHandle, Writer } from "../../mod.ts";
import { setImmediate } from "node:timers";
import { prng } from "../_helpers.ts";
import {
  codecOf,
  type CodecSpec,
  describeError,
  type Item,
  READY,
  type World,
  WriterScript,
} from "../_model.ts";

export interface ModelJob {
  pool: BufferPoolHandle;
  flusher: WriteFlusherHandle;
  spec: CodecSpec;
  id: number;
  seed: number;
  steps: number;
}

export type ModelReport =
  | { ok: true; items: Item[]; problems: string[] }
  | { ok: false; error: string };

self.onmessage = async ({ data: job }: MessageEvent<ModelJob>) => {
  try {
    const r = prng(job.seed);
    const pool = BufferPool.attach(job.pool);
    const manual = r(3) === 0;
    const world: World = { consumerStopped: false, consumerError: undefined };
    const writer = new Writer(pool, job.flusher, {
      id: job.id,
      codec: codecOf(job.spec),
      flush: manual ? "manual" : "microtask",
    });
    const script = new WriterScript(writer, job.spec, pool.bufferSize, world);
    for (let s = 0; s < job.steps; s++) {
      script.step(r, manual);
      if (r(4) === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await script.finish();
    pool.detach();
    self.postMessage(
      { ok: true, items: script.items, problems: script.problems } satisfies ModelReport,
    );
  } catch (error) {
    self.postMessage({ ok: false, error: describeError(error) } satisfies ModelReport);
  }
};

self.postMessage(READY);
