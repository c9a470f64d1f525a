/**
 * Fair sharing of a fixed number of slots (the CPU pool's threads) between owners (the jobs using them): at most
 * `slots` tasks run at once, the rest wait in a queue per owner, and when a slot frees, the owner that has used the
 * least slot time so far starts its oldest waiting task (a tie goes to the owner that arrived first).
 *
 * Time used, not turns: a job of 1 s steps next to jobs of 10 s pages gets as much thread time as each of them, not
 * one step per page. An owner's time counts its running tasks too. An owner that arrives (or comes back after having
 * nothing queued or running) starts level with the least-served owner present: it does not push everyone aside until
 * it has caught up with them, and time spent idle earns no credit. Owners with nothing queued or running are forgotten.
 */

interface Owner {
  /** Slot time of its finished tasks, in ms, counted from the level it arrived at. */
  used: number;
  /** When each of its running tasks started (performance.now()). */
  started: number[];
  /** Its tasks waiting for a slot, oldest first. */
  waiting: Waiting[];
}

interface Waiting {
  start(): void;
  cancel(error: Error): void;
}

export class FairShare {
  private readonly owners = new Map<string, Owner>();
  private running = 0;

  /**
   * @param slots how many tasks may run at once
   * @param aborted the error a task aborted while it waits rejects with (given the signal's reason)
   */
  constructor(
    private readonly slots: number,
    private readonly aborted: (reason: unknown) => Error,
  ) {}

  /**
   * Runs `task` when `owner` gets a slot and returns its result. A `signal` that aborts while the task waits drops it
   * from the queue and rejects at once; once the task runs, the signal is the task's business.
   */
  run<T>(owner: string, task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(this.aborted(signal.reason));
    const state = this.join(owner);
    return new Promise<T>((resolve, reject) => {
      const waiting: Waiting = {
        start: () => {
          signal?.removeEventListener('abort', drop);
          this.running++;
          const startedAt = performance.now();
          state.started.push(startedAt);
          const ended = () => {
            this.running--;
            state.started.splice(state.started.indexOf(startedAt), 1);
            state.used += performance.now() - startedAt;
            this.leaveIfIdle(owner, state);
            this.startNext();
          };
          Promise.resolve().then(task).finally(ended).then(resolve, reject);
        },
        cancel: (error) => {
          signal?.removeEventListener('abort', drop);
          reject(error);
        },
      };
      const drop = () => {
        state.waiting.splice(state.waiting.indexOf(waiting), 1);
        this.leaveIfIdle(owner, state);
        reject(this.aborted(signal?.reason));
      };
      if (this.running < this.slots) {
        waiting.start();
      } else {
        state.waiting.push(waiting);
        signal?.addEventListener('abort', drop, { once: true });
      }
    });
  }

  /** Rejects every waiting task with `error`; running ones end as their runner ends them. */
  close(error: Error): void {
    for (const [owner, state] of this.owners) {
      for (const waiting of state.waiting.splice(0)) waiting.cancel(error);
      this.leaveIfIdle(owner, state);
    }
  }

  /** Slot time `state` has used by `now`, its running tasks included. */
  private static timeUsed(state: Owner, now: number): number {
    return state.started.reduce((sum, startedAt) => sum + (now - startedAt), state.used);
  }

  private join(owner: string): Owner {
    let state = this.owners.get(owner);
    if (!state) {
      const now = performance.now();
      const levels = [...this.owners.values()].map((other) => FairShare.timeUsed(other, now));
      state = { used: levels.length ? Math.min(...levels) : 0, started: [], waiting: [] };
      this.owners.set(owner, state);
    }
    return state;
  }

  private leaveIfIdle(owner: string, state: Owner): void {
    if (!state.started.length && !state.waiting.length) this.owners.delete(owner);
  }

  private startNext(): void {
    while (this.running < this.slots) {
      const now = performance.now();
      let next: Owner | undefined;
      let least = Infinity;
      // Map order is arrival order, so a tie goes to the owner that came first.
      for (const state of this.owners.values()) {
        if (!state.waiting.length) continue;
        const used = FairShare.timeUsed(state, now);
        if (used < least) [next, least] = [state, used];
      }
      const waiting = next?.waiting.shift();
      if (!waiting) return;
      waiting.start();
    }
  }
}
