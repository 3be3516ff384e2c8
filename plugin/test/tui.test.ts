import { expect, test } from "bun:test";
import plugin from "../src/tui.ts";
import { FakeOpencode, type Toast } from "./support.ts";

function api(extra: Record<string, unknown>) {
  const toasts: Toast[] = [];
  const disposers: Array<() => unknown> = [];
  const value = {
    client: new FakeOpencode().v2client,
    route: { current: { name: "home" } },
    ui: { toast: (t: Toast) => void toasts.push(t) },
    lifecycle: { onDispose: (fn: () => unknown) => (disposers.push(fn), () => undefined) },
    ...extra,
  };
  return { value, toasts, disposers };
}

test("the TUI module is { id, tui } and registers its commands through the keymap", async () => {
  expect(plugin.id).toBe("bshare");
  let layer: { commands: Array<{ slashName: string; namespace: string }> } | undefined;
  let removed = false;
  const a = api({
    keymap: {
      registerLayer: (l: typeof layer) => {
        layer = l;
        return () => {
          removed = true;
        };
      },
    },
  });
  await plugin.tui(a.value as never, undefined, {} as never);
  expect(layer?.commands.map((c) => [c.namespace, c.slashName])).toEqual([
    ["palette", "bshare-share"],
    ["palette", "bshare-unshare"],
  ]);
  expect(a.toasts).toEqual([]);
  for (const d of a.disposers) await d();
  expect(removed).toBe(true);
});

test("a TUI with no way to add commands gets a toast pointing to the agent tools", async () => {
  const a = api({});
  await plugin.tui(a.value as never, undefined, {} as never);
  expect(a.toasts).toHaveLength(1);
  expect(a.toasts[0]?.variant).toBe("warning");
  expect(a.toasts[0]?.message).toContain("bshare_share");
});
