import { it, expect } from "vitest";
import { loadProject } from "../../src/cli/project-loader.js";
import { createProjectFixture } from "../helpers/project-fixture.js";
it("probe", async () => {
  const p = await createProjectFixture({ "a.ts": `import { asset, defineProject } from "strata";\nthrow new Error("boom");\n`, "b.ts": `import { asset, defineProject } from "strata";\nexport default defineProject({ assets: [asset({key:"a",deps:{b:"b"},compute:async()=>[]}), asset({key:"b",deps:{a:"a"},compute:async()=>[]})] });\n`, "c.ts": `export const x = 1;\n`, "d.ts": `export default 42;\n` });
  for (const f of ["a.ts", "b.ts", "c.ts", "d.ts"]) {
    const e = await loadProject(`${p.dir}/${f}`).catch((e) => e);
    console.log(f, e?.code, e?.message);
  }
  await p.remove();
});
