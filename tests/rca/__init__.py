"""Generated incidents of many shapes with their ground truth, for the RCA benchmark and
its tests (:mod:`tests.rca.scenarios`, judged by :mod:`tests.rca.judge`)."""
