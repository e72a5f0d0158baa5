import { describe, expect, it } from "vitest";
import type { AssetDefinition } from "../../src/assets/asset-definition.js";
import { asset } from "../../src/assets/asset-definition.js";
import {
  dailyPartitions,
  hourlyPartitions,
  staticPartitions,
} from "../../src/assets/partitions.js";
import type { ProjectSpec } from "../../src/assets/project-definition.js";
import { defineProject } from "../../src/assets/project-definition.js";
import { findProjectProblems, validateProject } from "../../src/assets/validate-project.js";
import { ProjectValidationError, StrataError } from "../../src/errors.js";

const compute = async () => [];

function node(key: string, deps: Record<string, string> = {}, extra: object = {}) {
  return asset({ key, deps, compute, ...extra });
}

function problemsOf(spec: ProjectSpec) {
  return findProjectProblems(defineProject(spec));
}

function validationError(spec: ProjectSpec): ProjectValidationError {
  try {
    validateProject(defineProject(spec));
  } catch (e) {
    if (e instanceof ProjectValidationError) return e;
    throw e;
  }
  throw new Error("expected the project to be invalid");
}

describe("validateProject", () => {
  it("accepts a valid project and returns no problems", () => {
    const documents = asset({ key: "raw/documents", group: "ingest", compute });
    const analyses = asset({ key: "analyses", deps: { documents }, compute });
    const spec: ProjectSpec = {
      assets: [documents, analyses],
      endpoints: { local: { baseURL: "http://127.0.0.1:8000/v1", maxConcurrency: 64 } },
      models: {
        small: {
          endpoint: "local",
          name: "qwen3-8b",
          price: { inputPerMTok: 0.1, cachedInputPerMTok: 0.01, outputPerMTok: 0.4 },
        },
      },
    };
    expect(problemsOf(spec)).toEqual([]);
    expect(() => validateProject(defineProject(spec))).not.toThrow();
  });

  it("rejects an invalid asset key with the syntax to use", () => {
    const [p] = problemsOf({ assets: [node("raw documents")] });
    expect(p).toEqual({
      code: "invalid_key",
      message: 'asset key "raw documents" is invalid; use segments of [A-Za-z0-9_-] joined by "/"',
      assets: ["raw documents"],
    });
    for (const key of ["", "/a", "a/", "a//b", "a.b"]) {
      expect(problemsOf({ assets: [node(key)] }).map((x) => x.code)).toEqual(["invalid_key"]);
    }
  });

  it("rejects an invalid group name", () => {
    const problems = problemsOf({ assets: [node("a", {}, { group: "my group" })] });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.code).toBe("invalid_key");
    expect(problems[0]!.message).toContain('asset "a" has an invalid group "my group"');
  });

  it("rejects a dep key with bad syntax without also calling it unknown", () => {
    const problems = problemsOf({ assets: [node("a", { docs: "raw documents" })] });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.code).toBe("invalid_key");
    expect(problems[0]!.message).toBe(
      'asset "a" has dep "docs" with invalid key "raw documents"; use segments of [A-Za-z0-9_-] joined by "/"',
    );
  });

  it("rejects a duplicate key and says how many times it is defined", () => {
    const problems = problemsOf({ assets: [node("a"), node("b"), node("a"), node("a")] });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.code).toBe("duplicate_key");
    expect(problems[0]!.message).toBe(
      'asset key "a" is defined 3 times; give each asset a unique key',
    );
    expect(problems[0]!.assets).toEqual(["a"]);
  });

  it("tells apart the same definition listed twice", () => {
    const a = node("a");
    const [p] = problemsOf({ assets: [a, a] });
    expect(p!.code).toBe("duplicate_key");
    expect(p!.message).toBe(`asset "a" is listed 2 times in the project's assets; list it once`);
  });

  it("rejects an unknown dep and suggests the closest key", () => {
    const problems = problemsOf({
      assets: [node("raw/documents"), node("analyses", { documents: "raw/docs" })],
    });
    expect(problems).toEqual([
      {
        code: "unknown_dep",
        message:
          'asset "analyses" depends on unknown asset "raw/docs"; did you mean "raw/documents"?',
        assets: ["analyses", "raw/docs"],
      },
    ]);
  });

  it("suggests by edit distance for a typo", () => {
    const [p] = problemsOf({ assets: [node("raw/documents"), node("b", { d: "raw/documnets" })] });
    expect(p!.message).toContain('did you mean "raw/documents"?');
  });

  it("still reports every unknown dep in a big project with many typos", () => {
    const assets = Array.from({ length: 20_000 }, (_, i) => node(`asset-${i}`));
    for (let i = 0; i < 200; i++) assets.push(node(`bad-${i}`, { x: `asset-${i}x` }));
    const problems = problemsOf({ assets });
    expect(problems).toHaveLength(200);
    expect(problems.every((p) => p.code === "unknown_dep")).toBe(true);
    expect(problems[0]!.message).toContain('did you mean "asset-0"?');
  });

  it("rejects an unknown dep with no close key and says the fix", () => {
    const [p] = problemsOf({ assets: [node("a"), node("b", { x: "completely/different" })] });
    expect(p!.code).toBe("unknown_dep");
    expect(p!.message).toBe(
      'asset "b" depends on unknown asset "completely/different"; add an asset with that key to the project or fix the dep "x"',
    );
  });

  it("rejects a cycle and names its path", () => {
    const problems = problemsOf({
      assets: [node("a", { b: "b" }), node("b", { c: "c" }), node("c", { a: "a" }), node("d")],
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.code).toBe("cycle");
    expect(problems[0]!.message).toContain("a → b → c → a");
    expect(problems[0]!.message).toContain("remove one of these deps");
    expect(problems[0]!.assets).toEqual(["a", "b", "c"]);
  });

  it("starts the cycle path at the smallest key whatever the declaration order", () => {
    const problems = problemsOf({
      assets: [node("z", { x: "x" }), node("x", { y: "y" }), node("y", { z: "z" })],
    });
    expect(problems[0]!.message).toContain("x → y → z → x");
  });

  it("reports each distinct cycle once", () => {
    const problems = problemsOf({
      assets: [
        node("a", { b: "b" }),
        node("b", { a: "a" }),
        node("c", { d: "d" }),
        node("d", { c: "c" }),
        node("e", { a: "a", c: "c" }),
      ],
    });
    expect(problems.map((p) => p.code)).toEqual(["cycle", "cycle"]);
    const messages = problems.map((p) => p.message);
    expect(messages.filter((m) => m.includes("a → b → a"))).toHaveLength(1);
    expect(messages.filter((m) => m.includes("c → d → c"))).toHaveLength(1);
  });

  it("reports a tangle of several cycles once, with the shortest path and a count", () => {
    // a → b → a and a → c → d → a share "a": one strongly connected tangle.
    const problems = problemsOf({
      assets: [
        node("a", { b: "b", c: "c" }),
        node("b", { a: "a" }),
        node("c", { d: "d" }),
        node("d", { a: "a" }),
      ],
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toContain("a → b → a");
    expect(problems[0]!.message).toContain("2 more assets are caught in cycles with these");
  });

  it("rejects a self-dependency as a cycle", () => {
    const problems = problemsOf({ assets: [node("a", { me: "a" })] });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.code).toBe("cycle");
    expect(problems[0]!.message).toBe('asset "a" depends on itself (a → a); remove its dep "me"');
  });

  it("reports every problem at once, in one error", () => {
    const spec: ProjectSpec = {
      assets: [
        node("bad key"),
        node("a"),
        node("a"),
        node("b", { x: "missing/thing" }),
        node("c", { d: "d" }),
        node("d", { c: "c" }),
      ],
      models: { small: { endpoint: "nowhere", name: "" } },
    };
    const error = validationError(spec);
    expect(error).toBeInstanceOf(StrataError);
    expect(error.problems.map((p) => p.code)).toEqual([
      "invalid_key",
      "duplicate_key",
      "unknown_dep",
      "cycle",
      "unknown_endpoint",
      "invalid_definition",
    ]);
    expect(error.code).toBe("invalid_key");
    expect(error.message).toContain("6 problems in the project");
    expect(error.message).toContain('asset key "bad key" is invalid');
    expect(error.message).toContain('asset "b" depends on unknown asset "missing/thing"');
    expect(error.isUsageError).toBe(true);
  });

  it("uses the single problem's code and message when there is one", () => {
    const error = validationError({ assets: [node("a", { me: "a" })] });
    expect(error.code).toBe("cycle");
    expect(error.message).toBe('asset "a" depends on itself (a → a); remove its dep "me"');
  });

  it("rejects an entry that is not an asset, hinting at circular imports", () => {
    const assets = [node("a"), undefined] as unknown as AssetDefinition<object>[];
    const [p] = problemsOf({ assets });
    expect(p!.code).toBe("invalid_definition");
    expect(p!.message).toContain("entry 2 of the project's assets is not an asset");
    expect(p!.message).toContain("circular import");
  });
});

