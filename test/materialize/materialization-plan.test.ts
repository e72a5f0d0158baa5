import { describe, expect, it } from "vitest";
import type { AssetDefinition } from "../../src/assets/asset-definition.js";
import { asset } from "../../src/assets/asset-definition.js";
import {
  dailyPartitions,
  hourlyPartitions,
  staticPartitions,
} from "../../src/assets/partitions.js";
import { StrataError } from "../../src/errors.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import {
  MAX_RUN_PARTITIONS,
  type MaterializationPlan,
  type PlanRequest,
  planMaterialization,
} from "../../src/materialize/materialization-plan.js";

const rows = () => [{ id: "r1" }];

function graphOf(...assets: AssetDefinition<object>[]): AssetGraph {
  return AssetGraph.fromAssets(assets);
}

/** Plans `request` and returns the StrataError it throws. */
function planError(graph: AssetGraph, request: PlanRequest): StrataError {
  try {
    planMaterialization(graph, request);
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return error as StrataError;
  }
  throw new Error("expected planMaterialization to throw");
}

function stepOf(plan: MaterializationPlan, id: string) {
  const step = plan.steps.find((s) => s.id === id);
  if (step === undefined) throw new Error(`no step "${id}" in the plan`);
  return step;
}

// 2026-01-10 noon UTC: daily partitions from 2026-01-01 run to "2026-01-09".
const NOW = new Date("2026-01-10T12:00:00Z");

