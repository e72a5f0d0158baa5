-- strata's store: runs, materializations and their provenance, the declared asset catalog, and
-- the inference cost ledger. Users query these tables with plain SQL; keep names and meanings.

create schema if not exists strata;

-- One row per `strata materialize` (or resume) invocation.
create table strata.runs (
  id            text primary key,
  status        text not null
                check (status in ('running', 'succeeded', 'failed', 'canceled', 'budget_exceeded')),
  selection     text not null,
  started_at    timestamptz not null default now(),
  finished_at   timestamptz,
  error         text,
  max_cost_usd  numeric check (max_cost_usd is null or max_cost_usd >= 0),
  -- what was asked for, so `strata runs resume` can plan the same work again
  partitions    jsonb not null default '[]'::jsonb,
  options       jsonb not null default '{}'::jsonb,
  -- the process running it, so a later command can tell a crashed run from a live one
  pid           integer,
  hostname      text,
  resumed_from  text references strata.runs (id) on delete set null,
  -- inference calls sent (one per document and model), written with each ledger batch, so that
  -- calls lost in flight at a crash can be counted: sent minus those with a recorded outcome
  calls_dispatched  bigint not null default 0
);
create index runs_started_at_idx on strata.runs (started_at desc);
create index runs_running_idx on strata.runs (status) where status = 'running';

-- One row per asset partition built (or tried) by a run.
create table strata.materializations (
  id                 text primary key,
  run_id             text not null references strata.runs (id) on delete cascade,
  asset_key          text not null,
  partition_key      text,
  status             text not null
                     check (status in ('planned', 'running', 'succeeded', 'failed', 'skipped', 'canceled')),
  code_version       text,
  data_version       text,
  started_at         timestamptz,
  finished_at        timestamptz,
  row_count          bigint,
  prompt_tokens      bigint not null default 0,
  cached_tokens      bigint not null default 0,
  completion_tokens  bigint not null default 0,
  cost_usd           numeric not null default 0,
  metadata           jsonb not null default '{}'::jsonb,
  storage_path       text,
  error              text,
  -- the dep keys declared when it was built, for "has a new dependency on X" staleness
  dep_keys           jsonb not null default '[]'::jsonb
);
create index materializations_run_idx on strata.materializations (run_id);
create index materializations_latest_idx
  on strata.materializations (asset_key, partition_key, finished_at desc)
  where status = 'succeeded';

-- Provenance: the exact upstream materializations a materialization read.
create table strata.materialization_inputs (
  materialization_id        text not null references strata.materializations (id) on delete cascade,
  input_materialization_id  text not null references strata.materializations (id) on delete cascade,
  primary key (materialization_id, input_materialization_id)
);
create index materialization_inputs_input_idx
  on strata.materialization_inputs (input_materialization_id);

-- The declared graph, refreshed when a project loads.
create table strata.assets (
  asset_key     text primary key,
  group_name    text not null,
  description   text,
  code_version  text,
  tags          jsonb not null default '{}'::jsonb,
  owners        jsonb not null default '[]'::jsonb,
  kinds         jsonb not null default '[]'::jsonb,
  partitions    text,
  updated_at    timestamptz not null default now()
);

create table strata.asset_deps (
  asset_key  text not null references strata.assets (asset_key) on delete cascade,
  dep_key    text not null,
  primary key (asset_key, dep_key)
);
create index asset_deps_dep_idx on strata.asset_deps (dep_key);

-- A fingerprint of the catalog last written, so an unchanged project is not rewritten.
create table strata.catalog_state (
  id           integer primary key check (id = 1),
  fingerprint  text not null,
  asset_count  integer not null,
  updated_at   timestamptz not null default now()
);

