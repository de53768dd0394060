"""Fleet maintenance, run by one worker at a time (the leader, see ``leader``).

Tasks (one module each, scheduled by ``service``):

- ``liveness`` hands back at once the active jobs of workers whose session lock is gone
               (they died), counting a crash rather than an attempt, and forgets them;
- ``rescuer``  reclaims active jobs whose heartbeat went stale (a crash, as above) or
               that ran past their run timeout (they retry, the attempt counted);
- ``pruner``   deletes finished jobs past their queue's retention, in small chunks, and
               the per-minute rollups and samples of that age;
- ``reaper``   forgets workers without a session lock that stopped touching the registry;
- ``batches``  finishes batches whose finisher died before checking them;
- ``sampler``  samples queue depth and fleet load every minute, for the charts.

Leadership only saves work: each task is one set-based statement that two leaders could
run at once without harm.
"""
