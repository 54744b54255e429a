// A framer's readable piped into a destination that stops: whatever the
// pipe was handed and the destination never used is released, whichever
// way the pipe ends (the destination fails, a transform throws, the pipe is
// aborted, preventCancel keeps the source); what the destination did use
// stays its own. Pools of 1-4 buffers, every buffer back at the end.
import assert from "node:assert/strict";
import { BatchFramer, BufferPool, Framer, lengthPrefix, type Packet } from "../mod.ts";
import { assertAllFree, flush } from "./_helpers.ts";

const codec = lengthPrefix(1);

/** `count` frames of 3 bytes each, as one chunk: frame i holds i, i + 1, i + 2. */
function frames(count: number): Uint8Array {
  const bytes = new Uint8Array(count * 4);
  for (let i = 0; i < count; i++) bytes.set([3, i, i + 1, i + 2], i * 4);
  return bytes;
}

type Kind = "Framer" | "BatchFramer";
type Item = Packet | Packet[];

function framer(kind: Kind, pool: BufferPool): ReadableWritablePair<Item, Uint8Array> {
  return kind === "Framer" ? new Framer(pool, { codec }) : new BatchFramer(pool, { codec });
}

function packetsOf(item: Item): Packet[] {
  return Array.isArray(item) ? item : [item];
}

/**
 * Feeds `chunks` to the framer's writable (its failure once the readable
 * ends is expected, so it is only caught), and returns when they were all
 * handed in.
 */
function feed(writable: WritableStream<Uint8Array>, chunks: Uint8Array[]): Promise<unknown> {
  const writer = writable.getWriter();
  for (const chunk of chunks) writer.write(chunk).catch(() => {});
  return writer.close().catch((e: unknown) => e);
}

for (const kind of ["Framer", "BatchFramer"] as const) {
  for (const bufferCount of [1, 2, 4]) {
    Deno.test(`${kind}, ${bufferCount} buffers: a destination that fails on what it was handed, unused, strands nothing`, async () => {
      for (const highWaterMark of [1, 3]) {
        for (const late of [false, true]) {
          const pool = new BufferPool({ bufferSize: 32, bufferCount });
          const { readable, writable } = framer(kind, pool);
          const fed = feed(writable, [frames(5), frames(3)]);
          // Late: the readable has started and a packet is ready as the pipe starts.
          if (late) await flush();
          const error = new Error("destination broke");
          const piped = readable.pipeTo(
            new WritableStream<Item>({
              write() {
                throw error;
              },
            }, { highWaterMark }),
          );
          await assert.rejects(piped, (e) => e === error);
          await fed;
          assertAllFree(pool);
        }
      }
    });
  }

  Deno.test(`${kind}: what the destination used stays its own; the rest is released when it fails`, async () => {
    const pool = new BufferPool({ bufferSize: 32, bufferCount: 4 });
    const { readable, writable } = framer(kind, pool);
    const fed = feed(writable, [frames(4), frames(4), frames(4)]);
    const kept: Packet[] = [];
    const error = new Error("full");
    let writes = 0;
    const piped = readable.pipeTo(
      new WritableStream<Item>({
        write(item) {
          if (++writes === 2) throw error;
          // Used: its bytes were read. The destination keeps it.
          for (const packet of packetsOf(item)) {
            assert.equal(packet.bytes.length, 3);
            kept.push(packet);
          }
        },
      }, { highWaterMark: 2 }),
    );
    await assert.rejects(piped, (e) => e === error);
    await fed;
    assert.ok(kept.length > 0);
    for (const packet of kept) {
      assert.equal(packet.released, false, "a packet the destination used was released");
      assert.deepEqual([...packet.bytes], [
        packet.bytes[0]!,
        packet.bytes[0]! + 1,
        packet.bytes[0]! + 2,
      ]);
      packet.release();
    }
    assertAllFree(pool);
  });

  Deno.test(`${kind}: pipeThrough a transform that throws strands nothing`, async () => {
    for (const bufferCount of [1, 3]) {
      const pool = new BufferPool({ bufferSize: 32, bufferCount });
      const { readable, writable } = framer(kind, pool);
      const fed = feed(writable, [frames(6)]);
      await flush();
      const error = new Error("transform broke");
      const out = readable.pipeThrough(
        new TransformStream<Item, number>({
          transform() {
            throw error;
          },
        }),
      );
      await assert.rejects(out.getReader().read(), (e) => e === error);
      await fed;
      // The pipe behind pipeThrough settles a few reactions after its
      // transform's readable errors (there is no promise of it to await).
      await flush();
      assertAllFree(pool);
    }
  });

  Deno.test(`${kind}: a pipe aborted while its destination holds what it was handed strands nothing`, async () => {
    const pool = new BufferPool({ bufferSize: 32, bufferCount: 2 });
    const { readable, writable } = framer(kind, pool);
    const fed = feed(writable, [frames(6)]);
    const controller = new AbortController();
    const writing = Promise.withResolvers<void>();
    const slow = Promise.withResolvers<void>();
    const piped = readable.pipeTo(
      new WritableStream<Item>({
        write() {
          writing.resolve();
          return slow.promise; // a destination slow on its first write, which it never uses
        },
      }, { highWaterMark: 2 }),
      { signal: controller.signal },
    );
    await writing.promise;
    controller.abort(new Error("gave up"));
    // An abort waits for the write in flight to end (the streams standard).
    slow.resolve();
    await assert.rejects(piped, /gave up/);
    await fed;
    assertAllFree(pool);
  });

  Deno.test(`${kind}: with preventCancel, a failed destination's packets are released and the readable reads on`, async () => {
    const pool = new BufferPool({ bufferSize: 32, bufferCount: 4 });
    const { readable, writable } = framer(kind, pool);
    const fed = feed(writable, [frames(2), frames(2)]);
    await flush();
    const error = new Error("destination broke");
    await assert.rejects(
      readable.pipeTo(
        new WritableStream<Item>({
          write() {
            throw error;
          },
        }),
        { preventCancel: true },
      ),
      (e) => e === error,
    );
    // The readable goes on: a reader gets the frames the pipe never took.
    const firsts: number[] = [];
    for await (const item of readable) {
      for (const packet of packetsOf(item)) {
        firsts.push(packet.bytes[0]!);
        packet.release();
      }
    }
    assert.ok(firsts.length > 0 && firsts.length < 4, `read ${firsts.length} frames`);
    assert.equal(await fed, undefined);
    assertAllFree(pool);
  });
}
