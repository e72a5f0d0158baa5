import { describe, expect, it } from "vitest";
import { Budget } from "../../src/inference/budget.js";
import { toFemtos } from "../../src/util/decimal.js";

describe("Budget", () => {
  it("counts what the runs it resumes spent against the cap", () => {
    const budget = new Budget("1", "0.75");
    expect(budget.reserve(toFemtos("0.2"))).toBe(toFemtos("0.2"));
    expect(budget.reserve(toFemtos("0.1"))).toBeNull();
    expect(budget.exhausted).toBe(true);
    expect(budget.exceededError("r1").message).toContain("spent $0.75");
  });

  it("settles reservations to what calls cost, from the spent-before amount", () => {
    const budget = new Budget("1", "0.5");
    const ticket = budget.reserve(toFemtos("0.4"))!;
    budget.settle(ticket, toFemtos("0.1"));
    expect(budget.spent).toBe(toFemtos("0.6"));
    expect(budget.reserve(toFemtos("0.4"))).toBe(toFemtos("0.4"));
    expect(budget.reserve(toFemtos("0.01"))).toBeNull();
  });

  it("without a cap never refuses, and still counts", () => {
    const budget = new Budget(null, "3");
    expect(budget.reserve(toFemtos("100"))).toBe(toFemtos("100"));
    budget.settle(toFemtos("100"), toFemtos("2"));
    expect(budget.spent).toBe(toFemtos("5"));
  });
});
