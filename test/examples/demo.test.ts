import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../helpers/project-fixture.js";

/** Runs `node scripts/demo.mjs` (what `npm run demo` runs after building) and collects its output. */
function runDemo(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  const child = spawn(process.execPath, [join(REPO_ROOT, "scripts", "demo.mjs")], {
    cwd: REPO_ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill("SIGINT"), 110_000);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("npm run demo", () => {
  it("materializes the document-analysis example, shows lineage and costs, and reruns for $0", async () => {
    const { code, stdout, stderr } = await runDemo();
    expect(code, stderr).toBe(0);

    // the lineage tree of the five assets
    expect(stdout).toContain("raw_documents [ingest]");
    expect(stdout).toMatch(/├── document_chunks \[ingest\]/);
    expect(stdout).toMatch(/└── analyses \[nlp\]/);
    expect(stdout).toMatch(/document_summaries \[reporting\]/);
    expect(stdout).toMatch(/inference_costs \[reporting\]/);

    // the first run's summary: every asset built, the inference paid for
    const firstRun = /run \S+ succeeded; cost \$(\S+)/.exec(stdout);
    expect(firstRun).not.toBeNull();
    expect(Number(firstRun![1])).toBeGreaterThan(0);
    expect(stdout).toMatch(/^analyses {2,}succeeded {2,}\d+ /m);

    // costs by model: both models of the example answered, and their total is the run's cost
    const costs = stdout.slice(stdout.indexOf("$ strata costs --by model"));
    expect(costs).toMatch(/^small {2,}\d+ /m);
    expect(costs).toMatch(/^large {2,}\d+ /m);
    const total = /^total .* \$([\d.,]+)$/m.exec(costs);
    expect(Number(total?.[1])).toBe(Number(firstRun![1]));

    // the second run costs nothing
    expect(stdout).toContain("second run: $0 — every answer came from the ledger's cache");
  }, 120_000);
});
