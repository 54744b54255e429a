// main.ts: one shared pool, a worker attached to it, a packet handed over without a copy.
import { BufferPool } from "@bab/bab";

const pool = new BufferPool({ bufferSize: 8192, bufferCount: 64, shared: true });
const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
const reply = new Promise<string>((resolve) => worker.onmessage = ({ data }) => resolve(data));
worker.postMessage({ pool: pool.handle }); // plain data: a SharedArrayBuffer

const buffer = await pool.acquire();
buffer.bytes.set([1, 2, 3]);
worker.postMessage({ packet: buffer.intoPacket(0, 3).send() }); // a SendPacket, no copy

console.log(await reply); // "worker got 1,2,3"
worker.terminate();
console.log("buffers in use:", pool.stats().inUse); // 0: the worker released the packet
