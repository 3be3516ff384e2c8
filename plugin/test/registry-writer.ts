// Adds <count> entries to the registry at <path>, one locked write each, with share ids
// "<prefix>-0000", "<prefix>-0001", ...: the TypeScript half of the concurrent-writers tests.
//
//   bun test/registry-writer.ts <path> <count> <prefix> [<barrier dir>]
//
// With a barrier directory, the writer creates `<dir>/<prefix>.ready` and starts only once
// `<dir>/go` exists, so that both writers of a test start together; it then pauses 2 ms between
// writes, so the other writer gets the lock between two of its writes.
// Exits 0 when every write succeeded, 1 (with the error on stderr) otherwise.

import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { updateRegistry, upsertEntry } from "../src/registry.ts";

const [path, countText, prefix, barrier] = process.argv.slice(2);
const count = Number.parseInt(countText ?? "", 10);
if (path === undefined || prefix === undefined || !Number.isInteger(count) || count < 0) {
  console.error("usage: registry-writer.ts <path> <count> <prefix> [<barrier dir>]");
  process.exit(2);
}

if (barrier !== undefined) {
  writeFileSync(join(barrier, `${prefix}.ready`), "");
  const deadline = Date.now() + 60_000;
  while (!existsSync(join(barrier, "go"))) {
    if (Date.now() > deadline) {
      console.error("the other writer never said go");
      process.exit(1);
    }
    await Bun.sleep(1);
  }
}

for (let i = 0; i < count; i++) {
  const now = Date.now();
  const shareId = `${prefix}-${String(i).padStart(4, "0")}`;
  await updateRegistry(path, (file) =>
    upsertEntry(file, {
      shareId,
      sessionId: `ses_${prefix}_${i}`,
      secret: `secret-${shareId}`,
      url: `http://127.0.0.1:8080/share/${shareId}`,
      server: "http://127.0.0.1:8080",
      title: `${prefix} ${i}`,
      createdAt: now,
      updatedAt: now,
    }),
  );
  if (barrier !== undefined) await Bun.sleep(2);
}
