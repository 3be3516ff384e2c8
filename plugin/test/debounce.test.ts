import { describe, expect, test } from "bun:test";
import { Debouncer } from "../src/debounce.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Debouncer", () => {
  test("a burst of 100 triggers gives a few runs, not 100", async () => {
    const runs: number[] = [];
    const d = new Debouncer(async () => {
      runs.push(Date.now());
      await sleep(5);
    }, { waitMs: 50, maxWaitMs: 150 });
    for (let i = 0; i < 100; i++) {
      d.trigger("ses");
      await sleep(5);
    }
    await d.idle();
    // 100 triggers over ~500 ms with at most 150 ms between runs: a handful, and at least one.
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs.length).toBeLessThanOrEqual(8);
  });

  test("a quiet key runs once, after the wait", async () => {
    let runs = 0;
    const d = new Debouncer(async () => {
      runs++;
    }, { waitMs: 30, maxWaitMs: 1_000 });
    d.trigger("a");
    d.trigger("a");
    d.trigger("a");
    expect(runs).toBe(0);
    await sleep(80);
    expect(runs).toBe(1);
  });

  test("keys are independent", async () => {
    const seen: string[] = [];
    const d = new Debouncer(async (k) => {
      seen.push(k);
    }, { waitMs: 10, maxWaitMs: 100 });
    d.trigger("a");
    d.trigger("b");
    await d.idle();
    expect(seen.sort()).toEqual(["a", "b"]);
  });

  test("runs of one key never overlap, and a change during a run is not lost", async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const d = new Debouncer(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs++;
      await sleep(60);
      active--;
    }, { waitMs: 10, maxWaitMs: 50 });
    d.trigger("s");
    await sleep(30); // the first run is in progress now
    d.trigger("s");
    d.trigger("s");
    await d.idle();
    expect(maxActive).toBe(1);
    expect(runs).toBe(2);
  });

  test("a failing run does not stop later runs", async () => {
    let calls = 0;
    const d = new Debouncer(async () => {
      calls++;
      throw new Error("server down");
    }, { waitMs: 5, maxWaitMs: 20 });
    d.trigger("s");
    await d.idle();
    d.trigger("s");
    await d.idle();
    expect(calls).toBe(2);
  });

  test("dispose cancels what is scheduled", async () => {
    let runs = 0;
    const d = new Debouncer(async () => {
      runs++;
    }, { waitMs: 20, maxWaitMs: 100 });
    d.trigger("s");
    d.dispose();
    await sleep(50);
    d.trigger("s");
    await sleep(50);
    expect(runs).toBe(0);
  });
});
