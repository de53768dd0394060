-- compatible: previous
-- History is vacuumed after 2% of churn instead of 20%, unthrottled.
--
-- Retention pruning deletes the oldest finished jobs all day long, in chunks of the
-- history_retention index's order. Every chunk walks that index from the oldest entry,
-- over every entry deleted since the last vacuum, before it reaches one to delete: with
-- the default scale factor (0.2) that is up to a fifth of history, walked again by each
-- chunk of every pass. A vacuum after 2% (and 1000 rows) of dead tuples keeps that
-- prefix short and the freed space reused, so the table and its indexes stay at their
-- retention's size. Without a cost delay a pass ends sooner, before the next pruning
-- passes have added much to it; most of the heap is all-visible (finished jobs are
-- never updated), so a pass reads little beyond the pages pruned and the indexes.
-- Storage parameters only: the previous code runs on them unchanged.

ALTER TABLE /*schema*/history SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);
