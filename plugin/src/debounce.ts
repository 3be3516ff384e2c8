// Debouncing per key (one key per session): a stream of change events turns into a few runs.
//
// A run starts `waitMs` after the last trigger, but never later than `maxWaitMs` after the first
// trigger of a burst, so a session that streams for minutes still gets uploaded now and then.
// Runs of one key never overlap: a trigger during a run schedules one more run after it.

export interface DebounceOptions {
  waitMs: number;
  maxWaitMs: number;
}

interface KeyState {
  timer: ReturnType<typeof setTimeout> | undefined;
  firstTrigger: number;
  running: Promise<void> | undefined;
  dirty: boolean;
}

export class Debouncer {
  private readonly states = new Map<string, KeyState>();
  private disposed = false;

  constructor(
    private readonly run: (key: string) => Promise<void>,
    private readonly options: DebounceOptions,
  ) {}

  trigger(key: string): void {
    if (this.disposed) return;
    let state = this.states.get(key);
    if (state === undefined) {
      state = { timer: undefined, firstTrigger: Date.now(), running: undefined, dirty: false };
      this.states.set(key, state);
    }
    if (state.running !== undefined) {
      state.dirty = true;
      return;
    }
    if (state.timer === undefined) state.firstTrigger = Date.now();
    else clearTimeout(state.timer);
    const due = Math.min(Date.now() + this.options.waitMs, state.firstTrigger + this.options.maxWaitMs);
    state.timer = setTimeout(() => this.fire(key), Math.max(0, due - Date.now()));
  }

  /** Runs a pending key now (or waits for its current run); resolves when it is done. */
  async flush(key: string): Promise<void> {
    const state = this.states.get(key);
    if (state === undefined) return;
    if (state.timer !== undefined) {
      clearTimeout(state.timer);
      state.timer = undefined;
      this.fire(key);
    }
    while (state.running !== undefined) await state.running;
  }

  /** Whether anything is scheduled or running for the key. */
  pending(key: string): boolean {
    const state = this.states.get(key);
    return state !== undefined && (state.timer !== undefined || state.running !== undefined);
  }

  /** Waits until no key has a timer or a run. */
  async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.states.keys()].filter((k) => this.pending(k));
      if (busy.length === 0) return;
      await Promise.all(busy.map((k) => this.flush(k)));
    }
  }

  dispose(): void {
    this.disposed = true;
    for (const state of this.states.values()) {
      if (state.timer !== undefined) clearTimeout(state.timer);
      state.timer = undefined;
    }
  }

  private fire(key: string): void {
    const state = this.states.get(key);
    if (state === undefined) return;
    state.timer = undefined;
    state.dirty = false;
    state.running = this.run(key)
      .catch(() => {
        // `run` reports its own failures; a rejection must not end the debouncer.
      })
      .finally(() => {
        state.running = undefined;
        if (state.dirty && !this.disposed) {
          state.dirty = false;
          this.trigger(key);
        } else if (state.timer === undefined) {
          this.states.delete(key);
        }
      });
  }
}
