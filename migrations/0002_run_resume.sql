-- Resume chains: a run resumed by `strata runs resume` is the head of a chain of runs linked by
-- `resumed_from`. The chain shares one budget (`max_cost_usd` of its newest run, spent summed over
-- every run of the chain), answers its runs' requests from their ledger rows even with --no-cache,
-- and is resumed only at its newest run. A run records the project that started it, so that a
-- resume from another project is refused by name.

-- `defineProject({ name })` (else the project directory's name) and the project file's path
alter table strata.runs add column if not exists project text;
alter table strata.runs add column if not exists project_file text;

-- "which run resumed this one": followed down a chain to its newest run
create index if not exists runs_resumed_from_idx on strata.runs (resumed_from) where resumed_from is not null;