-- The cost ledger: one row per answered inference call (and per cache hit).
create table strata.inference_calls (
  id                           bigint generated always as identity primary key,
  run_id                       text not null references strata.runs (id) on delete cascade,
  materialization_id           text references strata.materializations (id) on delete cascade,
  asset_key                    text not null,
  partition_key                text,
  document_id                  text not null,
  model                        text not null,
  provider_model               text not null,
  endpoint                     text not null,
  request_hash                 text not null,
  status                       text not null check (status in ('dispatched', 'succeeded', 'failed')),
  attempts                     integer not null default 1,
  prompt_tokens                bigint not null default 0 check (prompt_tokens >= 0),
  cached_tokens                bigint not null default 0
                               check (cached_tokens >= 0 and cached_tokens <= prompt_tokens),
  completion_tokens            bigint not null default 0 check (completion_tokens >= 0),
  reasoning_tokens             bigint not null default 0 check (reasoning_tokens >= 0),
  input_price_per_mtok         numeric not null default 0,
  cached_input_price_per_mtok  numeric not null default 0,
  output_price_per_mtok        numeric not null default 0,
  -- prompt_tokens already includes cached_tokens (OpenAI usage semantics); exact numeric math
  cost_usd                     numeric generated always as (trim_scale(
                                 ((prompt_tokens - cached_tokens) * input_price_per_mtok
                                  + cached_tokens * cached_input_price_per_mtok
                                  + completion_tokens * output_price_per_mtok) / 1000000
                               )) stored,
  latency_ms                   integer,
  cache_hit                    boolean not null default false,
  cached_from                  bigint references strata.inference_calls (id) on delete set null,
  error                        text,
  output                       text,
  created_at                   timestamptz not null default now()
);
create index inference_calls_cache_idx
  on strata.inference_calls (request_hash) where status = 'succeeded' and not cache_hit;
create index inference_calls_run_idx on strata.inference_calls (run_id);
create index inference_calls_materialization_idx on strata.inference_calls (materialization_id);
create index inference_calls_document_idx
  on strata.inference_calls (asset_key, partition_key, document_id);
create index inference_calls_created_idx on strata.inference_calls (created_at);

-- Cost views: `calls` counts billed calls, `cache_hits` the calls the ledger answered for free.
create view strata.cost_by_asset as
  select asset_key,
         count(*) filter (where not cache_hit and status <> 'dispatched')::bigint as calls,
         count(*) filter (where cache_hit)::bigint as cache_hits,
         coalesce(sum(prompt_tokens), 0)::bigint as prompt_tokens,
         coalesce(sum(cached_tokens), 0)::bigint as cached_tokens,
         coalesce(sum(completion_tokens), 0)::bigint as completion_tokens,
         coalesce(sum(cost_usd), 0) as cost_usd
    from strata.inference_calls
   group by asset_key;

create view strata.cost_by_model as
  select model,
         count(*) filter (where not cache_hit and status <> 'dispatched')::bigint as calls,
         count(*) filter (where cache_hit)::bigint as cache_hits,
         coalesce(sum(prompt_tokens), 0)::bigint as prompt_tokens,
         coalesce(sum(cached_tokens), 0)::bigint as cached_tokens,
         coalesce(sum(completion_tokens), 0)::bigint as completion_tokens,
         coalesce(sum(cost_usd), 0) as cost_usd
    from strata.inference_calls
   group by model;

create view strata.cost_by_run as
  select run_id,
         count(*) filter (where not cache_hit and status <> 'dispatched')::bigint as calls,
         count(*) filter (where cache_hit)::bigint as cache_hits,
         coalesce(sum(prompt_tokens), 0)::bigint as prompt_tokens,
         coalesce(sum(cached_tokens), 0)::bigint as cached_tokens,
         coalesce(sum(completion_tokens), 0)::bigint as completion_tokens,
         coalesce(sum(cost_usd), 0) as cost_usd
    from strata.inference_calls
   group by run_id;

create view strata.cost_by_day as
  select (created_at at time zone 'UTC')::date as day,
         count(*) filter (where not cache_hit and status <> 'dispatched')::bigint as calls,
         count(*) filter (where cache_hit)::bigint as cache_hits,
         coalesce(sum(prompt_tokens), 0)::bigint as prompt_tokens,
         coalesce(sum(cached_tokens), 0)::bigint as cached_tokens,
         coalesce(sum(completion_tokens), 0)::bigint as completion_tokens,
         coalesce(sum(cost_usd), 0) as cost_usd
    from strata.inference_calls
   group by 1;