describe("planMaterialization", () => {
  describe("order and upstream steps", () => {
    // z → m, a → m, m → b; a, z and c are roots
    const z = asset({ key: "z", compute: rows });
    const a = asset({ key: "a", compute: rows });
    const c = asset({ key: "c", compute: rows });
    const m = asset({ key: "m", deps: { z, a }, compute: rows });
    const b = asset({ key: "b", deps: { m }, compute: rows });
    const d = asset({ key: "d", deps: { a }, compute: rows });
    const graph = graphOf(b, m, z, d, c, a);

    it("orders steps topologically, breaking ties by key", () => {
      const plan = planMaterialization(graph, { selection: "*" });
      // d becomes ready when a is done and sorts before z; m waits for z
      expect(plan.steps.map((s) => s.id)).toEqual(["a", "c", "d", "z", "m", "b"]);
      expect(plan.selection).toBe("*");
      expect(plan.partitionKeys).toEqual([]);
    });

    it("lists the steps each step waits for, only those in the plan", () => {
      const plan = planMaterialization(graph, { selection: "*" });
      expect(stepOf(plan, "m").upstreamSteps).toEqual(["z", "a"]);
      expect(stepOf(plan, "b").upstreamSteps).toEqual(["m"]);
      expect(stepOf(plan, "a").upstreamSteps).toEqual([]);

      const partial = planMaterialization(graph, { selection: "m+" });
      expect(partial.steps.map((s) => s.id)).toEqual(["m", "b"]);
      // z and a are read from the store, not waited for
      expect(stepOf(partial, "m").upstreamSteps).toEqual([]);
      expect(stepOf(partial, "m").inputs.map((i) => [i.name, i.assetKey])).toEqual([
        ["z", "z"],
        ["a", "a"],
      ]);
    });

    it("carries each asset's code version onto its steps", () => {
      const versioned = asset({ key: "v", codeVersion: "7", compute: rows });
      const plan = planMaterialization(graphOf(versioned, a), { selection: "*" });
      expect(plan.steps.map((s) => [s.id, s.codeVersion])).toEqual([
        ["a", null],
        ["v", "7"],
      ]);
    });

    it("quotes only the start of a long generated selection that matches nothing", () => {
      const selection = Array.from({ length: 20_000 }, (_, i) => `key:nope${i}`).join(" or ");
      const error = planError(graph, { selection });
      expect(error.code).toBe("empty_selection");
      expect(error.message).toMatch(
        /^selection "key:nope0 or key:nope1 or [^"]*" \(characters 1 to 120 of a selection of \d+\) matches no asset/,
      );
      expect(error.message.length).toBeLessThan(300);
    });

    it("rejects a selection that matches nothing with empty_selection", () => {
      const error = planError(graph, { selection: "key:nothing/here" });
      expect(error.code).toBe("empty_selection");
      expect(error.message).toBe(
        'selection "key:nothing/here" matches no asset; see "strata list" for the keys',
      );
    });
  });

  describe("partitions", () => {
    const languages = staticPartitions(["en", "de"]);
    const docs = asset({ key: "docs", partitions: languages, compute: rows });
    const config = asset({ key: "config", compute: rows });
    const summaries = asset({
      key: "summaries",
      partitions: languages,
      deps: { docs, config },
      compute: rows,
    });
    const report = asset({ key: "report", deps: { summaries }, compute: rows });
    const graph = graphOf(docs, config, summaries, report);

    it("plans one step per partition, in the order the keys were given", () => {
      const plan = planMaterialization(graph, { selection: "docs", partitions: ["de", "en"] });
      expect(plan.partitionKeys).toEqual(["de", "en"]);
      expect(plan.steps.map((s) => [s.id, s.partitionKey])).toEqual([
        ["docs[de]", "de"],
        ["docs[en]", "en"],
      ]);
    });

    it("maps same partitions by identity, an unpartitioned dep whole, and all partitions into an unpartitioned asset", () => {
      const plan = planMaterialization(graph, { selection: "*", partitions: ["en", "de"] });
      expect(plan.steps.map((s) => s.id)).toEqual([
        "config",
        "docs[en]",
        "docs[de]",
        "summaries[en]",
        "summaries[de]",
        "report",
      ]);

      const summaryEn = stepOf(plan, "summaries[en]");
      expect(summaryEn.inputs).toEqual([
        { name: "docs", assetKey: "docs", partitions: { kind: "same", partitionKey: "en" } },
        { name: "config", assetKey: "config", partitions: { kind: "whole" } },
      ]);
      // identity: the en step waits for docs[en] only, and for the unpartitioned config
      expect(summaryEn.upstreamSteps).toEqual(["docs[en]", "config"]);
      expect(stepOf(plan, "summaries[de]").upstreamSteps).toEqual(["docs[de]", "config"]);

      const reportStep = stepOf(plan, "report");
      expect(reportStep.partitionKey).toBeNull();
      expect(reportStep.inputs).toEqual([
        { name: "summaries", assetKey: "summaries", partitions: { kind: "all" } },
      ]);
      expect(reportStep.upstreamSteps).toEqual(["summaries[en]", "summaries[de]"]);
    });

    it("rejects a partitioned asset selected without partitions and says how to pass them", () => {
      const error = planError(graph, { selection: "docs" });
      expect(error.code).toBe("bad_partition");
      expect(error.message).toBe(
        'asset "docs" is partitioned (static [en, de]); choose partitions with --partition KEY (e.g. --partition de) or --partition-range en..de, or build them all with --all-partitions',
      );
    });

    it("suggests the closest static key for an unknown one", () => {
      const error = planError(graph, { selection: "docs", partitions: ["en", "dee"] });
      expect(error.code).toBe("bad_partition");
      expect(error.message).toBe(
        '"dee" is not a partition of asset "docs" (static [en, de]); did you mean "de"?',
      );
      const far = planError(graph, { selection: "docs", partitions: ["francais"] });
      expect(far.message).toContain('valid keys are "en", "de"');
    });

    it("rejects --partition when no selected asset is partitioned", () => {
      const error = planError(graph, { selection: "config", partitions: ["en"] });
      expect(error.code).toBe("bad_partition");
      expect(error.message).toContain("no selected asset is partitioned");
      const range = planError(graph, { selection: "config", partitionRange: "en..de" });
      expect(range.code).toBe("bad_partition");
    });

    it("plans every partition of the selection with allPartitions", () => {
      const plan = planMaterialization(graph, { selection: "*", allPartitions: true });
      expect(plan.partitionKeys).toEqual(["en", "de"]);
      expect(plan.steps.map((s) => s.id)).toEqual([
        "config",
        "docs[en]",
        "docs[de]",
        "summaries[en]",
        "summaries[de]",
        "report",
      ]);
      // an unpartitioned selection has nothing more to build
      const config = planMaterialization(graph, { selection: "config", allPartitions: true });
      expect(config.steps.map((s) => s.id)).toEqual(["config"]);
      const both = planError(graph, { selection: "docs", allPartitions: true, partitions: ["en"] });
      expect(both.code).toBe("bad_partition");
      expect(both.message).toContain("leave out --partition and --partition-range");
    });

    it("refuses allPartitions over assets partitioned differently, naming both", () => {
      const days = asset({
        key: "days",
        partitions: dailyPartitions({ start: "2026-01-01" }),
        compute: rows,
      });
      const error = planError(graphOf(docs, days), { selection: "*", allPartitions: true });
      expect(error.code).toBe("bad_partition");
      expect(error.message).toBe(
        '--all-partitions needs one partitioning, but asset "days" is daily from 2026-01-01 and asset "docs" is static [en, de]; materialize them in separate selections',
      );
    });

    it("takes a static --partition-range in declaration order", () => {
      const plan = planMaterialization(graph, { selection: "docs", partitionRange: "en..de" });
      expect(plan.partitionKeys).toEqual(["en", "de"]);
    });
  });

  describe("daily partitions", () => {
    const days = dailyPartitions({ start: "2026-01-01" });
    const events = asset({ key: "events", partitions: days, compute: rows });
    const graph = graphOf(events);

    it("expands a --partition-range into every day from FROM to TO", () => {
      const plan = planMaterialization(graph, {
        selection: "events",
        partitionRange: "2026-01-03..2026-01-05",
        now: NOW,
      });
      expect(plan.partitionKeys).toEqual(["2026-01-03", "2026-01-04", "2026-01-05"]);
      expect(plan.steps.map((s) => s.id)).toEqual([
        "events[2026-01-03]",
        "events[2026-01-04]",
        "events[2026-01-05]",
      ]);
    });

    it("merges --partition and --partition-range without repeating a key", () => {
      const plan = planMaterialization(graph, {
        selection: "events",
        partitions: ["2026-01-04", "2026-01-01"],
        partitionRange: "2026-01-03..2026-01-05",
        now: NOW,
      });
      expect(plan.partitionKeys).toEqual(["2026-01-04", "2026-01-01", "2026-01-03", "2026-01-05"]);
    });

    it("names the valid range for an unknown day", () => {
      for (const key of ["2026-01-10", "2025-12-31", "yesterday"]) {
        const error = planError(graph, { selection: "events", partitions: [key], now: NOW });
        expect(error.code).toBe("bad_partition");
        expect(error.message).toBe(
          `"${key}" is not a partition of asset "events" (daily from 2026-01-01); valid keys run from "2026-01-01" to "2026-01-09"`,
        );
      }
    });

    it("plans every day up to the last complete one with allPartitions", () => {
      const plan = planMaterialization(graph, {
        selection: "events",
        allPartitions: true,
        now: NOW,
      });
      expect(plan.partitionKeys).toHaveLength(9);
      expect(plan.steps.at(-1)?.id).toBe("events[2026-01-09]");
      const early = planError(graph, {
        selection: "events",
        allPartitions: true,
        now: new Date("2026-01-01T12:00:00Z"),
      });
      expect(early.message).toContain("no complete partition yet");
    });

    it("suggests a week-long range when no partition is given", () => {
      const error = planError(graph, { selection: "events", now: NOW });
      expect(error.code).toBe("bad_partition");
      expect(error.message).toContain("--partition 2026-01-09");
      expect(error.message).toContain("--partition-range 2026-01-03..2026-01-09");
    });

    it("rejects a range that runs backwards", () => {
      const error = planError(graph, {
        selection: "events",
        partitionRange: "2026-01-05..2026-01-03",
        now: NOW,
      });
      expect(error.code).toBe("bad_partition");
      expect(error.message).toBe('partition range "2026-01-05..2026-01-03" runs backwards');
    });

    it("rejects a malformed range, showing the form it expects", () => {
      const error = planError(graph, {
        selection: "events",
        partitionRange: "2026-01-03",
        now: NOW,
      });
      expect(error.code).toBe("bad_partition");
      expect(error.message).toBe(
        'partition range "2026-01-03" is not of the form FROM..TO (e.g. 2026-01-01..2026-01-31)',
      );
    });

    it("rejects a range whose end is not a partition yet", () => {
      const error = planError(graph, {
        selection: "events",
        partitionRange: "2026-01-08..2026-01-10",
        now: NOW,
      });
      expect(error.code).toBe("bad_partition");
      expect(error.message).toContain('"2026-01-10" is not a partition');
      expect(error.message).toContain('"2026-01-01" to "2026-01-09"');
    });
  });

  describe("runs of many partitions", () => {
    const hours = hourlyPartitions({ start: "1970-01-01" });
    const raw = asset({ key: "raw", partitions: hours, compute: rows });
    const clean = asset({ key: "clean", deps: { raw }, partitions: hours, compute: rows });
    const graph = graphOf(raw, clean);
    const now = new Date("2026-01-01T00:30:00Z");

    it("refuses a range of decades of hours, saying the limit and the first range to run", () => {
      const range = "1970-01-01-00:00..2025-12-31-23:00";
      const error = planError(graph, { selection: "*", partitionRange: range, now });
      expect(error.code).toBe("bad_partition");
      expect(error.message).toBe(
        `--partition-range "${range}" selects 490896 partitions; one run builds at most ${MAX_RUN_PARTITIONS}: split it into several runs, starting with --partition-range 1970-01-01-00:00..1971-02-21-15:00`,
      );
    });

    it("refuses more --partition keys than one run builds", () => {
      const keys = Array.from({ length: MAX_RUN_PARTITIONS + 1 }, (_, i) => `k${i}`);
      const many = asset({ key: "many", partitions: staticPartitions(keys), compute: rows });
      const error = planError(graphOf(many), { selection: "many", partitions: keys });
      expect(error.code).toBe("bad_partition");
      expect(error.message).toBe(
        `--partition selects ${MAX_RUN_PARTITIONS + 1} partitions; one run builds at most ${MAX_RUN_PARTITIONS}: split it into several runs`,
      );
    });

    it("plans a run of the most partitions, each step waiting only for its own partition", () => {
      const plan = planMaterialization(graph, {
        selection: "*",
        partitionRange: "1971-02-21-16:00..1972-04-13-07:00",
        now,
      });
      expect(plan.partitionKeys).toHaveLength(MAX_RUN_PARTITIONS);
      expect(plan.steps).toHaveLength(2 * MAX_RUN_PARTITIONS);
      expect(stepOf(plan, "clean[1972-04-13-07:00]").upstreamSteps).toEqual([
        "raw[1972-04-13-07:00]",
      ]);
    });
  });
});
