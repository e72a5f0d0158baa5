import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { GroupCommit, type GroupCommitOptions } from "../../src/store/group-commit.js";
import { DEFAULT_WRITE_RETRY, writeRetryDelayMs } from "../../src/store/write-retry-policy.js";

/** A write the test finishes by hand: each batch waits until `release()` or `fail()`. */
interface HeldBatch<T> {
  readonly items: ReadonlyArray<T>;
  release(): void;
  fail(error: unknown): void;
}

/** A writer whose batches are held until the test releases them, recording every attempt. */
function heldWriter<T>() {
  const attempts: HeldBatch<T>[] = [];
  const written: T[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let arrived: (() => void) | undefined;
  const write = (batch: ReadonlyArray<T>) =>
    new Promise<void>((resolve, reject) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      attempts.push({
        items: [...batch],
        release: () => {
          inFlight -= 1;
          written.push([...batch]);
          resolve();
        },
        fail: (error) => {
          inFlight -= 1;
          reject(error);
        },
      });
      arrived?.();
    });
  return {
    write,
    attempts,
    written,
    get maxInFlight() {
      return maxInFlight;
    },
    /** Resolves once `n` attempts have started. */
    async attemptsStarted(n: number): Promise<void> {
      while (attempts.length < n) await new Promise<void>((r) => (arrived = r));
    },
  };
}

/** A writer that writes at once, failing while `failing` is set. */
function instantWriter<T>() {
  const state = { failing: false as boolean, calls: 0, written: [] as T[][] };
  const write = async (batch: ReadonlyArray<T>) => {
    state.calls += 1;
    if (state.failing) throw new Error("the database is restarting");
    state.written.push([...batch]);
  };
  return { state, write };
}

const PAUSE = { mode: "pause" } as const;
const NO_WAIT = { random: () => 0 } as const;

function commitOf<T>(options: GroupCommitOptions<T, void>): GroupCommit<T> {
  return new GroupCommit<T>(options);
}