describe("validateProject on models and endpoints", () => {
  const endpoints = { local: { baseURL: "http://127.0.0.1:8000/v1" } };

  it("rejects a model on an unknown endpoint and suggests the closest", () => {
    const [p] = problemsOf({
      assets: [],
      endpoints,
      models: { small: { endpoint: "locl", name: "qwen3-8b" } },
    });
    expect(p).toEqual({
      code: "unknown_endpoint",
      message: 'model "small" uses unknown endpoint "locl"; did you mean "local"?',
      assets: [],
    });
  });

  it("lists the known endpoints when none is close", () => {
    const [p] = problemsOf({
      assets: [],
      endpoints,
      models: { small: { endpoint: "hosted-api", name: "gpt" } },
    });
    expect(p!.message).toBe(
      `model "small" uses unknown endpoint "hosted-api"; add it to the project's endpoints (known: "local")`,
    );
  });

  it("rejects a model without a name, a negative price and bad limits", () => {
    const problems = problemsOf({
      assets: [],
      endpoints: { local: { maxConcurrency: 0 }, other: { maxConcurrency: 2.5, timeoutMs: -1 } },
      models: {
        small: {
          endpoint: "local",
          name: "",
          price: { inputPerMTok: -1, outputPerMTok: 0.4 },
          maxAttempts: 0,
        },
      },
    });
    expect(problems.every((p) => p.code === "invalid_definition")).toBe(true);
    const messages = problems.map((p) => p.message);
    expect(messages).toEqual([
      'endpoint "local" has maxConcurrency 0; use a positive integer',
      'endpoint "other" has maxConcurrency 2.5; use a positive integer',
      'endpoint "other" has timeoutMs -1; use a positive number of milliseconds',
      'model "small" has no name; set name to the model its endpoint serves, such as "qwen3-8b"',
      'model "small" has price.inputPerMTok -1; prices are non-negative USD per million tokens',
      'model "small" has maxAttempts 0; use a positive integer',
    ]);
  });

  it("requires the input and output prices when a price is given", () => {
    const price = { inputPerMTok: 0.1 } as unknown as {
      inputPerMTok: number;
      outputPerMTok: number;
    };
    const problems = problemsOf({
      assets: [],
      endpoints,
      models: { small: { endpoint: "local", name: "m", price } },
    });
    expect(problems.map((p) => p.message)).toEqual([
      'model "small" has no price.outputPerMTok; prices are non-negative USD per million tokens',
    ]);
  });

  it("rejects an endpoint baseURL that is not a URL", () => {
    const [p] = problemsOf({ assets: [], endpoints: { local: { baseURL: "127.0.0.1:8000 v1" } } });
    expect(p!.code).toBe("invalid_definition");
    expect(p!.message).toContain('endpoint "local" has an invalid baseURL "127.0.0.1:8000 v1"');
  });

  it("rejects a baseURL that is no http(s) URL, naming the endpoint and the fix", () => {
    const problems = problemsOf({
      assets: [],
      endpoints: {
        noScheme: { baseURL: "localhost:1/v1" },
        ftp: { baseURL: "ftp://127.0.0.1/v1" },
        empty: { baseURL: "" },
        secret: { baseURL: "http://admin:hunter2@127.0.0.1:8000/v1" },
        fine: { baseURL: "http://127.0.0.1:8000/v1" },
      },
    });
    expect(problems.every((p) => p.code === "invalid_definition")).toBe(true);
    expect(problems.map((p) => p.message)).toEqual([
      'endpoint "noScheme" has an invalid baseURL "localhost:1/v1": it has no scheme; write "http://localhost:1/v1"',
      'endpoint "ftp" has an invalid baseURL "ftp://127.0.0.1/v1": its scheme "ftp" is not http or https; an endpoint speaks the OpenAI API over http:// or https://',
      'endpoint "empty" has an invalid baseURL "": it is empty; write a URL such as "http://127.0.0.1:8000/v1"',
      'endpoint "secret" has an invalid baseURL "http://***@127.0.0.1:8000/v1": it has credentials in it; remove them and put the API key in the env var named by apiKeyEnv',
    ]);
  });

  it("checks OPENAI_BASE_URL for the endpoints without a baseURL when given the environment", () => {
    const project = defineProject({
      assets: [],
      endpoints: { hosted: {}, local: { baseURL: "http://127.0.0.1:8000/v1" } },
    });
    const env = { OPENAI_BASE_URL: "localhost:1/v1" };
    expect(findProjectProblems(project, { env }).map((p) => p.message)).toEqual([
      'endpoint "hosted" has no baseURL, and OPENAI_BASE_URL "localhost:1/v1" is invalid: it has no scheme; write "http://localhost:1/v1" (or give the endpoint a baseURL)',
    ]);
    expect(() => validateProject(project, { env })).toThrow(ProjectValidationError);
    // unset or blank is api.openai.com, as for the OpenAI SDK; without env nothing is read
    expect(findProjectProblems(project, { env: {} })).toEqual([]);
    expect(findProjectProblems(project, { env: { OPENAI_BASE_URL: " " } })).toEqual([]);
    expect(findProjectProblems(project)).toEqual([]);
    expect(
      findProjectProblems(project, { env: { OPENAI_BASE_URL: "http://127.0.0.1:9000/v1" } }),
    ).toEqual([]);
  });
});

