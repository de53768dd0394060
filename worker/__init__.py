"""The worker process: runs the handlers of its queues, woken by NOTIFY (see ``runner``)."""
