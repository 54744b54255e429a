/**
 * {@linkcode SendPacket}: a packet on its way to another worker.
 *
 * @module
 */

/**
 * A {@linkcode Packet} on its way to another worker, made by
 * {@linkcode Packet.send}. It is plain data: post it with `postMessage`
 * (alone or in an array, which is how batches go cheaply) and turn it back
 * into a packet on the same memory, with no copy, by calling
 * {@linkcode BufferPool.receive} on the receiving worker's attached pool.
 *
 * It holds a reference to its buffer until it is received, and can be
 * received once: a second receive, in any worker, throws a
 * {@linkcode ReleasedError}.
 *
 * @example Handing a packet to another worker's pool
 * ```ts
 * import { BufferPool } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 64, shared: true });
 * // Usually in a worker, after `worker.postMessage(pool.handle)`:
 * const there = BufferPool.attach(pool.handle);
 *
 * const buffer = pool.tryAcquire()!;
 * buffer.bytes.set([1, 2, 3]);
 * const sent = buffer.intoPacket(0, 3).send(); // plain data, for postMessage
 *
 * using packet = there.receive(structuredClone(sent));
 * assert.deepEqual([...packet.bytes], [1, 2, 3]); // same memory, no copy
 * assert.throws(() => there.receive(sent)); // received once only
 * ```
 */
export interface SendPacket {
  /** The id of the pool the packet belongs to. */
  readonly pool: number;
  /** The buffer's index in the pool. */
  readonly index: number;
  /** Offset of the packet's first byte in the buffer. */
  readonly offset: number;
  /** The packet's length in bytes. */
  readonly length: number;
  /** The send ticket that records whether it was received. */
  readonly ticket: number;
  /** The value the ticket holds while this packet is in flight. */
  readonly stamp: number;
}

/**
 * Many packets on their way to another worker, made by
 * {@linkcode BufferPool.sendBatch}: the regions sit in one `Int32Array`
 * (buffer index, offset, length per packet), so one `postMessage` carries a
 * thousand packets for about the price of one. Received once, with
 * {@linkcode BufferPool.receiveBatch}; a second receive throws a
 * {@linkcode ReleasedError}.
 *
 * @example Sending a batch
 * ```ts
 * import { BufferPool, type Packet } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 64, shared: true });
 * const there = BufferPool.attach(pool.handle); // usually in another worker
 *
 * const buffer = pool.tryAcquire()!;
 * const packets: Packet[] = [];
 * for (let i = 0; i < 100; i++) {
 *   buffer.bytes[i * 8] = i;
 *   packets.push(buffer.toPacket(i * 8, i * 8 + 8));
 * }
 * buffer.release();
 * const batch = pool.sendBatch(packets); // post it: `worker.postMessage(batch)`
 *
 * const received = there.receiveBatch(structuredClone(batch));
 * assert.deepEqual(received.map((p) => p.bytes[0]), packets.map((_, i) => i));
 * for (const packet of received) packet.release();
 * there.detach();
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export interface SendBatch {
  /** The id of the pool the packets belong to. */
  readonly pool: number;
  /** The send ticket that records whether the batch was received. */
  readonly ticket: number;
  /** The value the ticket holds while the batch is in flight. */
  readonly stamp: number;
  /** Buffer index, offset and length of each packet, in order. */
  readonly regions: Int32Array;
}
