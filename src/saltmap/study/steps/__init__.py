"""The steps of a study run, one module each: every step computes first, then writes
its tables, figures and report section through the :class:`~saltmap.study.context.RunContext`."""
