import { describe, expect, it } from "vitest";
import { Budget } from "../../src/inference/budget.js";
import { toNanos } from "../../src/util/decimal.js";

describe("Budget", () => {
  it("counts what the runs it resumes spent against the cap", () => {
    const budget = new Budget("1", "0.75");
    expect(budget.reserve(toNanos("0.2"))).toBe(toNanos("0.2"));
    expect(budget.reserve(toNanos("0.1"))).toBeNull();
    expect(budget.exhausted).toBe(true);
    expect(budget.exceededError("r1").message).toContain("spent $0.75");
  });

  it("settles reservations to what calls cost, from the spent-before amount", () => {
    const budget = new Budget("1", "0.5");
    const ticket = budget.reserve(toNanos("0.4"))!;
    budget.settle(ticket, toNanos("0.1"));
    expect(budget.spent).toBe(toNanos("0.6"));
    expect(budget.reserve(toNanos("0.4"))).toBe(toNanos("0.4"));
    expect(budget.reserve(toNanos("0.01"))).toBeNull();
  });

  it("without a cap never refuses, and still counts", () => {
    const budget = new Budget(null, "3");
    expect(budget.reserve(toNanos("100"))).toBe(toNanos("100"));
    budget.settle(toNanos("100"), toNanos("2"));
    expect(budget.spent).toBe(toNanos("5"));
  });
});
