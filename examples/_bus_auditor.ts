// The auditor of the demo bus (with --audit): receives batches of packets
// the server kept with cutter.retain() and sent with sendBatch, checks each
// one's bytes where the server's reader left them (no copy), and releases it.
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import { BufferPool, type BufferPoolHandle, type SendBatch } from "../mod.ts";
import { damage } from "./_bus_message.ts";

export type AuditorReport = { audited: number } | { error: string };

self.onmessage = ({ data: handle, ports: [port] }: MessageEvent<BufferPoolHandle>) => {
  const pool = BufferPool.attach(handle);
  let audited = 0;
  let failure: string | undefined;
  port!.onmessage = ({ data: batch }: MessageEvent<SendBatch | null>) => {
    if (batch === null) {
      pool.detach();
      self.postMessage(
        (failure === undefined ? { audited } : { error: failure }) satisfies AuditorReport,
      );
      return;
    }
    for (const packet of pool.receiveBatch(batch)) {
      const bytes = packet.bytes;
      failure ??= damage(new DataView(bytes.buffer, bytes.byteOffset), 0, bytes.length);
      audited++;
      packet.release();
    }
  };
};
