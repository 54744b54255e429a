// The shared writer's publishing steps on a bare block: a flush that finds
// another worker publishing leaves a note that makes the holder offer the
// open buffer too, whatever the holder itself was publishing for.
import assert from "node:assert/strict";
import {
  claim,
  commitRowWord,
  initBlock,
  install,
  sharedWriterWords,
  slotOf,
} from "../src/_shared_writer_block.ts";
import { commit, useRow } from "../src/_shared_commit_counts.ts";
import { collect, lockPublish, unlockPublish } from "../src/_shared_writer_publish.ts";
import { computeLayout, headerWord } from "../src/_layout.ts";

/** A block of 2 workers with buffer 0 open and `bytes` claimed and committed by worker 0. */
function openBuffer(bytes: number): Int32Array {
  const sw = new Int32Array(sharedWriterWords(2, 32));
  initBlock(sw, 1, 7, 64, 2, 0, 32);
  useRow(sw, 0);
  useRow(sw, 1);
  const layout = computeLayout(64, 1, 1, 2, 0);
  const pool = new Int32Array(layout.blockBytes / 4);
  install(sw, pool, headerWord(layout, 0), 0, 1);
  const cursor = claim(sw, bytes, 64, true);
  commit(sw, commitRowWord(sw, 0), slotOf(sw, cursor), bytes, true);
  return sw;
}

function offers(sw: Int32Array, open: boolean): [number, number][] {
  const out: [number, number][] = [];
  collect(sw, open, (index, value) => out.push([index, value]));
  return out;
}

Deno.test("shared writer publishing: whole-buffer rounds leave the open buffer alone", () => {
  const sw = openBuffer(10);
  assert.deepEqual(offers(sw, false), []);
  assert.deepEqual(offers(sw, true), [[0, 10]]);
});

Deno.test("shared writer publishing: a flush that finds the lock taken has the holder offer the open buffer", () => {
  const sw = openBuffer(10);
  // Worker 0 publishes whole buffers; worker 1 flushes meanwhile.
  assert.ok(lockPublish(sw, 1, false));
  assert.equal(lockPublish(sw, 2, true), false);
  // A later note for whole buffers must not hide the flush's.
  assert.equal(lockPublish(sw, 2, false), false);
  assert.deepEqual(offers(sw, false), [[0, 10]]);
  assert.equal(unlockPublish(sw, 1), false);
});

Deno.test("shared writer publishing: a note left during a round sends the holder round again", () => {
  const sw = openBuffer(10);
  assert.ok(lockPublish(sw, 1, false));
  assert.deepEqual(offers(sw, false), []);
  assert.equal(lockPublish(sw, 2, true), false);
  assert.ok(unlockPublish(sw, 1));
  assert.deepEqual(offers(sw, false), [[0, 10]]);
  assert.equal(unlockPublish(sw, 1), false);
});
