// An echo server that frames its connections: each newline-ended line a
// client sends is cut out of the TCP stream as a Packet on pool memory and
// written back, uppercased, through a Writer and WriteFlusher piped to the
// same connection. A client in the same process sends lines and checks the
// echoes through a BatchFramer of its own.
//
//   deno run --allow-net=127.0.0.1 examples/framer_tcp.ts [--lines N]

import { parseArgs } from "node:util";
import { BatchFramer, BufferPool, delimiter, readFrames, WriteFlusher, Writer } from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { lines: { type: "string", default: "10000" } },
});
const lines = Number(values.lines);
if (!Number.isInteger(lines) || lines < 1) {
  console.error("Usage: examples/framer_tcp.ts [--lines N >= 1]");
  Deno.exit(2);
}

const pool = new BufferPool({ bufferSize: 16 * 1024, bufferCount: 32 });
const codec = delimiter("\n");

/** Serves one connection: frames in, uppercased frames out. */
async function serve(conn: Deno.Conn): Promise<void> {
  const flusher = new WriteFlusher(pool);
  const writing = flusher.pipeTo(conn);
  const writer = new Writer(pool, flusher, { codec });
  // readFrames reads with conn.read straight into pool memory; unlike
  // conn.readable, reaching the end does not close the connection under the
  // replies still being written.
  for await (const batch of readFrames(conn, pool, { codec })) {
    for (const packet of batch) {
      const line = packet.bytes;
      const reservation = await writer.reserve(line.length);
      const out = reservation.bytes;
      // ASCII uppercase, written straight into the reply's pool memory.
      for (let i = 0; i < line.length; i++) {
        out[i] = line[i]! >= 97 && line[i]! <= 122 ? line[i]! - 32 : line[i]!;
      }
      reservation.commit();
      packet.release();
    }
  }
  writer.close();
  flusher.close();
  await writing;
  conn.close();
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const server = listener.accept().then(serve);

const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
const sending = (async () => {
  const encoder = new TextEncoder();
  for (let i = 0; i < lines; i += 100) {
    let chunk = "";
    for (let j = i; j < Math.min(i + 100, lines); j++) chunk += `line number ${j}\n`;
    await client.write(encoder.encode(chunk));
  }
  await client.closeWrite();
})();

let echoed = 0;
const decoder = new TextDecoder();
for await (const batch of client.readable.pipeThrough(new BatchFramer(pool, { codec }))) {
  for (const packet of batch) {
    const text = decoder.decode(packet.bytes);
    packet.release();
    if (text !== `LINE NUMBER ${echoed}`) {
      throw new Error(`echo ${echoed} came back as ${JSON.stringify(text)}`);
    }
    echoed++;
  }
}
await sending;
await server;
listener.close();
const { inUse } = pool.stats();
console.log(`${echoed} lines framed, echoed and checked; pool in use: ${inUse}`);
if (echoed !== lines || inUse !== 0) {
  console.error(`FAILED: ${echoed} of ${lines} echoed, ${inUse} buffers in use`);
  Deno.exit(1);
}
