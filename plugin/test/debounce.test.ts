// The debouncer on fake timers: every trigger, timer and run happens at a known millisecond, so
// the counts and times below are exact whatever the machine's speed.

import { afterEach, beforeEach, describe, expect, jest, test } from "bun:test";
import { Debouncer } from "../src/debounce.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Moves the fake clock on by `ms`, one millisecond at a time, letting promise callbacks run. */
async function advance(ms: number): Promise<void> {
  for (let i = 0; i < ms; i++) {
    jest.advanceTimersByTime(1);
    for (let k = 0; k < 20; k++) await Promise.resolve();
  }
}

let t0 = 0;
beforeEach(() => {
  jest.useFakeTimers();
  t0 = Date.now();
});
afterEach(() => {
  jest.useRealTimers();
});
const now = () => Date.now() - t0;

describe("Debouncer", () => {
  test("a burst of 100 triggers gives a few runs, not 100", async () => {
    const runs: number[] = [];
    const d = new Debouncer(async () => {
      runs.push(now());
      await sleep(5);
    }, { waitMs: 50, maxWaitMs: 150 });
    // One trigger every 5 ms for 500 ms: the timer never gets its 50 quiet ms, so only the
    // 150 ms cap starts runs, and one last run follows the burst.
    for (let i = 0; i < 100; i++) {
      d.trigger("ses");
      await advance(5);
    }
    const lastTrigger = 495;
    await advance(1_000);
    expect(d.pending("ses")).toBe(false);
    expect(runs.length).toBe(4);
    // Each run of the burst is at most 150 ms after the burst (or the previous run) began...
    expect(runs[0]).toBe(150);
    for (let i = 1; i < runs.length; i++) expect(runs[i]! - runs[i - 1]!).toBeLessThanOrEqual(150 + 5);
    // ...and the last one starts 50 quiet ms after the last trigger, so no change is left behind.
    expect(runs.at(-1)).toBe(lastTrigger + 50);
  });

  test("a quiet key runs once, after the wait", async () => {
    let runs = 0;
    const d = new Debouncer(async () => {
      runs++;
    }, { waitMs: 30, maxWaitMs: 1_000 });
    d.trigger("a");
    d.trigger("a");
    d.trigger("a");
    await advance(29);
    expect(runs).toBe(0);
    await advance(1);
    expect(runs).toBe(1);
    await advance(1_000);
    expect(runs).toBe(1);
  });

  test("keys are independent", async () => {
    const seen: string[] = [];
    const d = new Debouncer(async (k) => {
      seen.push(`${k}@${now()}`);
    }, { waitMs: 10, maxWaitMs: 100 });
    d.trigger("a");
    await advance(5);
    d.trigger("b");
    await advance(100);
    expect(seen).toEqual(["a@10", "b@15"]);
  });

  test("runs of one key never overlap, and a change during a run is not lost", async () => {
    let active = 0;
    let maxActive = 0;
    const runs: number[] = [];
    const d = new Debouncer(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs.push(now());
      await sleep(60);
      active--;
    }, { waitMs: 10, maxWaitMs: 50 });
    d.trigger("s");
    await advance(30); // the first run (from 10 ms to 70 ms) is in progress now
    expect(runs).toEqual([10]);
    d.trigger("s");
    d.trigger("s");
    await advance(500);
    expect(maxActive).toBe(1);
    // The second run waits for the first to end (70 ms), then its own 10 ms.
    expect(runs).toEqual([10, 80]);
  });

  test("a failing run does not stop later runs", async () => {
    let calls = 0;
    const d = new Debouncer(async () => {
      calls++;
      throw new Error("server down");
    }, { waitMs: 5, maxWaitMs: 20 });
    d.trigger("s");
    await advance(10);
    expect(calls).toBe(1);
    d.trigger("s");
    await advance(10);
    expect(calls).toBe(2);
    expect(d.pending("s")).toBe(false);
  });

  test("idle runs what is pending at once", async () => {
    let runs = 0;
    const d = new Debouncer(async () => {
      runs++;
    }, { waitMs: 60_000, maxWaitMs: 60_000 });
    d.trigger("s");
    await d.idle();
    expect(runs).toBe(1);
  });

  test("dispose cancels what is scheduled", async () => {
    let runs = 0;
    const d = new Debouncer(async () => {
      runs++;
    }, { waitMs: 20, maxWaitMs: 100 });
    d.trigger("s");
    d.dispose();
    await advance(50);
    d.trigger("s");
    await advance(200);
    expect(runs).toBe(0);
  });
});
