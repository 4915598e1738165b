"""The commands of ``python -m crawler``, one module per kind of job.

* :mod:`~crawler.commands.options`: exit codes and the options the commands share;
* :mod:`~crawler.commands.crawl`: ``run`` and ``check-links``, the jobs that write
  the mirror (the settings and spider arguments they build are in
  :mod:`~crawler.commands.crawl_settings`, their printed summaries in
  :mod:`~crawler.commands.summaries`);
* :mod:`~crawler.commands.read`: ``status``, ``dead-links``, ``export``,
  ``report`` and ``serve``, which read a mirror;
* ``schedule`` is :func:`scheduler.schedule`.

Command modules import only click at the top; Scrapy, sqlite-utils, matplotlib
and the rest load inside the command that uses them, so ``--help`` and the
read-only commands start quickly.
"""
