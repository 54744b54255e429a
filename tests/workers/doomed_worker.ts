// A worker that takes a share of everything and then waits to be killed:
// buffers held, a warm cache, a received packet kept, a packet sent back,
// and a writer with bytes flushed and a reservation left open. The main
// thread terminates it and reclaims what it held.
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import {
  BufferPool,
  type BufferPoolHandle,
  type Packet,
  type PooledBuffer,
  type Reservation,
  type SendPacket,
  type WriteFlusherHandle,
  Writer,
} from "../../mod.ts";

export interface DoomedJob {
  pool: BufferPoolHandle;
  flusher: WriteFlusherHandle;
  packet: SendPacket;
}

export interface DoomedReport {
  workerId: number;
  sentBack: SendPacket;
  inUseSeen: number;
}

// Kept reachable until the worker is terminated.
const kept: (PooledBuffer | Packet | Reservation | Writer)[] = [];

self.onmessage = ({ data: job }: MessageEvent<DoomedJob>) => {
  const pool = BufferPool.attach(job.pool);
  for (let i = 0; i < 3; i++) kept.push(pool.tryAcquire()!);
  const warm = [pool.tryAcquire()!, pool.tryAcquire()!];
  for (const buffer of warm) buffer.release(); // now in this worker's cache
  const received = pool.receive(job.packet);
  kept.push(received, received.clone());
  const back = pool.tryAcquire()!.intoPacket(0, 4);
  kept.push(back.clone());
  const sentBack = back.send();
  const writer = new Writer(pool, job.flusher, { flush: "manual" });
  writer.tryWrite(new Uint8Array([1, 2, 3]));
  writer.flush();
  kept.push(writer, writer.tryReserve(5)!);
  self.postMessage(
    { workerId: pool.workerId, sentBack, inUseSeen: pool.stats().inUse } satisfies DoomedReport,
  );
};
