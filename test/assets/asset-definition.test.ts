import { describe, expect, expectTypeOf, it } from "vitest";
import type { AssetContext } from "../../src/assets/asset-context.js";
import type { AssetDefinition, AssetSpec, DepsSpec } from "../../src/assets/asset-definition.js";
import { asset, DEFAULT_GROUP } from "../../src/assets/asset-definition.js";
import { staticPartitions } from "../../src/assets/partitions.js";
import { StrataError } from "../../src/errors.js";

interface Document {
  id: string;
  text: string;
}

const documents = asset({
  key: "raw/documents",
  compute: async (): Promise<Document[]> => [{ id: "d1", text: "hello world" }],
});

// A context for calling compute directly; these tests never touch ctx.
const ctx = {} as AssetContext;

function thrown(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (e) {
    if (e instanceof StrataError) return e;
    throw e;
  }
  throw new Error("expected a StrataError");
}

// asset() with a spec the type system would refuse: what a JavaScript user can still pass.
function untypedAsset(spec: Record<string, unknown>): AssetDefinition<object> {
  return asset(spec as unknown as AssetSpec<object, DepsSpec>);
}

describe("asset", () => {
  it("fills in the defaults", () => {
    const a = asset({ key: "a", compute: () => [] });
    expect(a.key).toBe("a");
    expect(a.group).toBe("default");
    expect(DEFAULT_GROUP).toBe("default");
    expect(a.description).toBeNull();
    expect(a.tags).toEqual({});
    expect(a.owners).toEqual([]);
    expect(a.kinds).toEqual([]);
    expect(a.codeVersion).toBeNull();
    expect(a.partitions).toBeNull();
    expect(a.deps).toEqual([]);
  });

  it("keeps every field it is given", () => {
    const partitions = staticPartitions(["en", "de"]);
    const a = asset({
      key: "raw/documents",
      group: "ingest",
      description: "Source documents",
      tags: { team: "nlp" },
      owners: ["team:nlp"],
      kinds: ["arrow"],
      codeVersion: "1",
      partitions,
      compute: () => [],
    });
    expect(a).toMatchObject({
      key: "raw/documents",
      group: "ingest",
      description: "Source documents",
      tags: { team: "nlp" },
      owners: ["team:nlp"],
      kinds: ["arrow"],
      codeVersion: "1",
    });
    expect(a.partitions).toBe(partitions);
  });

  it("normalizes deps given as assets and as key strings, in declaration order", () => {
    const a = asset({ key: "a", deps: { documents, other: "raw/other" }, compute: () => [] });
    expect(a.deps).toEqual([
      { name: "documents", key: "raw/documents" },
      { name: "other", key: "raw/other" },
    ]);
  });

  it("returns a frozen definition, down to its tags, deps and lists", () => {
    const owners = ["team:nlp"];
    const a = asset({
      key: "a",
      tags: { team: "nlp" },
      owners,
      kinds: ["arrow"],
      deps: { documents },
      compute: () => [],
    });
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.tags)).toBe(true);
    expect(Object.isFrozen(a.owners)).toBe(true);
    expect(Object.isFrozen(a.kinds)).toBe(true);
    expect(Object.isFrozen(a.deps)).toBe(true);
    expect(Object.isFrozen(a.deps[0])).toBe(true);
    expect(() => {
      (a as { group: string }).group = "changed";
    }).toThrow(TypeError);
    owners.push("someone:else");
    expect(a.owners).toEqual(["team:nlp"]);
  });

  it("leaves key syntax to project validation, so every problem is reported at once", () => {
    expect(asset({ key: "raw documents", compute: () => [] }).key).toBe("raw documents");
  });

  it("rejects a missing compute with code invalid_definition, naming the asset", () => {
    const error = thrown(() => untypedAsset({ key: "a" }));
    expect(error.code).toBe("invalid_definition");
    expect(error.message).toBe('asset "a" has no compute function');
    expect(thrown(() => untypedAsset({ key: "b", compute: "not a function" })).code).toBe(
      "invalid_definition",
    );
  });

  it("rejects a tag value that is not a string, naming the tag", () => {
    const error = thrown(() =>
      untypedAsset({ key: "a", tags: { priority: 1 }, compute: () => [] }),
    );
    expect(error.code).toBe("invalid_definition");
    expect(error.message).toBe(
      'asset "a" has a non-string value for tag "priority"; tag values are strings',
    );
  });

  it("rejects a dep that is neither an asset nor a key string", () => {
    const error = thrown(() =>
      untypedAsset({ key: "a", deps: { broken: undefined }, compute: () => [] }),
    );
    expect(error.code).toBe("invalid_definition");
    expect(error.message).toContain('dep "broken"');
  });

  it("rejects a spec that is not an object", () => {
    const error = thrown(() => asset(null as unknown as AssetSpec<object, DepsSpec>));
    expect(error.code).toBe("invalid_definition");
    expect(error.message).toContain("asset() takes an object");
  });

  it("hands compute the inputs under the dep names", async () => {
    const lengths = asset({
      key: "lengths",
      deps: { documents },
      compute: (_ctx, { documents }) => documents.map((d) => ({ id: d.id, length: d.text.length })),
    });
    const rows = await lengths.compute(ctx, { documents: [{ id: "d1", text: "hello" }] });
    expect(rows).toEqual([{ id: "d1", length: 5 }]);
  });
});

describe("asset types", () => {
  it("types a dep's input as the rows of that asset", async () => {
    const analyses = asset({
      key: "analyses",
      deps: { documents, raw: "raw/other" },
      compute: (_ctx, inputs) => {
        expectTypeOf(inputs.documents).toEqualTypeOf<Document[]>();
        expectTypeOf(inputs.raw).toBeUnknown();
        const first: string | undefined = inputs.documents[0]?.text;
        // @ts-expect-error rows of "raw/documents" have `text`, not `txt`
        const typo = inputs.documents[0]?.txt;
        // @ts-expect-error a key-string dep is `unknown` until narrowed
        const unchecked = inputs.raw[0];
        return [{ id: "a1", first, typo, unchecked }];
      },
    });
    const rows = await analyses.compute(ctx, {
      documents: [{ id: "d1", text: "hello" }],
      raw: [],
    });
    expect(rows).toEqual([{ id: "a1", first: "hello", typo: undefined, unchecked: undefined }]);
  });

  it("carries the row type of compute into the definition", () => {
    expectTypeOf(documents).toEqualTypeOf<AssetDefinition<Document>>();
    const counts = asset({ key: "counts", compute: () => [{ n: 1 }] });
    expectTypeOf(counts).toEqualTypeOf<AssetDefinition<{ n: number }>>();
    // @ts-expect-error the key must be a string
    asset({ key: 42, compute: () => [] });
    expect(() =>
      // @ts-expect-error compute is required
      asset({ key: "no-compute" }),
    ).toThrow(StrataError);
    expect(counts.key).toBe("counts");
  });
});
