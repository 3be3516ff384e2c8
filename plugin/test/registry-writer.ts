// Adds <count> entries to the registry at <path>, one locked write each, with share ids
// "<prefix>-0000", "<prefix>-0001", ...: the TypeScript half of the concurrent-writers tests.
//
//   bun test/registry-writer.ts <path> <count> <prefix>
//
// Exits 0 when every write succeeded, 1 (with the error on stderr) otherwise.

import { updateRegistry, upsertEntry } from "../src/registry.ts";

const [path, countText, prefix] = process.argv.slice(2);
const count = Number.parseInt(countText ?? "", 10);
if (path === undefined || prefix === undefined || !Number.isInteger(count) || count < 0) {
  console.error("usage: registry-writer.ts <path> <count> <prefix>");
  process.exit(2);
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
}
