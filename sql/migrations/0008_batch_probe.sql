-- compatible: previous
-- The batch finisher's "is any child left?" probe, newest child first.
--
-- After every completion flush the finisher asks whether a sealed batch still has a
-- waiting or active child. Through an index on batch_id alone, a night's batch (all of
-- the table) was planned as a sequential scan that read past every ended child's dead
-- tuple first: 800 pages near the end of a 30,000-job night, on every flush of every
-- worker. Children end roughly in id order, so the newest child is the one most likely
-- still there: an index on (batch_id, id) read backwards answers at the first live entry
-- for a batch of any size behind any number of other jobs. It also serves every lookup
-- by batch_id, so it replaces that index. Additive for the previous code: its statements
-- plan on the new index as well.

CREATE INDEX jobs_batch_newest ON /*schema*/jobs (batch_id, id) WHERE batch_id IS NOT NULL;
DROP INDEX /*schema*/jobs_batch;
