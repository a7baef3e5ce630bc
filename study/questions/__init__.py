"""The questions the tutorials' readers asked, answered by measurement and theory: one fit
against OLS (``study fit``), the 1,000,000-iteration question (``study iterations``), and the
re-run of every tutorial setup and claim (``study reproduce``). Built on :mod:`study.core`
(and a config's inputs); no store is touched."""
