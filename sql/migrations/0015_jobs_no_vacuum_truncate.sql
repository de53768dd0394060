-- compatible: previous
-- Vacuum never truncates the jobs table.
--
-- The hot table swings between a drained and a full size many times a day (a night's
-- 30,000 collections, a backlog drained in seconds), and autovacuum, finding its tail
-- pages empty, truncates them: that takes an ACCESS EXCLUSIVE lock on the table, so every
-- fetch, send and completion waits behind it, and on a standby the replayed lock cancels
-- queries. The freed pages are needed again within minutes anyway (the soak saw the heap
-- go from 115 to 77 MB and back every vacuum pass). Kept, they are reused from the free
-- space map. Storage parameter only: the previous code runs on it unchanged.

ALTER TABLE /*schema*/jobs SET (vacuum_truncate = false);
