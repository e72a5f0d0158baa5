import { describe, expect, it } from "vitest";
import { asset } from "../../src/assets/asset-definition.js";
import { staticPartitions } from "../../src/assets/partitions.js";
import { StrataError } from "../../src/errors.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { lineageToJson } from "../../src/lineage/lineage-json.js";

const rows = () => [{ id: "1" }];

// raw/documents → analyses, summaries → report: a diamond.
function diamond(): AssetGraph {
  const documents = asset({
    key: "raw/documents",
    group: "ingest",
    description: "Source documents",
    tags: { team: "nlp" },
    owners: ["team:nlp"],
    kinds: ["arrow"],
    codeVersion: "1",
    partitions: staticPartitions(["en", "de"]),
    compute: rows,
  });
  const analyses = asset({ key: "analyses", deps: { documents }, compute: rows });
  const summaries = asset({ key: "summaries", group: "llm", deps: { documents }, compute: rows });
  const report = asset({ key: "report", deps: { analyses, summaries }, compute: rows });
  return AssetGraph.fromAssets([documents, analyses, summaries, report]);
}

describe("lineageToJson", () => {
  it("exports every selected asset with its definition and the edges among them", () => {
    const graph = diamond();
    const json = lineageToJson(graph, graph.keys());
    expect(json.assets.map((a) => a.key)).toEqual([
      "analyses",
      "raw/documents",
      "report",
      "summaries",
    ]);
    expect(json.assets[1]).toEqual({
      key: "raw/documents",
      group: "ingest",
      deps: [],
      description: "Source documents",
      tags: { team: "nlp" },
      owners: ["team:nlp"],
      kinds: ["arrow"],
      codeVersion: "1",
      partitions: "static [en, de]",
    });
    expect(json.assets[2]).toMatchObject({
      key: "report",
      group: "default",
      deps: ["analyses", "summaries"],
      description: null,
      codeVersion: null,
      partitions: null,
    });
    expect(json.edges).toEqual([
      { from: "raw/documents", to: "analyses" },
      { from: "analyses", to: "report" },
      { from: "summaries", to: "report" },
      { from: "raw/documents", to: "summaries" },
    ]);
  });

  it("keeps full deps but draws only edges whose both ends are selected", () => {
    const graph = diamond();
    const json = lineageToJson(graph, ["report", "analyses"]);
    expect(json.assets.map((a) => [a.key, a.deps])).toEqual([
      ["analyses", ["raw/documents"]],
      ["report", ["analyses", "summaries"]],
    ]);
    expect(json.edges).toEqual([{ from: "analyses", to: "report" }]);
  });

  it("counts a key selected twice once and exports an empty selection as empty lists", () => {
    const graph = diamond();
    expect(lineageToJson(graph, ["report", "report"]).assets).toHaveLength(1);
    expect(lineageToJson(graph, [])).toEqual({ assets: [], edges: [] });
  });

  it("is plain JSON that survives a round trip", () => {
    const graph = diamond();
    const json = lineageToJson(graph, graph.keys());
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });

  it("rejects a key that is not in the graph and suggests the closest", () => {
    const graph = diamond();
    let error: unknown;
    try {
      lineageToJson(graph, ["raw/document"]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StrataError);
    expect((error as StrataError).code).toBe("bad_selection");
    expect((error as StrataError).message).toBe(
      'asset "raw/document" is not in the project; did you mean "raw/documents"?',
    );
  });
});
