"""The scheduler process: turns schedules into jobs at their fire times; runs no job itself."""
