// worker.ts: attaches to the pool and reads the packet where main wrote it.
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import { BufferPool, type BufferPoolHandle, type SendPacket } from "@bab/bab";

let pool: BufferPool;
self.onmessage = ({ data }: MessageEvent<{ pool?: BufferPoolHandle; packet?: SendPacket }>) => {
  if (data.pool) pool = BufferPool.attach(data.pool); // its own cache, the same memory
  if (data.packet) {
    const packet = pool.receive(data.packet); // the bytes main wrote, where main wrote them
    const text = `worker got ${packet.bytes.join(",")}`;
    packet.release(); // the buffer is free again, for any worker
    pool.detach(); // gives this worker's cache back
    self.postMessage(text);
  }
};
