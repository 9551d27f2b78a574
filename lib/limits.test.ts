import { describe, expect, test } from "bun:test";
import { BodyTooLarge, Busy, ByteBudget, declaredTooLarge, RateLimit } from "./limits.ts";

async function* pieces(...sizes: number[]) {
  for (const n of sizes) yield new Uint8Array(n);
}

describe("RateLimit", () => {
  test("a burst, then the steady rate, per key; waits say how long", () => {
    let now = 0;
    const limit = new RateLimit(3, 0.5, () => now);
    expect([1, 2, 3, 4].map(() => limit.take("a"))).toEqual([0, 0, 0, 2]);
    expect(limit.take("b")).toBe(0);
    now = 2;
    expect(limit.take("a")).toBe(0);
    expect(limit.take("a")).toBe(2);
    now = 100;
    expect([1, 2, 3, 4].map(() => limit.take("a"))).toEqual([0, 0, 0, 2]);
  });
});

describe("ByteBudget", () => {
  test("reads a body whole, refuses one over its own limit, and one that would overdraw the budget", async () => {
    const budget = new ByteBudget(100);
    expect(await budget.read(pieces(10, 20), 50, (b) => b.length)).toBe(30);
    await expect(budget.read(pieces(30, 30), 50, () => 0)).rejects.toBeInstanceOf(BodyTooLarge);
    let inner: unknown;
    const outer = await budget.read(pieces(80), 100, async () => {
      inner = await budget.read(pieces(30), 100, () => "read").catch((e) => e);
      return "held";
    });
    expect([outer, inner instanceof Busy]).toEqual(["held", true]);
    // Everything was given back: the whole budget reads again.
    expect(await budget.read(pieces(100), 100, (b) => b.length)).toBe(100);
  });

  test("a declared Content-Length over the limit is refused before reading", () => {
    expect(declaredTooLarge(new Headers({ "content-length": "101" }), 100)).toBe(true);
    expect(declaredTooLarge(new Headers({ "content-length": "100" }), 100)).toBe(false);
    expect(declaredTooLarge(new Headers(), 100)).toBe(false);
  });
});