describe("validateProject on partitions", () => {
  const languages = staticPartitions(["en", "de"]);
  const days = dailyPartitions({ start: "2026-01-01" });

  it("accepts assets with equal partitions definitions (identity mapping)", () => {
    const up = node("up", {}, { partitions: staticPartitions(["en", "de"]) });
    const down = asset({ key: "down", deps: { up }, partitions: languages, compute });
    expect(problemsOf({ assets: [up, down] })).toEqual([]);
  });

  it("accepts a partitioned asset reading an unpartitioned one whole", () => {
    const up = node("up");
    const down = asset({ key: "down", deps: { up }, partitions: days, compute });
    expect(problemsOf({ assets: [up, down] })).toEqual([]);
  });

  it("accepts an unpartitioned asset reading all partitions of a partitioned one", () => {
    const up = node("up", {}, { partitions: days });
    const down = asset({ key: "down", deps: { up }, compute });
    expect(problemsOf({ assets: [up, down] })).toEqual([]);
  });

  it("rejects a dep with different partitions, naming both assets and both partitions", () => {
    const up = node("up", {}, { partitions: languages });
    const down = asset({ key: "down", deps: { up }, partitions: days, compute });
    const problems = problemsOf({ assets: [up, down] });
    expect(problems).toEqual([
      {
        code: "partition_mismatch",
        message:
          'asset "down" (daily from 2026-01-01) depends on asset "up" (static [en, de]) with different partitions; ' +
          'give "down" the same partitions as "up", or remove the partitions of one of them',
        assets: ["down", "up"],
      },
    ]);
  });

  it("rejects daily against hourly and static lists that differ", () => {
    const hourly = node("hourly", {}, { partitions: hourlyPartitions({ start: "2026-01-01" }) });
    const daily = node("daily", { hourly: "hourly" }, { partitions: days });
    const later = node(
      "later",
      { daily: "daily" },
      { partitions: dailyPartitions({ start: "2026-02-01" }) },
    );
    const en = node("en", {}, { partitions: staticPartitions(["en"]) });
    const both = node("both", { en: "en" }, { partitions: languages });
    const problems = problemsOf({ assets: [hourly, daily, later, en, both] });
    expect(problems.map((p) => p.assets)).toEqual([
      ["daily", "hourly"],
      ["later", "daily"],
      ["both", "en"],
    ]);
    expect(problems.every((p) => p.code === "partition_mismatch")).toBe(true);
  });

  it("rejects partitions that are not a partitions definition", () => {
    const a = node("a", {}, { partitions: ["en", "de"] });
    const [p] = problemsOf({ assets: [a] });
    expect(p!.code).toBe("invalid_definition");
    expect(p!.message).toContain('asset "a" has invalid partitions; use staticPartitions()');
  });
});

