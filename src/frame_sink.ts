/**
 * {@linkcode FrameSink}: a `WritableStream` of bytes that cuts them into
 * frames and visits each in place, for `conn.readable.pipeTo(...)`.
 *
 * @module
 */

import type { BufferPool } from "./buffer_pool.ts";
import { ClosedError } from "./errors.ts";
import { FrameCutter, type FrameVisitor } from "./frame_cutter.ts";
import type { FrameCutterOptions } from "./frame_cutter_options.ts";

/**
 * Options for {@linkcode FrameSink}: the codec, the longest payload and what
 * an unfinished last frame means, as for {@linkcode FrameCutter}; the
 * visitor; and a signal to stop it.
 *
 * @example A sink that gives up after a second
 * ```ts
 * import { BufferPool, type FrameSinkOptions, FrameSink, lengthPrefix } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * let bytes = 0;
 * const options: FrameSinkOptions = {
 *   codec: lengthPrefix(2),
 *   maxFrameLength: 1000,
 *   signal: AbortSignal.timeout(1000),
 *   visit: (_bytes, start, end) => {
 *     bytes += end - start;
 *   },
 * };
 * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 1 });
 * await ReadableStream.from([new Uint8Array([0, 3, 1, 2, 3])]).pipeTo(new FrameSink(pool, options));
 * assert.equal(bytes, 3);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export interface FrameSinkOptions extends FrameCutterOptions {
  /** Called with each frame, in stream order (see {@linkcode FrameVisitor}). */
  visit: FrameVisitor;
  /**
   * Stops the sink wherever it is: the stream errors with the signal's
   * reason, a wait for a pool buffer is given up, and the staging buffer is
   * released. A pipe's own `signal` cannot stop a write in progress (the
   * pipe lets it finish first), and a write waits for buffers when retained
   * packets pin them all.
   */
  signal?: AbortSignal;
}

/**
 * A `WritableStream<Uint8Array>` that stages the bytes written to it in
 * pool memory, cuts them into frames with a {@linkcode FrameCodec}, and
 * calls `options.visit` with each frame in place (see
 * {@linkcode FrameVisitor}): no packet, view, array or stream chunk is made
 * per frame, and only the frames the visitor
 * {@linkcode FrameCutter.retain}s become packets. It is a
 * `WritableStream`, so `readable.pipeTo(sink)` takes it directly; the
 * pipe's promise settles when the sink is done.
 *
 * Closing it checks that the input ended on a frame boundary: otherwise it
 * errors with a {@linkcode TruncatedError} (with `allowPartial`, the
 * unfinished frame is visited instead). Bytes that break the framing error
 * it with a {@linkcode FrameError}, after the frames before the bad one
 * were visited; a visitor that throws errors it with that error. On any
 * error, abort or close, the staging buffer goes back to the pool; retained
 * packets are the caller's. To stop from the visitor, throw, or abort a
 * controller whose signal was passed as `signal`; closing the cutter from
 * the visitor errors the sink with a {@linkcode ClosedError}.
 *
 * Each input chunk is copied once into the staging buffer. When the chunks
 * come from `conn.readable`, reading with {@linkcode visitFrames} instead
 * saves that copy and the 64 KiB chunk the stream makes per read.
 *
 * One pool buffer is enough when the visitor retains nothing. Retained
 * packets pin their buffers; if they pin them all, a write waits for a
 * release, or until `signal` aborts.
 *
 * @example Summing the lengths of newline-delimited lines
 * ```ts
 * import { BufferPool, delimiter, FrameSink } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 1 });
 * const encoder = new TextEncoder();
 * const input = ReadableStream.from(["ab\ncd", "e\n\nf", "gh\n"].map((s) => encoder.encode(s)));
 * const lengths: number[] = [];
 * await input.pipeTo(
 *   new FrameSink(pool, {
 *     codec: delimiter("\n"),
 *     visit: (_bytes, start, end) => lengths.push(end - start),
 *   }),
 * );
 * assert.deepEqual(lengths, [2, 3, 0, 3]);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 *
 * @example Frames from a TCP connection, keeping the ones that start with 1
 * ```ts
 * import { BufferPool, FrameSink, lengthPrefix, type Packet } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 4 });
 * const codec = lengthPrefix(2);
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const server = await listener.accept();
 * for (const payload of [[1, 2], [3, 4], [1, 5, 6]]) {
 *   await client.write(codec.encode(new Uint8Array(payload)));
 * }
 * client.close();
 *
 * const kept: Packet[] = [];
 * await server.readable.pipeTo(
 *   new FrameSink(pool, {
 *     codec,
 *     visit(bytes, start, _end, cutter) {
 *       if (bytes[start] === 1) kept.push(cutter.retain());
 *     },
 *   }),
 * );
 * listener.close();
 * assert.deepEqual(kept.map((p) => [...p.bytes]), [[1, 2], [1, 5, 6]]);
 * for (const packet of kept) packet.release();
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class FrameSink extends WritableStream<Uint8Array> {
  /**
   * Makes the sink.
   *
   * @param pool Where staging buffers come from.
   * @param options The codec and the visitor, and optionally
   * `maxFrameLength`, `allowPartial` and a `signal`.
   * @throws {RangeError} If `maxFrameLength` does not fit the pool's buffers
   * (see {@linkcode FrameCutter}).
   */
  constructor(pool: BufferPool, options: FrameSinkOptions) {
    const cutter = new FrameCutter(pool, options);
    const visit = options.visit;
    const signal = options.signal;
    // Gives up a wait for a buffer on the caller's signal or the stream's abort.
    const stop = new AbortController();
    const acquireOptions = { signal: stop.signal };
    let controller!: WritableStreamDefaultController;

    function shutDown(reason: unknown): void {
      signal?.removeEventListener("abort", onAbort);
      cutter.close();
      stop.abort(reason);
    }

    function onAbort(): void {
      const reason: unknown = signal!.reason;
      shutDown(reason);
      controller.error(reason);
    }

    /** Pushes the rest of a chunk, waiting for buffers as retained packets are released. */
    async function pushSlowly(chunk: Uint8Array, taken: number): Promise<void> {
      while (taken < chunk.length) {
        await cutter.waitForBuffer(acquireOptions);
        taken += cutter.push(chunk.subarray(taken), visit);
        if (cutter.closed) throw visitorClosed();
      }
    }

    super({
      start(c) {
        controller = c;
        // Fires at once on abort(), even while a write waits for a buffer,
        // which the sink's own abort() would not be called before.
        c.signal.addEventListener("abort", () => shutDown(c.signal.reason), { once: true });
        if (signal === undefined) return;
        if (signal.aborted) onAbort();
        else signal.addEventListener("abort", onAbort, { once: true });
      },
      write(chunk) {
        let taken: number;
        try {
          taken = cutter.push(chunk, visit);
          if (cutter.closed) throw visitorClosed();
        } catch (error) {
          shutDown(error);
          throw error;
        }
        if (taken === chunk.length) return;
        return pushSlowly(chunk, taken).catch((error: unknown) => {
          shutDown(error);
          throw error;
        });
      },
      close() {
        try {
          cutter.end(visit);
        } finally {
          shutDown(undefined);
        }
      },
      abort(reason) {
        // Already done by the controller's signal; kept for runtimes without it.
        shutDown(reason);
      },
    });
  }
}

/** The sink's error when its visitor closed the cutter, which it cannot reopen. */
function visitorClosed(): ClosedError {
  return new ClosedError(
    "Cannot write to the frame sink: its visitor closed the frame cutter; to stop a sink, throw from the visitor or abort its signal",
  );
}
