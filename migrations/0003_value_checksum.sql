-- The SHA-256 of each materialization's Arrow file, in hex (what `sha256sum FILE` prints),
-- recorded when the file is written and checked whenever strata reads the file back, so a file
-- changed on disk is never handed downstream. Null for files written before this column existed
-- (they are read unchecked).
alter table strata.materializations add column if not exists storage_sha256 text;