describe("validateProject at scale", () => {
  it("validates a 100 000-long chain without overflowing the stack and finds its cycle", () => {
    const n = 100_000;
    const assets: AssetDefinition<object>[] = [];
    for (let i = 0; i < n; i++) {
      // The last asset closes the chain back onto the first: one 100 000-long cycle.
      const dep = i === 0 ? `n${n - 1}` : `n${i - 1}`;
      assets.push(node(`n${i}`, { prev: dep }));
    }
    const problems = problemsOf({ assets });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.code).toBe("cycle");
    expect(problems[0]!.assets).toHaveLength(n);
    expect(problems[0]!.message).toBe(
      "assets depend on each other in a cycle: n0 → n99999 → n99998 → n99997 → n99996 → n99995 → … → " +
        "n5 → n4 → n3 → n2 → n1 → n0 (each depends on the next, 100000 assets long); remove one of these deps",
    );
  });

  it("validates a 100 000-long acyclic chain without overflowing the stack", () => {
    const n = 100_000;
    const assets = Array.from({ length: n }, (_, i) =>
      node(`n${i}`, i === 0 ? {} : { prev: `n${i - 1}` }),
    );
    expect(problemsOf({ assets })).toEqual([]);
  });
});

describe("validateProject on storage", () => {
  it("accepts a storage root, absolute or relative", () => {
    for (const root of ["values", "/mnt/strata", "../values"]) {
      expect(problemsOf({ assets: [node("a")], storage: { root } })).toEqual([]);
    }
  });

  it.each([
    ["an empty root", { root: "" }],
    ["a blank root", { root: "  " }],
    ["a root that is not a string", { root: 42 }],
    ["a root with a NUL", { root: "a\0b" }],
    ["a string instead of an object", "/mnt/strata"],
    ["an array", ["/mnt/strata"]],
  ])("refuses %s with invalid_definition, naming the shape it takes", (_name, storage) => {
    const problems = problemsOf({
      assets: [node("a")],
      storage: storage as unknown as ProjectSpec["storage"],
    });
    expect(problems.map((p) => p.code)).toEqual(["invalid_definition"]);
    expect(problems[0]!.message).toContain('storage must be { root: "<folder>" }');
  });
});