describe("GroupCommit", () => {
  it("writes what one turn queues in one batch, and what arrives during a write in the next, in order", async () => {
    const writer = heldWriter<string>();
    const commit = commitOf({ write: writer.write, failure: PAUSE });
    commit.enqueue("a");
    commit.enqueue("b");
    await writer.attemptsStarted(1);
    expect(writer.attempts[0]!.items).toEqual(["a", "b"]);
    commit.enqueue("c");
    commit.enqueue("d");
    await nextTurn();
    expect(writer.attempts).toHaveLength(1);
    expect(commit.pending).toBe(4);
    writer.attempts[0]!.release();
    await writer.attemptsStarted(2);
    expect(writer.attempts[1]!.items).toEqual(["c", "d"]);
    writer.attempts[1]!.release();
    await commit.flush();
    expect(writer.written.flat()).toEqual(["a", "b", "c", "d"]);
    expect(commit.pending).toBe(0);
  });

  it("keeps at most maxInFlight writes in flight, and carries at most maxItems and maxChars a batch", async () => {
    const writer = heldWriter<string>();
    const commit = commitOf({
      write: writer.write,
      failure: PAUSE,
      maxInFlight: 2,
      maxItems: 3,
      maxChars: 10,
      charsOf: (item) => item.length,
    });
    for (const item of ["a", "b", "c", "d", "eeeeeeeeee", "ffffffffffff", "g"])
      commit.enqueue(item);
    const flushed = commit.flush();
    await writer.attemptsStarted(2);
    await nextTurn();
    expect(writer.attempts.map((a) => a.items)).toEqual([["a", "b", "c"], ["d"]]);
    expect(commit.inFlight).toBe(2);
    // five batches in all, each released as it starts
    for (let i = 0; i < 5; i++) {
      await writer.attemptsStarted(i + 1);
      writer.attempts[i]!.release();
    }
    await flushed;
    expect(writer.maxInFlight).toBe(2);
    // a batch's first item goes whatever its size
    expect(writer.written).toEqual([
      ["a", "b", "c"],
      ["d"],
      ["eeeeeeeeee"],
      ["ffffffffffff"],
      ["g"],
    ]);
  });

  it("coalesces queued items of one key into the latest, in the earlier one's place, never one in flight", async () => {
    type State = { readonly id: string; readonly status: string; readonly startedAt?: number };
    const writer = heldWriter<State>();
    const commit = commitOf<State>({
      write: writer.write,
      failure: PAUSE,
      coalesce: {
        key: (s) => s.id,
        merge: (earlier, later) => ({ ...later, startedAt: later.startedAt ?? earlier.startedAt }),
      },
    });
    commit.enqueue({ id: "x", status: "running", startedAt: 1 });
    commit.enqueue({ id: "y", status: "running", startedAt: 2 });
    commit.enqueue({ id: "x", status: "succeeded" });
    await writer.attemptsStarted(1);
    expect(writer.attempts[0]!.items).toEqual([
      { id: "x", status: "succeeded", startedAt: 1 },
      { id: "y", status: "running", startedAt: 2 },
    ]);
    // y is in flight: its end is a new item for the next batch
    commit.enqueue({ id: "y", status: "failed" });
    writer.attempts[0]!.release();
    await writer.attemptsStarted(2);
    expect(writer.attempts[1]!.items).toEqual([{ id: "y", status: "failed" }]);
    writer.attempts[1]!.release();
    await commit.flush();
  });

  it("sends items that jump the queue with the next batch, beyond maxItems", async () => {
    const writer = heldWriter<string>();
    const commit = commitOf({
      write: writer.write,
      failure: PAUSE,
      maxItems: 2,
      jumpsQueue: (item) => item.startsWith("count"),
    });
    for (const item of ["r1", "r2", "r3", "r4", "count-1", "count-2"]) commit.enqueue(item);
    await writer.attemptsStarted(1);
    expect(writer.attempts[0]!.items).toEqual(["count-1", "count-2", "r1", "r2"]);
    writer.attempts[0]!.release();
    await writer.attemptsStarted(2);
    writer.attempts[1]!.release();
    await commit.flush();
    expect(writer.written.flat().sort()).toEqual(["count-1", "count-2", "r1", "r2", "r3", "r4"]);
  });

  it("resolves a flush once what was queued before it is written, not what came later", async () => {
    const writer = heldWriter<string>();
    // batches an hour apart: only a flush starts one before that
    const commit = commitOf({ write: writer.write, failure: PAUSE, minIntervalMs: 3_600_000 });
    commit.enqueue("a");
    const first = commit.flush();
    await writer.attemptsStarted(1);
    commit.enqueue("b");
    let firstDone = false;
    void first.then(() => {
      firstDone = true;
    });
    writer.attempts[0]!.release();
    await first;
    expect(firstDone).toBe(true);
    // b waits for the interval: nothing more was started
    await sleep(50);
    expect(writer.attempts).toHaveLength(1);
    expect(commit.pending).toBe(1);
    // a flush waiting for b starts its batch at once, the interval aside
    const second = commit.flush();
    await writer.attemptsStarted(2);
    expect(writer.attempts[1]!.items).toEqual(["b"]);
    writer.attempts[1]!.release();
    await second;
    expect(commit.pending).toBe(0);
  });

  it("waits in a flush for the latest state of an item queued before it", async () => {
    const writer = heldWriter<{ id: string; v: number }>();
    const commit = commitOf<{ id: string; v: number }>({
      write: writer.write,
      failure: PAUSE,
      coalesce: { key: (s) => s.id, merge: (_, later) => later },
      minIntervalMs: 3_600_000,
    });
    commit.enqueue({ id: "x", v: 0 });
    await writer.attemptsStarted(1);
    commit.enqueue({ id: "y", v: 1 });
    const flushed = commit.flush();
    commit.enqueue({ id: "y", v: 2 });
    writer.attempts[0]!.release();
    await writer.attemptsStarted(2);
    expect(writer.attempts[1]!.items).toEqual([{ id: "y", v: 2 }]);
    writer.attempts[1]!.release();
    await flushed;
  });

  it("retries a failed write with full-jitter exponential backoff within its ceiling", async () => {
    const delays: number[] = [];
    let calls = 0;
    const commit = commitOf<string>({
      write: async () => {
        calls += 1;
        if (calls < 4) throw new Error(`attempt ${calls} failed`);
      },
      failure: PAUSE,
      retry: { attempts: 4, baseMs: 4, capMs: 10 },
      random: () => 0.5,
      onRetry: (_, delayMs) => delays.push(delayMs),
    });
    commit.enqueue("a");
    await commit.flush();
    expect(calls).toBe(4);
    // half of each ceiling: 4, 8, then the cap of 10
    expect(delays).toEqual([2, 4, 5]);
  });

  it("draws each retry's wait uniformly below its ceiling", () => {
    const policy = { attempts: 10, baseMs: 400, capMs: 10_000 };
    expect(writeRetryDelayMs(policy, 1, () => 0)).toBe(0);
    expect(writeRetryDelayMs(policy, 1, () => 0.999)).toBeLessThan(400);
    expect(writeRetryDelayMs(policy, 3, () => 0.5)).toBe(800);
    expect(writeRetryDelayMs(policy, 20, () => 0.999)).toBeLessThan(10_000);
    for (let attempt = 1; attempt <= 8; attempt++) {
      const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** (attempt - 1));
      for (let i = 0; i < 100; i++) {
        const ms = writeRetryDelayMs(policy, attempt);
        expect(ms).toBeGreaterThanOrEqual(0);
        expect(ms).toBeLessThan(ceiling);
      }
    }
    expect(DEFAULT_WRITE_RETRY.attempts).toBeGreaterThanOrEqual(1);
  });

  it("pauses after a failed write: keeps what it retains in order, rejects the flush, writes on the next flush", async () => {
    const { state, write } = instantWriter<string>();
    const dropped: string[] = [];
    const commit = commitOf<string>({
      write,
      failure: {
        mode: "pause",
        retained: (batch) => {
          dropped.push(...batch.filter((item) => item.startsWith("count")));
          return batch.filter((item) => !item.startsWith("count"));
        },
      },
      retry: { attempts: 2 },
      ...NO_WAIT,
    });
    state.failing = true;
    commit.enqueue("r1");
    commit.enqueue("count");
    commit.enqueue("r2");
    await expect(commit.flush()).rejects.toThrow(/restarting/);
    expect(state.calls).toBe(2);
    expect(dropped).toEqual(["count"]);
    expect(commit.pending).toBe(2);
    // paused: nothing is tried again on its own
    await sleep(20);
    expect(state.calls).toBe(2);

    state.failing = false;
    commit.enqueue("r3");
    await commit.flush();
    expect(state.written.flat()).toEqual(["r1", "r2", "r3"]);
    expect(commit.pending).toBe(0);
  });

  it("stops for good after a failed write, naming what was not written, and refuses what comes later", async () => {
    const writer = heldWriter<string>();
    const commit = commitOf<string>({
      write: writer.write,
      failure: {
        mode: "stop",
        stopped: (unwritten, cause) => new Error(`lost ${unwritten.join(",")}`, { cause }),
      },
      retry: { attempts: 1 },
    });
    commit.enqueue("a");
    const flushed = commit.flush();
    await writer.attemptsStarted(1);
    commit.enqueue("b");
    const cause = new Error("connection refused");
    writer.attempts[0]!.fail(cause);
    const error = await flushed.then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toBe("lost a,b");
    expect(error?.cause).toBe(cause);
    expect(commit.failure).toBe(error);
    expect(commit.enqueue("c")).toBe(false);
    await expect(commit.flush()).rejects.toBe(error);
    await nextTurn();
    expect(writer.attempts).toHaveLength(1);
  });
});
