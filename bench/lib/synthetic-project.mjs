// A seeded synthetic project: a random DAG of N assets in 50 groups with tags, owners, kinds and
// code versions, kept as a compact columnar spec (plain JSON) that `buildProject` turns into
// strata definitions. The lineage bench builds it in-process and, through a generated project
// file, in the CLI; both go through `buildProject`, so they see the same assets.

export const GROUPS = 50;
export const TIERS = ["gold", "silver", "bronze"];
export const TEAMS = 10;
export const KINDS = ["python", "arrow", "sql"];
export const OWNERS = [
  "team:t0",
  "team:t1",
  "team:t2",
  "team:t3",
  "alice@example.com",
  "bob@example.com",
];

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (rng, n) => Math.floor(rng() * n);

/**
 * The spec of a random DAG of `n` assets: each asset has 0–6 deps (about 3 on average, 5% are
 * roots), picked among earlier assets (so the graph is acyclic): mostly from the previous 2,000
 * (pipelines are local), a quarter anywhere before.
 */
export function generateSpec(n, seed = 1) {
  const rng = seededRandom(seed);
  const digits = Math.max(5, String(n - 1).length);
  const spec = {
    seed,
    n,
    digits,
    group: new Array(n),
    depOffsets: new Array(n + 1),
    deps: [],
    tier: new Array(n),
    team: new Array(n),
    pii: new Array(n),
    owner: new Array(n),
    kind: new Array(n),
    codeVersion: new Array(n),
  };
  spec.depOffsets[0] = 0;
  for (let i = 0; i < n; i++) {
    spec.group[i] = int(rng, GROUPS);
    const wanted = i === 0 || rng() < 0.05 ? 0 : 1 + int(rng, 5); // 0.95 × 3 + … ≈ 2.9 deps
    const chosen = new Set();
    for (let tries = 0; chosen.size < Math.min(wanted, i) && tries < 20; tries++) {
      const dep = rng() < 0.75 ? Math.max(0, i - 1 - int(rng, 2_000)) : int(rng, i);
      chosen.add(dep);
    }
    for (const d of chosen) spec.deps.push(d);
    spec.depOffsets[i + 1] = spec.deps.length;
    spec.tier[i] = int(rng, TIERS.length);
    spec.team[i] = rng() < 0.7 ? int(rng, TEAMS) : -1;
    spec.pii[i] = rng() < 0.1 ? 1 : 0;
    spec.owner[i] = rng() < 0.3 ? int(rng, OWNERS.length) : -1;
    spec.kind[i] = rng() < 0.6 ? int(rng, KINDS.length) : -1;
    spec.codeVersion[i] = rng() < 0.3 ? 1 + int(rng, 5) : 0;
  }
  return spec;
}

/** The key of asset `i`: `g17/asset_01234`. */
export function keyOf(spec, i) {
  return `g${spec.group[i]}/asset_${String(i).padStart(spec.digits, "0")}`;
}

const compute = async () => [];

/**
 * Builds the project of `spec` with strata's public API (`strata` is the module namespace:
 * `asset` and `defineProject`). Deps are passed as the upstream asset objects.
 */
export function buildProject(strata, spec) {
  const { asset, defineProject } = strata;
  const assets = new Array(spec.n);
  for (let i = 0; i < spec.n; i++) {
    const deps = {};
    for (let e = spec.depOffsets[i]; e < spec.depOffsets[i + 1]; e++) {
      deps[`in${e - spec.depOffsets[i]}`] = assets[spec.deps[e]];
    }
    const tags = { tier: TIERS[spec.tier[i]] };
    if (spec.team[i] >= 0) tags.team = `t${spec.team[i]}`;
    if (spec.pii[i] === 1) tags.pii = "";
    assets[i] = asset({
      key: keyOf(spec, i),
      group: `g${spec.group[i]}`,
      description: i % 10 === 0 ? `synthetic asset ${i}` : undefined,
      tags,
      owners: spec.owner[i] >= 0 ? [OWNERS[spec.owner[i]]] : undefined,
      kinds: spec.kind[i] >= 0 ? [KINDS[spec.kind[i]]] : undefined,
      codeVersion: spec.codeVersion[i] > 0 ? `v${spec.codeVersion[i]}` : undefined,
      deps,
      compute,
    });
  }
  return defineProject({ name: `synthetic-${spec.n}`, assets });
}

/** The number of distinct edges of `spec` (what `lineage --format json` must print). */
export function edgeCount(spec) {
  return spec.deps.length;
}

/**
 * `count` mixed selections over the keys of `spec`, seeded: key patterns with wildcards, bare
 * keys, groups, tags, owners and kinds, bounded and unbounded traversals, sinks() and roots(),
 * and and/or/not combinations.
 */
export function generateSelections(spec, count = 100, seed = 7) {
  const rng = seededRandom(seed);
  const key = () => keyOf(spec, int(rng, spec.n));
  const group = () => `g${int(rng, GROUPS)}`;
  const tier = () => TIERS[int(rng, TIERS.length)];
  const team = () => `t${int(rng, TEAMS)}`;
  const prefix = () => key().slice(0, -2); // "g3/asset_012" → the keys g3/asset_01200..99
  const templates = [
    () => `key:${key()}`,
    () => key(),
    () => `key:"${group()}/*"`,
    () => `key:${prefix()}*`,
    () => `key:*_0${int(rng, 10)}*`,
    () => `group:${group()}`,
    () => `group:g1*`,
    () => `tag:tier=${tier()}`,
    () => `tag:team=${team()}`,
    () => "tag:pii",
    () => `owner:"${OWNERS[int(rng, OWNERS.length)]}"`,
    () => `kind:${KINDS[int(rng, KINDS.length)]}`,
    () => "kind:<null>",
    () => `${1 + int(rng, 3)}+key:${key()}+${1 + int(rng, 3)}`,
    () => `+key:${key()}`,
    () => `key:${key()}+`,
    () => `${key()}+2`,
    () => `group:${group()}+1`,
    () => `sinks(group:${group()})`,
    () => `roots(group:${group()})`,
    () => `roots(key:${key()}+)`,
    () => `sinks(+key:${key()})`,
    () => `group:${group()} and tag:tier=${tier()}`,
    () => `tag:team=${team()} or tag:team=${team()}`,
    () => `not group:${group()} and kind:${KINDS[int(rng, KINDS.length)]}`,
    () => `(group:${group()} or group:${group()}) and not tag:tier=${tier()}`,
    () => `sinks(tag:tier=gold and group:${group()})`,
    () => `roots(${group()}/* or tag:team=${team()}) and not owner:<null>`,
    () => `2+(group:${group()} and tag:pii)+2`,
    () => "*",
  ];
  const selections = [];
  // Every template once, then random ones, so each kind of selection is measured.
  for (const t of templates) if (selections.length < count) selections.push(t());
  while (selections.length < count) selections.push(templates[int(rng, templates.length)]());
  return selections;
}
